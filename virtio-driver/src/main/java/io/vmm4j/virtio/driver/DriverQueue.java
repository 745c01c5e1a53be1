package io.vmm4j.virtio.driver;

import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.queue.SplitRing;

import java.lang.invoke.VarHandle;

import static io.vmm4j.virtio.queue.SplitRing.DESCRIPTOR_ADDR;
import static io.vmm4j.virtio.queue.SplitRing.DESCRIPTOR_FLAGS;
import static io.vmm4j.virtio.queue.SplitRing.DESCRIPTOR_LEN;
import static io.vmm4j.virtio.queue.SplitRing.DESCRIPTOR_NEXT;
import static io.vmm4j.virtio.queue.SplitRing.DESCRIPTOR_SIZE;
import static io.vmm4j.virtio.queue.SplitRing.DESC_F_INDIRECT;
import static io.vmm4j.virtio.queue.SplitRing.DESC_F_NEXT;
import static io.vmm4j.virtio.queue.SplitRing.DESC_F_WRITE;

/**
 * One split virtqueue in the driver role (virtio 1.2 §2.7.13, §2.7.14): what a guest driver does
 * with the rings, for tests and the guest test driver. It owns the descriptor table and the
 * available ring, reads the used ring, and trusts the device no further than it must: a used
 * element naming a descriptor outside the queue throws {@link IllegalStateException}.
 *
 * <p>Besides the well-behaved {@link #add}, {@link #addIndirect} and {@link #publish}, it has
 * low-level hooks ({@link #writeDescriptor}, {@link #writeIndirectDescriptor}, {@link #pushAvail})
 * that write any value into the ring layout without checks, so tests can build every malformed case.
 * Those hooks only bypass ring rules; they never write outside the descriptor table and avail ring.
 *
 * <p>Free descriptors are tracked in a driver-private list (like Linux's {@code desc_extra}), not in
 * guest memory, so nothing the device writes can corrupt it. Not thread-safe. {@link
 * PackedDriverQueue} is the packed ring's counterpart behind the same {@link DriverVirtqueue}.
 */
public final class DriverQueue implements DriverVirtqueue {

    private final GuestMemory memory;
    private final int size;
    private final int mask;
    private final boolean eventIdx;
    private final long descTable;
    private final long availRing;
    private final long usedRing;

    /** Free-list links; an allocated descriptor keeps its link, which is then the chain order. */
    private final int[] nextFree;
    private int freeHead;
    private int freeCount;
    /** Descriptors each head added by add/addIndirect holds; 0 for heads not in flight or pushed raw. */
    private final int[] chainDescriptors;

    /** The avail idx after every added head, published or not. */
    private int availIdx;
    private int publishedAvail;
    /** The avail idx at the last kick decision. */
    private int decidedAvail;
    /** The used idx up to which used elements were taken. */
    private int lastUsedLength;
    private int lastUsed;
    private boolean interruptSuppressed;

    /**
     * Allocates the descriptor table, available ring and used ring with their §2.7 alignments and
     * zeroes them (§2.7.10.1: used flags start at 0).
     *
     * @param eventIdx whether VIRTIO_F_EVENT_IDX was negotiated
     */
    public DriverQueue(GuestMemory memory, GuestAllocator allocator, int size, boolean eventIdx) {
        if (!SplitRing.isValidQueueSize(size)) {
            throw new IllegalArgumentException("queue size " + size + " is not a power of two in 1.." + SplitRing.MAX_QUEUE_SIZE);
        }
        this.memory = memory;
        this.size = size;
        this.mask = size - 1;
        this.eventIdx = eventIdx;
        this.descTable = allocator.allocate(SplitRing.descriptorTableBytes(size), SplitRing.DESCRIPTOR_TABLE_ALIGNMENT);
        this.availRing = allocator.allocate(SplitRing.availRingBytes(size), SplitRing.AVAIL_RING_ALIGNMENT);
        this.usedRing = allocator.allocate(SplitRing.usedRingBytes(size), SplitRing.USED_RING_ALIGNMENT);
        memory.fill(descTable, SplitRing.descriptorTableBytes(size), (byte) 0);
        memory.fill(availRing, SplitRing.availRingBytes(size), (byte) 0);
        memory.fill(usedRing, SplitRing.usedRingBytes(size), (byte) 0);
        this.nextFree = new int[size];
        for (int i = 0; i < size; i++) {
            nextFree[i] = i + 1;
        }
        this.freeHead = 0;
        this.freeCount = size;
        this.chainDescriptors = new int[size];
    }

