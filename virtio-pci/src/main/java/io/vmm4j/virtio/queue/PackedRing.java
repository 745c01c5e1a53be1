package io.vmm4j.virtio.queue;

/**
 * The packed virtqueue's in-memory format (virtio 1.2 §2.8), shared by the device side
 * ({@link PackedQueue}) and a driver side: the descriptor layout, flag bits, the event suppression
 * structure, sizes and alignments, and the position encoding vhost-user uses for a packed ring.
 */
public final class PackedRing {
    /** §2.8: packed virtqueues support up to 2^15 entries; any size in 1..32768, not only powers of two (§2.8.10.1). */
    public static final int MAX_QUEUE_SIZE = 32768;

    /** §2.8.13: {@code struct pvirtq_desc} is le64 addr, le32 len, le16 id, le16 flags. */
    public static final int DESCRIPTOR_SIZE = 16;
    public static final int DESCRIPTOR_ADDR = 0;
    public static final int DESCRIPTOR_LEN = 8;
    public static final int DESCRIPTOR_ID = 12;
    public static final int DESCRIPTOR_FLAGS = 14;

    /** §2.8.6: the buffer continues in the next descriptor of the ring. */
    public static final int DESC_F_NEXT = 1;
    /** §2.8.3: the element is device write-only; in a used descriptor, the device wrote data. */
    public static final int DESC_F_WRITE = 2;
    /** §2.8.7: the element is a table of descriptors. */
    public static final int DESC_F_INDIRECT = 4;
    /** §2.8.1: VIRTQ_DESC_F_AVAIL. */
    public static final int DESC_F_AVAIL = 1 << 7;
    /** §2.8.1: VIRTQ_DESC_F_USED. */
    public static final int DESC_F_USED = 1 << 15;

    /** §2.8.10.1: the descriptor ring is 16-byte aligned, each event suppression structure 4-byte aligned. */
    public static final int DESCRIPTOR_RING_ALIGNMENT = 16;
    public static final int EVENT_SUPPRESSION_ALIGNMENT = 4;
    /** §2.8.14: {@code struct pvirtq_event_suppress} is le16 desc (off_wrap), le16 flags. */
    public static final int EVENT_SUPPRESSION_SIZE = 4;
    public static final int EVENT_OFF_WRAP = 0;
    public static final int EVENT_FLAGS = 2;

    /** §2.8.10: RING_EVENT_FLAGS_ENABLE, events on. */
    public static final int RING_EVENT_FLAGS_ENABLE = 0;
    /** §2.8.10: RING_EVENT_FLAGS_DISABLE, events off. */
    public static final int RING_EVENT_FLAGS_DISABLE = 1;
    /** §2.8.10: RING_EVENT_FLAGS_DESC, an event for the descriptor off_wrap names (VIRTIO_F_EVENT_IDX only). */
    public static final int RING_EVENT_FLAGS_DESC = 2;
    /** §2.8.14: desc_event_flags is 2 bits; the other 14 bits of flags are reserved. */
    public static final int RING_EVENT_FLAGS_MASK = 3;

    /** §2.8.14: desc_event_wrap is bit 15 of off_wrap; vhost-user puts the wrap counters in bit 15 too. */
    public static final int WRAP_BIT = 1 << 15;
    public static final int OFFSET_MASK = WRAP_BIT - 1;

    private PackedRing() {
    }

    /** Whether {@code size} is a packed queue size: 1..32768, any value (§2.8, §2.8.10.1). */
    public static boolean isValidQueueSize(int size) {
        return size >= 1 && size <= MAX_QUEUE_SIZE;
    }

    /** Bytes of the descriptor ring: 16 * size (§2.8.10.1). */
    public static long descriptorRingBytes(int size) {
        return (long) DESCRIPTOR_SIZE * size;
    }

    /**
     * The AVAIL and USED bits of a descriptor made available while the driver ring wrap counter is
     * {@code wrap} (§2.8.1): AVAIL equal to it, USED its inverse.
     */
    public static int availFlags(boolean wrap) {
        return wrap ? DESC_F_AVAIL : DESC_F_USED;
    }

    /** The AVAIL and USED bits of a descriptor used while the device ring wrap counter is {@code wrap}: both equal to it (§2.8.1). */
    public static int usedFlags(boolean wrap) {
        return wrap ? DESC_F_AVAIL | DESC_F_USED : 0;
    }

    /** A ring offset and a wrap counter as one 16-bit value: offset in bits 0-14, wrap in bit 15 (§2.8.14, vhost-user). */
    public static int position(int offset, boolean wrap) {
        return offset | (wrap ? WRAP_BIT : 0);
    }

    /**
     * vhost-user's "vring descriptor indices" for a packed ring (docs/interop/vhost-user.rst):
     * bits 0-14 the next avail offset, bit 15 the driver ring wrap counter, bits 16-30 the next used
     * offset, bit 31 the device ring wrap counter; {@code nextAvail} and {@code nextUsed} as
     * {@link Virtqueue#nextAvail()} returns them.
     */
    public static int vringBase(int nextAvail, int nextUsed) {
        return (nextAvail & 0xFFFF) | (nextUsed & 0xFFFF) << 16;
    }

    /** The next avail position (offset and driver wrap counter) in a packed {@link #vringBase} value: its low 16 bits. */
    public static int availPosition(int vringBase) {
        return vringBase & 0xFFFF;
    }

    /**
     * The next used position (offset and device wrap counter) in a packed {@link #vringBase} value:
     * its high 16 bits; when they are 0, the avail position. Peers that send or answer only the
     * avail half (DPDK's vhost library and virtio_user) do so for a ring stopped with nothing in
     * flight, where used = avail; a genuine used position 0 with wrap counter 0 beside another avail
     * position would need chains in flight across a whole lap, which a stopped ring does not have.
     */
    public static int usedPosition(int vringBase) {
        int used = vringBase >>> 16;
        return used == 0 ? availPosition(vringBase) : used;
    }

    /**
     * The event rule on a packed ring (§2.8.10): whether moving a position from {@code oldPos} to
     * {@code newPos}, both as {@link #position} encodes them, passed the descriptor {@code eventPos}
     * names, on a ring of {@code size}. Positions count modulo 2 * size: the wrap counter is the lap's
     * parity, so a step of less than 2 * size descriptors is measured exactly.
     */
    public static boolean needsEvent(int eventPos, int newPos, int oldPos, int size) {
        int laps = 2 * size;
        int event = linear(eventPos, size);
        int now = linear(newPos, size);
        int before = linear(oldPos, size);
        return lapsMod(now - event - 1, laps) < lapsMod(now - before, laps);
    }

    /**
     * How many descriptors lie from position {@code from} forward to position {@code to} (both as
     * {@link #position} encodes them) on a ring of {@code size}: 0..2 * size - 1.
     */
    public static int distance(int from, int to, int size) {
        return lapsMod(linear(to, size) - linear(from, size), 2 * size);
    }

    /** {@code d} modulo {@code laps} for d in [-laps, laps), without a division (sizes need not be powers of two). */
    private static int lapsMod(int d, int laps) {
        return d < 0 ? d + laps : d;
    }

    /** A position as a count modulo 2 * size; the wrap counter starts at 1 (§2.8.1), so offset 0 of the first lap is 0. */
    private static int linear(int position, int size) {
        int offset = position & OFFSET_MASK;
        return (position & WRAP_BIT) != 0 ? offset : offset + size;
    }
}
