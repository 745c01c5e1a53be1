package io.vmm4j.virtio.driver;

/**
 * One virtqueue in the driver role, whichever layout was negotiated: {@link DriverQueue} for a
 * split ring (virtio 1.2 §2.7), {@link PackedDriverQueue} for a packed ring (§2.8, with
 * VIRTIO_F_RING_PACKED). It is what a device driver such as {@link VirtioNetDriver} needs: make
 * buffers available, make them visible, decide on a kick, take used buffers back, and suppress
 * used buffer notifications. Both trust the device no further than they must: a used buffer that
 * names a buffer not in flight throws {@link IllegalStateException}.
 *
 * <p>A buffer is named by its <em>head</em>: the first descriptor's index on a split ring, the
 * buffer id on a packed one; either way in 0..size-1, so a driver can index per-buffer arrays of
 * {@link #size()} entries with it. The data path (add, publish, needsKick, pollUsedHead) allocates
 * nothing. Not thread-safe.
 */
public interface DriverVirtqueue {
    /** A buffer the device returned: its head and the bytes the device says it wrote (§2.7.8, §2.8.4). */
    record Used(int head, int length) {
    }

    int size();

    /** Whether VIRTIO_F_EVENT_IDX was negotiated. */
    boolean eventIdx();

    /** Whether this is a packed ring (VIRTIO_F_RING_PACKED). */
    boolean packed();

    /** What the driver writes to queue_desc (§4.1.4.3): the descriptor table (split) or descriptor ring (packed). */
    long descriptorArea();

    /** What the driver writes to queue_driver: the available ring (split) or the driver event suppression structure (packed). */
    long driverArea();

    /** What the driver writes to queue_device: the used ring (split) or the device event suppression structure (packed). */
    long deviceArea();

    /** Descriptors (ring slots on a packed ring) not held by a buffer in flight. */
    int freeDescriptors();

    /**
     * Where the driver will take the next used buffer: the used idx as a 16-bit counter (split), or
     * the ring offset in bits 0-14 and the device ring wrap counter in bit 15 (packed).
     */
    int lastUsed();

    /**
     * Adds a buffer of {@code addrs.length} segments, readable ones first, then writable; the device
     * sees it after {@link #publish()}. Returns its head, or -1 if not enough descriptors are free.
     */
    int add(long[] addrs, int[] lens, int readableCount);

    /**
     * Adds a buffer as one descriptor naming an indirect table of its segments, built at {@code
     * tableAddr} (the caller allocates {@code 16 * addrs.length} bytes there). Returns its head, or -1.
     */
    int addIndirect(long tableAddr, long[] addrs, int[] lens, int readableCount);

    /** Makes every buffer added since the last publish visible to the device at once. */
    void publish();

    /** Whether the device wants a notification for what was published since the last decision; false if nothing was. */
    boolean needsKick();

    /** Whether the device has returned buffers not yet taken. */
    boolean hasUsed();

    /** Takes the next used buffer, or returns null; {@link #pollUsedHead()} does the same without allocating. */
    default Used pollUsed() {
        int head = pollUsedHead();
        return head < 0 ? null : new Used(head, lastUsedLength());
    }

    /**
     * Takes the next used buffer and frees its descriptors: returns its head, or -1 if there is none;
     * its written length is then {@link #lastUsedLength()}.
     *
     * @throws IllegalStateException if the device broke the ring
     */
    int pollUsedHead();

    /** The written length of the buffer {@link #pollUsedHead()} returned last. */
    int lastUsedLength();

    /** Asks the device for no used buffer notifications, or for them again (§2.7.7, §2.8.10). */
    void setInterruptSuppressed(boolean suppressed);
}
