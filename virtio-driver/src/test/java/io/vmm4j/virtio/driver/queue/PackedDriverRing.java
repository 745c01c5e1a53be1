package io.vmm4j.virtio.driver.queue;

import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.queue.PackedRing;

import java.lang.invoke.VarHandle;
import java.util.ArrayDeque;

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
 * The driver's half of a packed virtqueue (virtio 1.2 §2.8.21, §2.8.22), for tests of
 * {@link io.vmm4j.virtio.queue.PackedQueue}: it allocates the descriptor ring and both event
 * suppression structures, makes buffers available (a chain's first flags stored last, with
 * release), reaps used descriptors skipping each buffer's slots (and with IN_ORDER, a whole batch),
 * and makes the kick decision from the device's structure. Raw hooks write any value into the ring
 * so tests can build every malformed case; they never write outside the three areas. Not the Java
 * driver's packed support (that is a later step): a test tool, not thread-safe.
 */
final class PackedDriverRing {
    /** A used descriptor the driver reaped: the buffer id, the used length and the flags. */
    record Used(int id, int length, int flags) {
    }

    final GuestMemory memory;
    final int size;
    final boolean eventIdx;
    final boolean inOrder;
    final long descRing;
    /** The driver event suppression structure: the driver writes it. */
    final long driverArea;
    /** The device event suppression structure: the device writes it. */
    final long deviceArea;

    private int availOffset;
    private boolean availWrap = true;
    private int usedOffset;
    private boolean usedWrap = true;
    private int freeSlots;
    private final ArrayDeque<Integer> freeIds = new ArrayDeque<>();
    private final ArrayDeque<Integer> inFlightOrder = new ArrayDeque<>();
    private final int[] slotsOf;
    private final boolean[] inFlight;
    private int decidedAvail = PackedRing.position(0, true);

    PackedDriverRing(GuestMemory memory, GuestAllocator allocator, int size, boolean eventIdx, boolean inOrder) {
        this.memory = memory;
        this.size = size;
        this.eventIdx = eventIdx;
        this.inOrder = inOrder;
        this.descRing = allocator.allocate(PackedRing.descriptorRingBytes(size), PackedRing.DESCRIPTOR_RING_ALIGNMENT);
        this.driverArea = allocator.allocate(PackedRing.EVENT_SUPPRESSION_SIZE, PackedRing.EVENT_SUPPRESSION_ALIGNMENT);
        this.deviceArea = allocator.allocate(PackedRing.EVENT_SUPPRESSION_SIZE, PackedRing.EVENT_SUPPRESSION_ALIGNMENT);
        // §2.8.13: the descriptor ring is zero-initialized; flags 0 in both structures is ENABLE
        memory.fill(descRing, PackedRing.descriptorRingBytes(size), (byte) 0);
        memory.fill(driverArea, 4, (byte) 0);
        memory.fill(deviceArea, 4, (byte) 0);
        this.freeSlots = size;
        this.slotsOf = new int[size];
        this.inFlight = new boolean[size];
        for (int id = 0; id < size; id++) {
            freeIds.add(id);
        }
    }

    int availOffset() {
        return availOffset;
    }

    boolean availWrap() {
        return availWrap;
    }

    int availPosition() {
        return PackedRing.position(availOffset, availWrap);
    }

    int usedPosition() {
        return PackedRing.position(usedOffset, usedWrap);
    }

    int freeSlots() {
        return freeSlots;
    }

    /**
     * Makes a buffer of consecutive descriptors available, readable elements first; returns its
     * buffer id, or -1 if the ring lacks slots or ids.
     */
    int add(long[] addrs, int[] lens, int readableCount) {
        int n = addrs.length;
        if (n == 0 || n > freeSlots || freeIds.isEmpty()) {
            return -1;
        }
        int id = freeIds.poll();
        long firstFlagsAddress = 0;
        int firstFlags = 0;
        for (int i = 0; i < n; i++) {
            int flags = PackedRing.availFlags(availWrap) | (i >= readableCount ? DESC_F_WRITE : 0) | (i < n - 1 ? DESC_F_NEXT : 0);
            long entry = slot(availOffset);
            memory.writeLong(entry + DESCRIPTOR_ADDR, addrs[i]);
            memory.writeInt(entry + DESCRIPTOR_LEN, lens[i]);
            memory.writeShort(entry + DESCRIPTOR_ID, (short) id);
            if (i == 0) {
                firstFlagsAddress = entry + DESCRIPTOR_FLAGS;
                firstFlags = flags;
            } else {
                memory.writeShort(entry + DESCRIPTOR_FLAGS, (short) flags);
            }
            advanceAvail(1);
        }
        track(id, n);
        // §2.8.21.1: the first descriptor's flags last, after a barrier, expose the whole list
        memory.storeReleaseShort(firstFlagsAddress, (short) firstFlags);
        return id;
    }

