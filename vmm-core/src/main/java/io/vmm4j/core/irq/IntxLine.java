package io.vmm4j.core.irq;

/** A level-triggered legacy interrupt line (PCI INTx), used when MSI-X is off. */
public interface IntxLine {
    void assertLine();

    void deassertLine();

    /** A line nobody listens to. */
    IntxLine NONE = new IntxLine() {
        @Override
        public void assertLine() {
        }

        @Override
        public void deassertLine() {
        }
    };
}
