package io.vmm4j.virtio.pci;

/**
 * The live part of a capability in configuration space: fields whose reads are computed or whose
 * writes have effects (MSI-X message control, the virtio PCI_CFG access window). Offsets are
 * relative to the capability's first byte; access is 1, 2 or 4 bytes within the capability.
 */
public interface CapabilityBehaviour {
    /** Returns the value to read, or {@code stored} (the bytes kept in config space) if nothing is live there. */
    int read(int offset, int size, int stored);

    /** Handles a write; returns the value to store for bytes the capability keeps as plain storage. */
    void write(int offset, int size, int value);
}
