package io.vmm4j.virtio.queue;

import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.VirtioFeatures;

/** The two virtqueue layouts of virtio 1.2: split (§2.7) and, with VIRTIO_F_RING_PACKED, packed (§2.8). */
public enum RingLayout {
    SPLIT,
    PACKED;

    /** The layout the acked features select. */
    public static RingLayout of(long ackedFeatures) {
        return VirtioFeatures.has(ackedFeatures, VirtioFeatures.RING_PACKED) ? PACKED : SPLIT;
    }

    /**
     * Where a fresh ring's positions stand, in the encoding of {@link Virtqueue#nextAvail()}: split 0;
     * packed offset 0 with both wrap counters 1 (virtio 1.2 §2.8.1: they start at 1), which is 0x8000.
     */
    public int startPosition() {
        return this == PACKED ? PackedRing.position(0, true) : 0;
    }

    /** Lower-case name, as the CLI and the logs spell it. */
    public String label() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /**
     * Checks what the driver wrote into queue_size, queue_desc, queue_driver and queue_device for
     * this layout (virtio 1.2 §2.7.5-§2.7.8 split, §2.8.10.1 packed).
     *
     * @throws VirtqueueException naming the area and the value that is wrong
     */
    public void validateLayout(GuestMemory memory, int size, long desc, long driver, long device) {
        switch (this) {
            case SPLIT -> SplitQueue.validateLayout(memory, size, desc, driver, device);
            case PACKED -> PackedQueue.validateLayout(memory, size, desc, driver, device);
        }
    }
}