    public long descTable() {
        return descTable;
    }

    @Override
    public long descriptorArea() {
        return descTable;
    }

    @Override
    public long driverArea() {
        return availRing;
    }

    @Override
    public long deviceArea() {
        return usedRing;
    }

    @Override
    public boolean packed() {
        return false;
    }

    public long availRing() {
        return availRing;
    }

    public long usedRing() {
        return usedRing;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public boolean eventIdx() {
        return eventIdx;
    }

    /** Descriptors not held by a chain in flight. */
    @Override
    public int freeDescriptors() {
        return freeCount;
    }

    /** The avail idx after all added heads, published or not (a 16-bit counter). */
    public int availIdx() {
        return availIdx;
    }

    /** The used idx up to which {@link #pollUsed()} has taken elements (a 16-bit counter). */
    @Override
    public int lastUsed() {
        return lastUsed;
    }

    /**
     * Puts a chain in free descriptors, readable segments first, then writable (§2.7.4.2, §2.7.13.1),
     * and its head in the next avail entry; the device sees it after {@link #publish()}. Returns the
     * head, or -1 if fewer than {@code addrs.length} descriptors are free.
     */
    @Override
    public int add(long[] addrs, int[] lens, int readableCount) {
        BufferSegments.check(addrs, lens, readableCount);
        int n = addrs.length;
        if (n > freeCount) {
            return -1;
        }
        int head = freeHead;
        int index = head;
        for (int i = 0; i < n; i++) {
            boolean last = i == n - 1;
            int flags = (i >= readableCount ? DESC_F_WRITE : 0) | (last ? 0 : DESC_F_NEXT);
            writeDescriptor(index, addrs[i], lens[i], flags, last ? 0 : nextFree[index]);
            index = nextFree[index];
        }
        freeHead = index;
        freeCount -= n;
        chainDescriptors[head] = n;
        pushAvail(head);
        return head;
    }

    /**
     * Builds an indirect table of the segments at {@code tableAddr} (the caller allocates
     * {@code 16 * addrs.length} bytes there) and adds one descriptor naming it (§2.7.5.3). Returns
     * the head, or -1 if no descriptor is free.
     */
    @Override
    public int addIndirect(long tableAddr, long[] addrs, int[] lens, int readableCount) {
        BufferSegments.check(addrs, lens, readableCount);
        if (freeCount == 0) {
            return -1;
        }
        int n = addrs.length;
        for (int i = 0; i < n; i++) {
            boolean last = i == n - 1;
            int flags = (i >= readableCount ? DESC_F_WRITE : 0) | (last ? 0 : DESC_F_NEXT);
            writeIndirectDescriptor(tableAddr, i, addrs[i], lens[i], flags, last ? 0 : i + 1);
        }
        int head = freeHead;
        writeDescriptor(head, tableAddr, DESCRIPTOR_SIZE * n, DESC_F_INDIRECT, 0);
        freeHead = nextFree[head];
        freeCount--;
        chainDescriptors[head] = 1;
        pushAvail(head);
        return head;
    }

    /** Makes the added heads visible: their avail entries were written first, idx is release-stored after (§2.7.13.3). */
    @Override
    public void publish() {
        memory.storeReleaseShort(availRing + SplitRing.RING_IDX, (short) availIdx);
        publishedAvail = availIdx;
    }

    /**
     * Whether to notify the device of what was published since the last decision (§2.7.10.1): with
     * EVENT_IDX when avail idx passed avail_event, otherwise unless used flags has NO_NOTIFY. False
     * if nothing was published since the last decision.
     */
    @Override
    public boolean needsKick() {
        // virtio 1.2 §2.7.13.4.1: a full barrier between the idx store and reading flags / avail_event
        VarHandle.fullFence();
        int oldAvail = decidedAvail;
        decidedAvail = publishedAvail;
        if (oldAvail == publishedAvail) {
            return false;
        }
        if (eventIdx) {
            int availEvent = Short.toUnsignedInt(memory.readShort(usedRing + SplitRing.availEventOffset(size)));
            return SplitRing.needsEvent(availEvent, publishedAvail, oldAvail);
        }
        return (memory.readShort(usedRing + SplitRing.RING_FLAGS) & SplitRing.USED_F_NO_NOTIFY) == 0;
    }

    /** Whether the device has published used elements not yet taken. */
    @Override
    public boolean hasUsed() {
        return Short.toUnsignedInt(memory.loadAcquireShort(usedRing + SplitRing.RING_IDX)) != lastUsed;
    }

    /**
     * Takes the next used element, or returns null if there is none; frees the descriptors of a chain
     * added with {@link #add} or {@link #addIndirect}. With EVENT_IDX and interrupts wanted, moves
     * used_event along so the device notifies for the next element (as Linux's driver does).
     *
     * @throws IllegalStateException if the device broke the used ring
     */
    @Override
    public Used pollUsed() {
        int head = pollUsedHead();
        return head < 0 ? null : new Used(head, lastUsedLength);
    }

    /**
     * {@link #pollUsed()} without allocating: returns the head of the next used element, or -1 if
     * there is none; its written length is then {@link #lastUsedLength()}.
     */
    @Override
    public int pollUsedHead() {
        // acquire: the element is read after the idx that published it (§2.7.14)
        int usedIdx = Short.toUnsignedInt(memory.loadAcquireShort(usedRing + SplitRing.RING_IDX));
        if (usedIdx == lastUsed) {
            return -1;
        }
        int pending = (usedIdx - lastUsed) & 0xFFFF;
        if (pending > size) {
            throw new IllegalStateException(String.format(
                    "used idx %d is %d entries ahead of the last used index %d, more than the queue size %d: the device broke the used ring",
                    usedIdx, pending, lastUsed, size));
        }
        long element = usedRing + SplitRing.usedElementOffset(lastUsed & mask);
        int head = memory.readInt(element);
        int length = memory.readInt(element + 4);
        if (head < 0 || head >= size) {
            throw new IllegalStateException(String.format(
                    "used element %d names head %d, outside the queue of size %d: the device broke the used ring",
                    lastUsed, Integer.toUnsignedLong(head), size));
        }
        freeChain(head);
        lastUsed = (lastUsed + 1) & 0xFFFF;
        if (eventIdx && !interruptSuppressed) {
            memory.writeShort(usedEventAddress(), (short) lastUsed);
            // the used_event store must be visible before the next look at used idx (Linux: virtio_store_mb)
            VarHandle.fullFence();
        }
        lastUsedLength = length;
        return head;
    }

    /** The written length of the element {@link #pollUsedHead()} returned last. */
    @Override
    public int lastUsedLength() {
        return lastUsedLength;
    }

    private void freeChain(int head) {
        int n = chainDescriptors[head];
        if (n == 0) {
            return;
        }
        int last = head;
        for (int i = 1; i < n; i++) {
            last = nextFree[last];
        }
        nextFree[last] = freeHead;
        freeHead = head;
        freeCount += n;
        chainDescriptors[head] = 0;
    }

    /**
     * Asks the device for no used buffer notifications, or for them again (§2.7.7.1): without
     * EVENT_IDX through NO_INTERRUPT in avail flags; with it through used_event, set to the element
     * just taken (the device does not reach it again for 65536 elements) or to the next one.
     */
    @Override
    public void setInterruptSuppressed(boolean suppressed) {
        interruptSuppressed = suppressed;
        if (eventIdx) {
            memory.writeShort(usedEventAddress(), (short) (suppressed ? lastUsed - 1 : lastUsed));
        } else {
            memory.writeShort(availRing + SplitRing.RING_FLAGS, (short) (suppressed ? SplitRing.AVAIL_F_NO_INTERRUPT : 0));
        }
        // the change must be visible before the driver next looks at used idx (the §2.7.14 re-check)
        VarHandle.fullFence();
    }

    /**
     * Starts both free-running indices at {@code index} instead of 0, as if that many chains had gone
     * round already: writes avail idx and used idx (and used_event with EVENT_IDX). A test aid for
     * 16-bit wrap-around, only for an idle queue before the device starts; the device side then
     * calls {@code setPosition(index, index)}.
     */
    public void startIndicesAt(int index) {
        if ((index & ~0xFFFF) != 0) {
            throw new IllegalArgumentException("ring indices are 16-bit, got " + index);
        }
        if (freeCount != size || availIdx != publishedAvail || availIdx != lastUsed) {
            throw new IllegalStateException("indices can only be moved on an idle queue: chains are in flight or unpublished");
        }
        availIdx = publishedAvail = decidedAvail = lastUsed = index;
        memory.storeReleaseShort(availRing + SplitRing.RING_IDX, (short) index);
        memory.storeReleaseShort(usedRing + SplitRing.RING_IDX, (short) index);
        if (eventIdx && !interruptSuppressed) {
            memory.writeShort(usedEventAddress(), (short) index);
        }
    }

    /**
     * Low-level hook: writes descriptor {@code index} of the table with any values, no checks beyond
     * staying in the table; the free list does not change.
     */
    public void writeDescriptor(int index, long addr, int len, int flags, int next) {
        if (index < 0 || index >= size) {
            throw new IllegalArgumentException("descriptor " + index + " is outside the table of " + size);
        }
        writeDescriptorAt(descTable + (long) DESCRIPTOR_SIZE * index, addr, len, flags, next);
    }

    /** Low-level hook: writes entry {@code index} of an indirect table at {@code tableAddr} with any values. */
    public void writeIndirectDescriptor(long tableAddr, int index, long addr, int len, int flags, int next) {
        if (index < 0) {
            throw new IllegalArgumentException("indirect table entry " + index + " is negative");
        }
        writeDescriptorAt(tableAddr + (long) DESCRIPTOR_SIZE * index, addr, len, flags, next);
    }

    private void writeDescriptorAt(long entry, long addr, int len, int flags, int next) {
        memory.writeLong(entry + DESCRIPTOR_ADDR, addr);
        memory.writeInt(entry + DESCRIPTOR_LEN, len);
        memory.writeShort(entry + DESCRIPTOR_FLAGS, (short) flags);
        memory.writeShort(entry + DESCRIPTOR_NEXT, (short) next);
    }

    /**
     * Low-level hook: writes {@code head} (any 16-bit value) into the next avail entry; the next
     * {@link #publish()} exposes it. Pushing more than size entries before publishing wraps the ring.
     */
    public void pushAvail(int head) {
        memory.writeShort(availRing + SplitRing.availEntryOffset(availIdx & mask), (short) head);
        availIdx = (availIdx + 1) & 0xFFFF;
    }

    private long usedEventAddress() {
        return availRing + SplitRing.usedEventOffset(size);
    }

    @Override
    public String toString() {
        return String.format("DriverQueue[size=%d, desc=0x%x, avail=0x%x, used=0x%x, eventIdx=%b, availIdx=%d, lastUsed=%d, free=%d]",
                size, descTable, availRing, usedRing, eventIdx, availIdx, lastUsed, freeCount);
    }
}
