package io.vmm4j.virtio.queue;

import io.vmm4j.core.memory.GuestMemory;

/**
 * The split virtqueue's in-memory format (virtio 1.2 §2.7), shared by the device side
 * ({@link SplitQueue}) and the guest side (the virtio-driver module's {@code DriverQueue}): sizes and
 * alignments of the three areas, field offsets, flag bits, and the event-index rule.
 */
public final class SplitRing {
    /** §2.7: the largest queue size, the highest power of two a 16-bit index can tell full from empty. */
    public static final int MAX_QUEUE_SIZE = 32768;

    /** §2.7.5: {@code struct virtq_desc} is le64 addr, le32 len, le16 flags, le16 next. */
    public static final int DESCRIPTOR_SIZE = 16;
    public static final int DESCRIPTOR_ADDR = 0;
    public static final int DESCRIPTOR_LEN = 8;
    public static final int DESCRIPTOR_FLAGS = 12;
    public static final int DESCRIPTOR_NEXT = 14;

    /** §2.7.5: the buffer continues in the descriptor named by {@code next}. */
    public static final int DESC_F_NEXT = 1;
    /** §2.7.5: the buffer is device write-only (otherwise device read-only). */
    public static final int DESC_F_WRITE = 2;
    /** §2.7.5.3: the buffer holds a table of descriptors. */
    public static final int DESC_F_INDIRECT = 4;

    /** §2.7.6: avail flags bit by which the driver asks for no used buffer notifications. */
    public static final int AVAIL_F_NO_INTERRUPT = 1;
    /** §2.7.8: used flags bit by which the device asks for no available buffer notifications. */
    public static final int USED_F_NO_NOTIFY = 1;

    /** §2.7: minimum alignment of each area. */
    public static final int DESCRIPTOR_TABLE_ALIGNMENT = 16;
    public static final int AVAIL_RING_ALIGNMENT = 2;
    public static final int USED_RING_ALIGNMENT = 4;

    /** Offsets of the flags and idx fields, the same in both rings. */
    public static final int RING_FLAGS = 0;
    public static final int RING_IDX = 2;
    /** §2.7.6 / §2.7.8: the ring entries start after flags and idx. */
    public static final int RING_ENTRIES = 4;
    /** §2.7.8: {@code struct virtq_used_elem} is le32 id, le32 len. */
    public static final int USED_ELEMENT_SIZE = 8;

    private SplitRing() {
    }

    /** Whether {@code size} is a queue size the spec allows: a power of two in 1..32768 (§2.7). */
    public static boolean isValidQueueSize(int size) {
        return size >= 1 && size <= MAX_QUEUE_SIZE && Integer.bitCount(size) == 1;
    }

    /** Bytes of the descriptor table: 16 * size (§2.7). */
    public static long descriptorTableBytes(int size) {
        return (long) DESCRIPTOR_SIZE * size;
    }

    /** Bytes of the available ring including the trailing used_event: 6 + 2 * size (§2.7). */
    public static long availRingBytes(int size) {
        return 6 + 2L * size;
    }

    /** Bytes of the used ring including the trailing avail_event: 6 + 8 * size (§2.7). */
    public static long usedRingBytes(int size) {
        return 6 + (long) USED_ELEMENT_SIZE * size;
    }

    /** Offset of avail ring entry {@code slot} from the start of the available ring. */
    public static long availEntryOffset(int slot) {
        return RING_ENTRIES + 2L * slot;
    }

    /** Offset of used_event from the start of the available ring (§2.7.6, after the entries). */
    public static long usedEventOffset(int size) {
        return RING_ENTRIES + 2L * size;
    }

    /** Offset of used ring element {@code slot} from the start of the used ring. */
    public static long usedElementOffset(int slot) {
        return RING_ENTRIES + (long) USED_ELEMENT_SIZE * slot;
    }

    /** Offset of avail_event from the start of the used ring (§2.7.8, after the elements). */
    public static long availEventOffset(int size) {
        return RING_ENTRIES + (long) USED_ELEMENT_SIZE * size;
    }

    /**
     * The used ring's idx as the device last published it (an acquire load, §2.7.13): where a device
     * that takes over the ring goes on filling it, or where one that stopped left it.
     */
    public static int usedIdx(GuestMemory memory, long usedRing) {
        return Short.toUnsignedInt(memory.loadAcquireShort(usedRing + RING_IDX));
    }

    /**
     * The event-index rule (§2.7.7.2, §2.7.10.1; Linux's {@code vring_need_event}): whether moving a
     * 16-bit index from {@code oldIdx} to {@code newIdx} passed {@code eventIdx}, that is whether an
     * entry was written at index {@code eventIdx} in that step. All three are 16-bit values.
     */
    public static boolean needsEvent(int eventIdx, int newIdx, int oldIdx) {
        return ((newIdx - eventIdx - 1) & 0xFFFF) < ((newIdx - oldIdx) & 0xFFFF);
    }
}
