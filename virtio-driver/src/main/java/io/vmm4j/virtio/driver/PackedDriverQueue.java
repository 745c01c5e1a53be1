package io.vmm4j.virtio.driver;

import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.queue.PackedRing;

import java.lang.invoke.VarHandle;

import static io.vmm4j.virtio.queue.PackedRing.DESCRIPTOR_ADDR;
import static io.vmm4j.virtio.queue.PackedRing.DESCRIPTOR_FLAGS;
import static io.vmm4j.virtio.queue.PackedRing.DESCRIPTOR_ID;
import static io.vmm4j.virtio.queue.PackedRing.DESCRIPTOR_LEN;
import static io.vmm4j.virtio.queue.PackedRing.DESCRIPTOR_SIZE;
import static io.vmm4j.virtio.queue.PackedRing.DESC_F_AVAIL;
import static io.vmm4j.virtio.queue.PackedRing.DESC_F_INDIRECT;
import static io.vmm4j.virtio.queue.PackedRing.DESC_F_NEXT;
import static io.vmm4j.virtio.queue.PackedRing.DESC_F_USED;
import static io.vmm4j.virtio.queue.PackedRing.DESC_F_WRITE;

/**
 * One packed virtqueue in the driver role (virtio 1.2 §2.8.21, §2.8.22), what a guest driver does
 * with the ring once VIRTIO_F_RING_PACKED is negotiated. It owns the descriptor ring and the driver
 * event suppression structure, reads the device's, and trusts the device no further than it must:
 * a used descriptor naming a buffer id that is not in flight, or a written length beyond the
 * buffer's writable bytes, and a device event suppression structure with reserved values, throw
 * {@link IllegalStateException}.
 *
 * <p><b>Buffers.</b> A buffer takes consecutive ring slots linked by NEXT, each marked available
 * for the lap it lies in (§2.8.6), or one slot naming an indirect table (§2.8.7). Buffer ids come
 * from a driver-private free list of 0..size-1 (like Linux's {@code desc_extra}), so nothing the
 * device writes can corrupt the bookkeeping. {@link #add} writes everything but each buffer's first
 * flags; {@link #publish()} stores those, the batch's first one last with release, so the device
 * sees the whole batch at once, as the idx store does on a split ring (§2.8.21.1).
 *
 * <p><b>Notifications.</b> The kick decision reads the device event suppression structure after a
 * full fence (§2.8.21.3.1): ENABLE kicks, DISABLE does not, DESC (EVENT_IDX only) kicks when the
 * published avail position passed the descriptor its off_wrap names (§2.8.10). For used buffer
 * notifications the driver writes its own structure: DISABLE when suppressed, else ENABLE, or with
 * EVENT_IDX DESC at the next used descriptor it will take, moved along as it takes them (the packed
 * form of split's used_event).
 *
 * <p>Not thread-safe. The data path (add, publish, needsKick, pollUsedHead) allocates nothing.
 */
public final class PackedDriverQueue implements DriverVirtqueue {
    private final GuestMemory memory;
    private final int size;
    private final boolean eventIdx;
    private final long descRing;
    /** The driver event suppression structure (queue_driver): the driver writes it. */
    private final long driverEvent;
    /** The device event suppression structure (queue_device): the device writes it. */
    private final long deviceEvent;

    /** The next slot to fill and the driver ring wrap counter for it (§2.8.1). */
    private int availOffset;
    private boolean availWrap = true;
    /** The next slot the device writes a used descriptor to, and the device ring wrap counter there. */
    private int usedOffset;
    private boolean usedWrap = true;
    private int freeSlots;

    /** Free buffer ids, a stack. */
    private final int[] freeIds;
    private int freeIdCount;
    private final boolean[] inFlight;
    private final int[] slotsOf;
    private final long[] writableBytesOf;

    /** Per buffer added since the last publish: the slot of its first descriptor and that descriptor's flags. */
    private final int[] pendingSlot;
    private final short[] pendingFlags;
    private int pendingCount;
    private int unpublishedSlots;

    /** The avail position as the device can see it. */
    private int publishedPosition = PackedRing.position(0, true);
    /** The avail position at the last kick decision, and slots published since. */
    private int decidedPosition = PackedRing.position(0, true);
    private long slotsSinceDecision;

    private int lastUsedLength;
    private boolean interruptSuppressed;

