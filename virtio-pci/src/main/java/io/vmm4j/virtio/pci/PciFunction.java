package io.vmm4j.virtio.pci;

/** One PCI function as the host bridge sees it: its 256-byte type-0 configuration space. */
public interface PciFunction {
    /** Reads {@code size} (1, 2 or 4) bytes at {@code offset}, naturally aligned; little-endian. */
    int readConfig(int offset, int size);

    void writeConfig(int offset, int size, int value);
}
