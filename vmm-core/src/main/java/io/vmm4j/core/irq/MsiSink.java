package io.vmm4j.core.irq;

/**
 * Where message-signalled interrupts go: the platform's interrupt controller. A device writes the
 * (address, data) pair the driver programmed into its MSI-X table; the sink turns it into a guest
 * interrupt (the Java frontend's handler, or KVM under a real vCPU).
 */
@FunctionalInterface
public interface MsiSink {
    void deliver(long address, int data);
}
