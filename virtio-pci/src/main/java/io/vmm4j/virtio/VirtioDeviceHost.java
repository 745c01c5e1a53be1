package io.vmm4j.virtio;

/** What a device may ask of the transport that hosts it, at any time after it is plugged in. */
public interface VirtioDeviceHost {
    /** The device configuration changed: bump config_generation and raise the config interrupt (§2.5.1). */
    void configChanged();

    /**
     * The device hit an error it cannot recover from (typically a malformed ring): set
     * DEVICE_NEEDS_RESET and raise the config interrupt (§2.1.1). {@code reason} is logged and kept.
     */
    void deviceError(String reason);
}