    /**
     * Allocates the descriptor ring (16-byte aligned) and both event suppression structures (4-byte
     * aligned) and zeroes them (§2.8.10.1, §2.8.13); with EVENT_IDX asks for a notification at the
     * first used descriptor.
     *
     * @param size     any queue size in 1..32768 (§2.8.10.1: not only powers of two)
     * @param eventIdx whether VIRTIO_F_EVENT_IDX was negotiated
     */
    public PackedDriverQueue(GuestMemory memory, GuestAllocator allocator, int size, boolean eventIdx) {
        if (!PackedRing.isValidQueueSize(size)) {
            throw new IllegalArgumentException("packed queue size " + size + " is not in 1.." + PackedRing.MAX_QUEUE_SIZE
                    + " (virtio 1.2 §2.8)");
        }
        this.memory = memory;
        this.size = size;
        this.eventIdx = eventIdx;
        this.descRing = allocator.allocate(PackedRing.descriptorRingBytes(size), PackedRing.DESCRIPTOR_RING_ALIGNMENT);
        this.driverEvent = allocator.allocate(PackedRing.EVENT_SUPPRESSION_SIZE, PackedRing.EVENT_SUPPRESSION_ALIGNMENT);
        this.deviceEvent = allocator.allocate(PackedRing.EVENT_SUPPRESSION_SIZE, PackedRing.EVENT_SUPPRESSION_ALIGNMENT);
        memory.fill(descRing, PackedRing.descriptorRingBytes(size), (byte) 0);
        memory.fill(deviceEvent, PackedRing.EVENT_SUPPRESSION_SIZE, (byte) 0);
        writeDriverEvent(eventIdx ? PackedRing.RING_EVENT_FLAGS_DESC : PackedRing.RING_EVENT_FLAGS_ENABLE);
        this.freeSlots = size;
        this.freeIds = new int[size];
        for (int i = 0; i < size; i++) {
            freeIds[i] = size - 1 - i;
        }
        this.freeIdCount = size;
        this.inFlight = new boolean[size];
        this.slotsOf = new int[size];
        this.writableBytesOf = new long[size];
        this.pendingSlot = new int[size];
        this.pendingFlags = new short[size];
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public boolean eventIdx() {
        return eventIdx;
    }

    @Override
    public boolean packed() {
        return true;
    }

    @Override
    public long descriptorArea() {
        return descRing;
    }

    @Override
    public long driverArea() {
        return driverEvent;
    }

    @Override
    public long deviceArea() {
        return deviceEvent;
    }

    @Override
    public int freeDescriptors() {
        return freeSlots;
    }

    /** Buffer ids not in flight. */
    public int freeIds() {
        return freeIdCount;
    }

    /** The next slot to fill in bits 0-14 and the driver ring wrap counter in bit 15, published or not. */
    public int availPosition() {
        return PackedRing.position(availOffset, availWrap);
    }

    @Override
    public int lastUsed() {
        return PackedRing.position(usedOffset, usedWrap);
    }

    /**
     * Puts a buffer in the next {@code addrs.length} slots, readable segments first (§2.8.17), its id
     * in each; the device sees it after {@link #publish()}. Returns the buffer id, or -1 if fewer
     * slots or no id are free.
     */
    @Override
    public int add(long[] addrs, int[] lens, int readableCount) {
        BufferSegments.check(addrs, lens, readableCount);
        int n = addrs.length;
        if (n > freeSlots || freeIdCount == 0) {
            return -1;
        }
        int id = freeIds[--freeIdCount];
        int first = availOffset;
        int firstFlags = 0;
        long writable = 0;
        for (int i = 0; i < n; i++) {
            boolean write = i >= readableCount;
            // §2.8.6: each descriptor of the list carries the AVAIL/USED bits of the lap it lies in
            int flags = PackedRing.availFlags(availWrap) | (write ? DESC_F_WRITE : 0) | (i < n - 1 ? DESC_F_NEXT : 0);
            long entry = slot(availOffset);
            memory.writeLong(entry + DESCRIPTOR_ADDR, addrs[i]);
            memory.writeInt(entry + DESCRIPTOR_LEN, lens[i]);
            memory.writeShort(entry + DESCRIPTOR_ID, (short) id);
            if (i == 0) {
                firstFlags = flags;
            } else {
                memory.writeShort(entry + DESCRIPTOR_FLAGS, (short) flags);
            }
            writable += write ? lens[i] : 0;
            advanceAvail();
        }
        track(id, n, writable, first, firstFlags);
        return id;
    }

    /**
     * Builds an indirect table of the segments at {@code tableAddr} and puts one slot naming it
     * (§2.8.7: {@code len / 16} entries; only WRITE counts in them). Returns the buffer id, or -1.
     */
    @Override
    public int addIndirect(long tableAddr, long[] addrs, int[] lens, int readableCount) {
        BufferSegments.check(addrs, lens, readableCount);
        if (freeSlots == 0 || freeIdCount == 0) {
            return -1;
        }
        long writable = 0;
        for (int i = 0; i < addrs.length; i++) {
            boolean write = i >= readableCount;
            long entry = tableAddr + (long) DESCRIPTOR_SIZE * i;
            memory.writeLong(entry + DESCRIPTOR_ADDR, addrs[i]);
            memory.writeInt(entry + DESCRIPTOR_LEN, lens[i]);
            memory.writeShort(entry + DESCRIPTOR_ID, (short) 0);
            memory.writeShort(entry + DESCRIPTOR_FLAGS, (short) (write ? DESC_F_WRITE : 0));
            writable += write ? lens[i] : 0;
        }
        int id = freeIds[--freeIdCount];
        int first = availOffset;
        long entry = slot(availOffset);
        memory.writeLong(entry + DESCRIPTOR_ADDR, tableAddr);
        memory.writeInt(entry + DESCRIPTOR_LEN, DESCRIPTOR_SIZE * addrs.length);
        memory.writeShort(entry + DESCRIPTOR_ID, (short) id);
        int flags = PackedRing.availFlags(availWrap) | DESC_F_INDIRECT;
        advanceAvail();
        track(id, 1, writable, first, flags);
        return id;
    }

    private void track(int id, int slots, long writable, int firstSlot, int firstFlags) {
        inFlight[id] = true;
        slotsOf[id] = slots;
        writableBytesOf[id] = writable;
        freeSlots -= slots;
        unpublishedSlots += slots;
        pendingSlot[pendingCount] = firstSlot;
        pendingFlags[pendingCount] = (short) firstFlags;
        pendingCount++;
    }

    /**
     * Makes the buffers added since the last publish available: the first flags of every buffer but
     * the first, then, with release, the first one's, which the device reads first (§2.8.21.1).
     */
    @Override
    public void publish() {
        if (pendingCount == 0) {
            return;
        }
        for (int i = 1; i < pendingCount; i++) {
            memory.writeShort(slot(pendingSlot[i]) + DESCRIPTOR_FLAGS, pendingFlags[i]);
        }
        memory.storeReleaseShort(slot(pendingSlot[0]) + DESCRIPTOR_FLAGS, pendingFlags[0]);
        pendingCount = 0;
        publishedPosition = availPosition();
        slotsSinceDecision += unpublishedSlots;
        unpublishedSlots = 0;
    }

    /**
     * Whether to notify the device of what was published since the last decision (§2.8.21.3): per
     * the device event suppression structure. False if nothing was published since.
     *
     * @throws IllegalStateException if the structure holds a reserved flags value, DESC without
     *                               EVENT_IDX, or an off_wrap offset outside the ring
     */
    @Override
    public boolean needsKick() {
        // virtio 1.2 §2.8.21.3.1: a full barrier between making buffers available and reading the device's structure
        VarHandle.fullFence();
        if (slotsSinceDecision == 0) {
            return false;
        }
        int event = memory.readInt(deviceEvent);
        int offWrap = event & 0xFFFF;
        int flags = event >>> 16;
        if ((flags & ~PackedRing.RING_EVENT_FLAGS_MASK) != 0 || flags == PackedRing.RING_EVENT_FLAGS_MASK) {
            // virtio 1.2 §2.8.14: desc_event_flags is 2 bits with 0x3 reserved, the other 14 bits reserved as 0
            throw new IllegalStateException(String.format("device event suppression flags 0x%x are not ENABLE (0), DISABLE (1)"
                    + " or DESC (2): the device broke the ring (virtio 1.2 §2.8.10, §2.8.14)", flags));
        }
        if (flags == PackedRing.RING_EVENT_FLAGS_DESC) {
            if (!eventIdx) {
                throw new IllegalStateException("device event suppression flags 0x2 (DESC) without VIRTIO_F_EVENT_IDX negotiated:"
                        + " the device broke the ring (virtio 1.2 §2.8.10)");
            }
            if ((offWrap & PackedRing.OFFSET_MASK) >= size) {
                throw new IllegalStateException(String.format("device event suppression off_wrap 0x%x names offset %d, outside"
                        + " the ring of size %d: the device broke the ring (virtio 1.2 §2.8.10)", offWrap,
                        offWrap & PackedRing.OFFSET_MASK, size));
            }
        }
        int old = decidedPosition;
        long advanced = slotsSinceDecision;
        decidedPosition = publishedPosition;
        slotsSinceDecision = 0;
        return switch (flags) {
            case PackedRing.RING_EVENT_FLAGS_ENABLE -> true;
            case PackedRing.RING_EVENT_FLAGS_DISABLE -> false;
            // positions count modulo 2 * size: a longer step cannot be measured, so it kicks
            default -> advanced >= 2L * size || PackedRing.needsEvent(offWrap, publishedPosition, old, size);
        };
    }

    @Override
    public boolean hasUsed() {
        return isUsed(Short.toUnsignedInt(memory.loadAcquireShort(slot(usedOffset) + DESCRIPTOR_FLAGS)));
    }

    private boolean isUsed(int flags) {
        // §2.8.1: a used descriptor has AVAIL and USED both equal to the device ring wrap counter
        return (flags & (DESC_F_AVAIL | DESC_F_USED)) == PackedRing.usedFlags(usedWrap);
    }

    /**
     * Takes the used descriptor at the next used slot (§2.8.22): frees its buffer id and skips as many
     * slots as that buffer took (§2.8.6). With EVENT_IDX and interrupts wanted, moves off_wrap of the
     * driver's structure to the next used slot.
     *
     * @throws IllegalStateException if the device names a buffer id not in flight, or a written
     *                               length beyond the buffer's writable bytes
     */
    @Override
    public int pollUsedHead() {
        long entry = slot(usedOffset);
        // acquire: id and len are read after the flags that made the descriptor used (§2.8.22)
        int flags = Short.toUnsignedInt(memory.loadAcquireShort(entry + DESCRIPTOR_FLAGS));
        if (!isUsed(flags)) {
            return -1;
        }
        int id = Short.toUnsignedInt(memory.readShort(entry + DESCRIPTOR_ID));
        int length = memory.readInt(entry + DESCRIPTOR_LEN);
        if (id >= size || !inFlight[id]) {
            throw new IllegalStateException(String.format(
                    "used descriptor at slot %d names buffer id %d, which is %s: the device broke the ring (virtio 1.2 §2.8.22)",
                    usedOffset, id, id >= size ? "outside the queue of size " + size : "not in flight"));
        }
        if (Integer.toUnsignedLong(length) > writableBytesOf[id]) {
            // §2.8.4: len is the bytes the device wrote into the buffer's writable part
            throw new IllegalStateException(String.format(
                    "used descriptor at slot %d says the device wrote %d bytes into buffer id %d, which has %d writable bytes:"
                            + " the device broke the ring (virtio 1.2 §2.8.4)",
                    usedOffset, Integer.toUnsignedLong(length), id, writableBytesOf[id]));
        }
        inFlight[id] = false;
        freeIds[freeIdCount++] = id;
        freeSlots += slotsOf[id];
        usedOffset += slotsOf[id];
        if (usedOffset >= size) {
            usedOffset -= size;
            usedWrap = !usedWrap; // §2.8.1: the device ring wrap counter flips past the ring's last slot
        }
        lastUsedLength = length;
        if (eventIdx && !interruptSuppressed) {
            writeDriverEvent(PackedRing.RING_EVENT_FLAGS_DESC);
            // the off_wrap store must be visible before the next look at the used slot (Linux: virtio_store_mb)
            VarHandle.fullFence();
        }
        return id;
    }

    @Override
    public int lastUsedLength() {
        return lastUsedLength;
    }

    /**
     * Asks the device for no used buffer notifications (DISABLE), or for them again (§2.8.10):
     * ENABLE, or with EVENT_IDX DESC at the next used slot.
     */
    @Override
    public void setInterruptSuppressed(boolean suppressed) {
        interruptSuppressed = suppressed;
        writeDriverEvent(suppressed ? PackedRing.RING_EVENT_FLAGS_DISABLE
                : eventIdx ? PackedRing.RING_EVENT_FLAGS_DESC : PackedRing.RING_EVENT_FLAGS_ENABLE);
        // the change must be visible before the driver next looks at the used slot
        VarHandle.fullFence();
    }

    /** The driver's structure in one 32-bit store (§2.8.14: off_wrap, then flags), off_wrap at the next used slot. */
    private void writeDriverEvent(int flags) {
        memory.writeInt(driverEvent, PackedRing.position(usedOffset, usedWrap) | flags << 16);
    }

    private void advanceAvail() {
        if (++availOffset == size) {
            availOffset = 0;
            availWrap = !availWrap; // §2.8.1: the driver ring wrap counter flips past the ring's last slot
        }
    }

    private long slot(int offset) {
        return descRing + (long) DESCRIPTOR_SIZE * offset;
    }

    @Override
    public String toString() {
        return String.format("PackedDriverQueue[size=%d, desc=0x%x, driver=0x%x, device=0x%x, eventIdx=%b, avail=%d/%d, used=%d/%d,"
                        + " freeSlots=%d, freeIds=%d]", size, descRing, driverEvent, deviceEvent, eventIdx, availOffset,
                availWrap ? 1 : 0, usedOffset, usedWrap ? 1 : 0, freeSlots, freeIdCount);
    }
}
