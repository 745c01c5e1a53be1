package io.vmm4j.virtio;

/**
 * A virtio device model, independent of its transport (PCI today; an MMIO transport could host it
 * unchanged). The transport owns feature negotiation, the status machine and the queues'
 * registers; the device says what it offers, serves its configuration space, and runs its queues
 * between {@link #activate} and {@link #reset}.
 */
public interface VirtioDevice {
    /** The virtio device ID (§5): 1 network, 3 console, 4 entropy, ... */
    int deviceType();

    /** A short name for logs, e.g. {@code virtio-net}. */
    default String name() {
        return "virtio-" + deviceType();
    }

    /** Every feature bit the device can honour, device-specific and transport bits (VERSION_1 included). */
    long offeredFeatures();

    /**
     * Checks a driver's accepted subset beyond "offered and VERSION_1" (which the transport
     * checks): returns null when acceptable, else why not (feature dependencies, §5.x.3).
     */
    default String validateFeatures(long acked) {
        return null;
    }

    int queueCount();

    /** Largest size the driver may choose for queue {@code index}; a power of two. */
    int maxQueueSize(int index);

    /** PCI class code for this device type (24 bits: class, subclass, prog-if). */
    int pciClassCode();

    /** Bytes of device configuration space (0 for none). */
    int configSize();

    /** Reads the device configuration; offset + size lie within {@link #configSize()}. */
    long readConfig(int offset, int size);

    void writeConfig(int offset, int size, long value);

    /** Called once when a transport adopts the device. */
    default void bind(VirtioDeviceHost host) {
    }

    /** DRIVER_OK: start serving the enabled queues. */
    void activate(ActivationContext context);

    /**
     * The driver reset the device: stop touching guest memory before returning, and forget the
     * negotiated state.
     */
    void reset();
}
