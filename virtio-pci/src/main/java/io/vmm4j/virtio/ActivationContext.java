package io.vmm4j.virtio;

import io.vmm4j.core.memory.GuestMemory;

import java.util.List;

/**
 * What a device gets at DRIVER_OK: guest memory, the features both sides agreed on, and one
 * binding per enabled queue (rings, kick and call eventfds).
 *
 * @param memory        the guest's memory
 * @param ackedFeatures the negotiated feature set
 * @param queues        enabled queues, by index; a disabled queue's slot is null
 * @param host          the transport, for config changes and errors
 */
public record ActivationContext(GuestMemory memory, long ackedFeatures, List<QueueBinding> queues, VirtioDeviceHost host) {
    public boolean hasFeature(int bit) {
        return VirtioFeatures.has(ackedFeatures, bit);
    }

    /** The binding of queue {@code index}, or null if the driver did not enable it. */
    public QueueBinding queue(int index) {
        return index < queues.size() ? queues.get(index) : null;
    }
}