    /** Makes a buffer available as one ring descriptor naming an indirect table of its elements at {@code table}. */
    int addIndirect(long table, long[] addrs, int[] lens, int readableCount) {
        if (freeSlots < 1 || freeIds.isEmpty()) {
            return -1;
        }
        for (int i = 0; i < addrs.length; i++) {
            writeIndirectEntry(table, i, addrs[i], lens[i], 0, i >= readableCount ? DESC_F_WRITE : 0);
        }
        int id = freeIds.poll();
        long entry = slot(availOffset);
        memory.writeLong(entry + DESCRIPTOR_ADDR, table);
        memory.writeInt(entry + DESCRIPTOR_LEN, addrs.length * DESCRIPTOR_SIZE);
        memory.writeShort(entry + DESCRIPTOR_ID, (short) id);
        int flags = PackedRing.availFlags(availWrap) | DESC_F_INDIRECT;
        advanceAvail(1);
        track(id, 1);
        memory.storeReleaseShort(entry + DESCRIPTOR_FLAGS, (short) flags);
        return id;
    }

    private void track(int id, int slots) {
        slotsOf[id] = slots;
        inFlight[id] = true;
        inFlightOrder.add(id);
        freeSlots -= slots;
    }

    /** Raw hook: writes every field of ring slot {@code slot}, flags included, with no checks. */
    void writeDescriptor(int slot, long addr, int len, int id, int flags) {
        long entry = slot(slot);
        memory.writeLong(entry + DESCRIPTOR_ADDR, addr);
        memory.writeInt(entry + DESCRIPTOR_LEN, len);
        memory.writeShort(entry + DESCRIPTOR_ID, (short) id);
        memory.writeShort(entry + DESCRIPTOR_FLAGS, (short) flags);
    }

    /** Raw hook: writes entry {@code i} of an indirect table. */
    void writeIndirectEntry(long table, int i, long addr, int len, int id, int flags) {
        long entry = table + (long) DESCRIPTOR_SIZE * i;
        memory.writeLong(entry + DESCRIPTOR_ADDR, addr);
        memory.writeInt(entry + DESCRIPTOR_LEN, len);
        memory.writeShort(entry + DESCRIPTOR_ID, (short) id);
        memory.writeShort(entry + DESCRIPTOR_FLAGS, (short) flags);
    }

    /** The AVAIL/USED bits that mark a slot available in the current lap of the raw position. */
    int avail() {
        return PackedRing.availFlags(availWrap);
    }

    /** Raw hook: moves the driver's avail position as if {@code slots} descriptors had been written. */
    void skipAvail(int slots) {
        advanceAvail(slots);
    }

    private void advanceAvail(int slots) {
        availOffset += slots;
        while (availOffset >= size) {
            availOffset -= size;
            availWrap = !availWrap;
        }
    }

    /**
     * Reaps the used descriptor at the next used slot, or null if the device has not written one
     * (§2.8.22): skips the buffer's slots, and with IN_ORDER every buffer up to the id it names.
     *
     * @throws IllegalStateException if the device names an id that is not in flight
     */
    Used pollUsed() {
        long entry = slot(usedOffset);
        int flags = Short.toUnsignedInt(memory.loadAcquireShort(entry + DESCRIPTOR_FLAGS));
        if ((flags & (DESC_F_AVAIL | DESC_F_USED)) != PackedRing.usedFlags(usedWrap)) {
            return null;
        }
        int id = Short.toUnsignedInt(memory.readShort(entry + DESCRIPTOR_ID));
        int length = memory.readInt(entry + DESCRIPTOR_LEN);
        if (id >= size || !inFlight[id]) {
            throw new IllegalStateException("the device used buffer id " + id + ", which is not in flight");
        }
        int slots = 0;
        if (inOrder) {
            // §2.8.8: the used id is the last of the batch; every buffer before it is used too
            int done;
            do {
                done = inFlightOrder.poll();
                slots += release(done);
            } while (done != id);
        } else {
            inFlightOrder.remove(id);
            slots = release(id);
        }
        usedOffset += slots;
        if (usedOffset >= size) {
            usedOffset -= size;
            usedWrap = !usedWrap;
        }
        return new Used(id, length, flags);
    }

    private int release(int id) {
        inFlight[id] = false;
        freeIds.add(id);
        freeSlots += slotsOf[id];
        return slotsOf[id];
    }

    /** Whether the device wants a kick for what was made available since the last decision (§2.8.21.2). */
    boolean needsKick() {
        VarHandle.fullFence(); // §2.8.21.3.1: flags stores before reading the device's structure
        int event = memory.readInt(deviceArea);
        int flags = event >>> 16;
        int old = decidedAvail;
        decidedAvail = availPosition();
        if (flags == PackedRing.RING_EVENT_FLAGS_DESC) {
            return PackedRing.needsEvent(event & 0xFFFF, decidedAvail, old, size);
        }
        return flags != PackedRing.RING_EVENT_FLAGS_DISABLE;
    }

    int deviceEventFlags() {
        return Short.toUnsignedInt(memory.readShort(deviceArea + PackedRing.EVENT_FLAGS));
    }

    int deviceEventOffWrap() {
        return Short.toUnsignedInt(memory.readShort(deviceArea + PackedRing.EVENT_OFF_WRAP));
    }

    /** Writes the driver event suppression structure, any value (a raw hook too). */
    void driverEvent(int offWrap, int flags) {
        memory.writeInt(driverArea, (offWrap & 0xFFFF) | (flags & 0xFFFF) << 16);
    }

    int usedFlagsAt(int slot) {
        return Short.toUnsignedInt(memory.readShort(slot(slot) + DESCRIPTOR_FLAGS));
    }

    private long slot(int slot) {
        return descRing + (long) DESCRIPTOR_SIZE * slot;
    }
}
