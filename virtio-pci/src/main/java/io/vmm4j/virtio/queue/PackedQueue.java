package io.vmm4j.virtio.queue;

import io.vmm4j.core.memory.GuestMemory;

import java.lang.invoke.VarHandle;
import java.util.Arrays;

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
 * One packed virtqueue in the device role (virtio 1.2 §2.8): takes the buffers the driver made
 * available in the descriptor ring and writes used descriptors back into it, under the same rules
 * as {@link SplitQueue}: every value read from the guest is validated before it is used, and read
 * only once; a rule broken by the guest throws {@link VirtqueueException}, after which the queue is
 * {@linkplain #isBroken() broken} and every further ring operation throws
 * {@link IllegalStateException} (the transport sets DEVICE_NEEDS_RESET). Nothing outside guest
 * memory is ever read or written, and a buffer that fails leaves the ring untouched.
 *
 * <p><b>Ring.</b> A descriptor is available when its AVAIL bit equals the driver ring wrap counter
 * and its USED bit does not (§2.8.1); this queue keeps that counter for the next slot it reads, and
 * the device ring wrap counter for the next used descriptor it writes. Both start at 1 and flip at
 * the ring's end. Queue sizes are 1..32768, powers of two or not (§2.8.10.1). A chain's
 * descriptors are consecutive slots linked by NEXT, each marked available for its own lap, and the
 * buffer id is the last one's (§2.8.6); at most the ring's slots not in flight. Buffer ids must be
 * below the queue size (at most that many buffers can be in flight, §2.8.10.1, and every driver we
 * know numbers them so) and not in flight already.
 *
 * <p><b>Indirect.</b> A descriptor with INDIRECT names a table of {@code len / 16} descriptors
 * (§2.8.7), always accepted (the device offers VIRTIO_F_INDIRECT_DESC). It stands alone: not with
 * NEXT and not inside a NEXT-linked list (§2.8.19). In the table only WRITE counts; NEXT and the
 * ids are reserved and ignored, as §2.8.7 says, because the table's length alone says where it
 * ends; a nested INDIRECT is refused (§2.8.19 forbids it, and split refuses a table in a table too).
 *
 * <p><b>Used descriptors.</b> {@link #push} records a used buffer; {@link #publish()} writes the used
 * descriptors, each at the next used slot (skipping as many slots as the buffer took, §2.8.6), the
 * first one's flags last with a release store so the driver sees the batch at once (§2.8.21.1
 * applied to the device side; so the chains of one multi-buffer request, pushed together and
 * published once, appear whole, as §2.8.9 asks). With VIRTIO_F_IN_ORDER buffers must be pushed in the order they
 * were popped (§6.2), and publish writes one used descriptor for each run of buffers, with the last
 * one's id (§2.8.8), whenever every skipped buffer was used completely (the driver assumes so of
 * skipped buffers: a read-only buffer, or a writable one filled to its length); otherwise one each.
 *
 * <p><b>Notifications.</b> The device event suppression structure (the device area) says ENABLE,
 * DISABLE, or with VIRTIO_F_EVENT_IDX DESC with the next slot to kick for; the driver's structure
 * (the driver area) is read with the same checks as the ring (§2.8.10, §2.8.14). The loop and its
 * re-check after enabling are {@link SplitQueue}'s; with EVENT_IDX and notifications enabled,
 * {@code pop} keeps off_wrap at the first slot not looked at.
 *
 * <p><b>Positions.</b> {@link #nextAvail()} and {@link #nextUsed()} are a ring offset in bits 0-14
 * and the wrap counter in bit 15, the halves of vhost-user's packed GET/SET_VRING_BASE value
 * ({@link PackedRing#vringBase}). Chains in flight at a switch belong to the backend that popped
 * them.
 *
 * <p>Not thread-safe: one consumer thread owns the queue. The data path (pop, push, publish,
 * needsNotification, enable/disable) allocates nothing.
 */
public final class PackedQueue implements Virtqueue {
    /** Segments an indirect table may bring, as {@link SplitQueue#INDIRECT_SEGMENT_LIMIT}. */
    public static final int INDIRECT_SEGMENT_LIMIT = SplitQueue.INDIRECT_SEGMENT_LIMIT;
    /** The longest chain in bytes, as on a split ring (§2.7.5.2). */
    public static final long MAX_CHAIN_BYTES = SplitQueue.MAX_CHAIN_BYTES;

    private static final byte FREE = 0;
    private static final byte POPPED = 1;
    private static final byte PUSHED = 2;
    /** Marks ids while rewind checks them, so an id met twice is seen. */
    private static final byte CHECKING = 3;

    private final GuestMemory memory;
    private final int size;
    private final long descRing;
    /** The driver event suppression structure (driver area), which the device reads. */
    private final long driverEvent;
    /** The device event suppression structure (device area), which the device writes. */
    private final long deviceEvent;
    private final boolean eventIdx;
    private final boolean inOrder;
    private final int maxChainSegments;

    private int availOffset;
    private boolean availWrap = true;
    /** Descriptors after the avail position that rewound chains hold: looked at already. */
    private int rewoundDescriptors;
    /** The used position after every push, published or not. */
    private int usedOffset;
    private boolean usedWrap = true;
    /** The used position the driver can see. */
    private int publishedPosition = PackedRing.position(0, true);

    /** Per buffer id: FREE, POPPED (in flight), PUSHED (used but not published, so still not the driver's). */
    private final byte[] idState;
    /** Per buffer id in flight: ring slots its chain took. */
    private final int[] idDescriptors;
    /** Per buffer id in flight: bytes of its writable segments. */
    private final long[] idWritableBytes;
    /** Ids in pop order (a ring of size entries); {@code popped} counts pops minus rewinds. */
    private final int[] popOrder;
    private int popped;
    /** Where the next pop's id goes in popOrder. */
    private int popSlot;
    /** With IN_ORDER: where in popOrder the oldest chain not pushed yet is; the next push must be that one. */
    private int pushSlot;
    /** Pushes waiting for publish, in push order. */
    private final int[] pendingIds;
    private final int[] pendingLengths;
    private int pendingCount;

    private int decidedPosition = PackedRing.position(0, true);
    private boolean decidedKnown = true;
    /** Used slots published since the last notification decision. */
    private long advancedSinceDecision;
    private boolean notificationsEnabled = true;
    private boolean broken;

    /**
     * A queue over the areas the driver placed at the given guest-physical addresses. Writes
     * nothing; starts at offset 0 with both wrap counters 1 and notifications enabled.
     *
     * @param driverArea the driver event suppression structure (queue_driver)
     * @param deviceArea the device event suppression structure (queue_device)
     * @param eventIdx   whether VIRTIO_F_EVENT_IDX was negotiated
     * @param inOrder    whether VIRTIO_F_IN_ORDER was negotiated
     * @throws VirtqueueException if the layout breaks §2.8.10.1 (see {@link #validateLayout})
     */
    public PackedQueue(GuestMemory memory, int size, long descRing, long driverArea, long deviceArea, boolean eventIdx,
                       boolean inOrder) {
        validateLayout(memory, size, descRing, driverArea, deviceArea);
        this.memory = memory;
        this.size = size;
        this.descRing = descRing;
        this.driverEvent = driverArea;
        this.deviceEvent = deviceArea;
        this.eventIdx = eventIdx;
        this.inOrder = inOrder;
        this.maxChainSegments = Math.max(size, INDIRECT_SEGMENT_LIMIT);
        this.idState = new byte[size];
        this.idDescriptors = new int[size];
        this.idWritableBytes = new long[size];
        this.popOrder = new int[size];
        this.pendingIds = new int[size];
        this.pendingLengths = new int[size];
    }

    /**
     * Checks what the driver wrote into the queue's address registers: the size is in 1..32768 (any
     * value), the descriptor ring is 16-byte aligned and each event suppression structure 4-byte
     * aligned, each wholly inside one guest memory region (§2.8.10.1, §2.8.11).
     *
     * @throws VirtqueueException naming the area and the value that is wrong
     */
    public static void validateLayout(GuestMemory memory, int size, long descRing, long driverArea, long deviceArea) {
        if (!PackedRing.isValidQueueSize(size)) {
            // virtio 1.2 §2.8: packed virtqueues have up to 2^15 entries; §2.8.10.1: not only powers of 2
            throw new VirtqueueException("queue size " + size + " is not in 1.." + PackedRing.MAX_QUEUE_SIZE
                    + " (virtio 1.2 §2.8, packed ring)");
        }
        checkArea(memory, "descriptor ring", descRing, PackedRing.DESCRIPTOR_RING_ALIGNMENT, PackedRing.descriptorRingBytes(size), size);
        checkArea(memory, "driver event suppression area", driverArea, PackedRing.EVENT_SUPPRESSION_ALIGNMENT,
                PackedRing.EVENT_SUPPRESSION_SIZE, size);
        checkArea(memory, "device event suppression area", deviceArea, PackedRing.EVENT_SUPPRESSION_ALIGNMENT,
                PackedRing.EVENT_SUPPRESSION_SIZE, size);
    }

    private static void checkArea(GuestMemory memory, String area, long address, int alignment, long bytes, int size) {
        if ((address & (alignment - 1)) != 0) {
            // virtio 1.2 §2.8.11: each part starts at a multiple of its alignment
            throw new VirtqueueException(String.format(
                    "%s address 0x%x is not %d-byte aligned (virtio 1.2 §2.8.10.1)", area, address, alignment));
        }
        if (!memory.contains(address, bytes)) {
            throw new VirtqueueException(String.format(
                    "%s [0x%x, +%d) for queue size %d is not inside one guest memory region", area, address, bytes, size));
        }
    }

    @Override
    public int size() {
        return size;
    }

    public boolean eventIdx() {
        return eventIdx;
    }

    public boolean inOrder() {
        return inOrder;
    }

    /** The most segments a chain may have on this queue: {@code max(size, 1024)}. */
    @Override
    public int maxChainSegments() {
        return maxChainSegments;
    }

    @Override
    public boolean isBroken() {
        return broken;
    }

    /** The next slot to pop in bits 0-14, the driver ring wrap counter expected there in bit 15. */
    @Override
    public int nextAvail() {
        return PackedRing.position(availOffset, availWrap);
    }

    /**
     * The slot the next used descriptor goes to in bits 0-14, the device ring wrap counter in bit 15.
     * Publish before reading it for a backend switch.
     */
    @Override
    public int nextUsed() {
        return PackedRing.position(usedOffset, usedWrap);
    }

    /** The driver ring wrap counter of the next slot to pop (§2.8.1). */
    public boolean availWrapCounter() {
        return availWrap;
    }

    /** The device ring wrap counter of the next used descriptor (§2.8.1). */
    public boolean usedWrapCounter() {
        return usedWrap;
    }

    /**
     * Resumes where another backend stopped: positions as {@link #nextAvail()} and {@link #nextUsed()}
     * give them (vhost-user's SET_VRING_BASE halves). Forgets every chain in flight and every
     * unpublished push. The first notification decision afterwards notifies.
     *
     * @throws IllegalArgumentException if a position is not 16 bits, an offset is not below the
     *                                  queue size, or more than size slots would be in flight
     */
    @Override
    public void setPosition(int nextAvail, int nextUsed) {
        checkUsable();
        if ((nextAvail & ~0xFFFF) != 0 || (nextUsed & ~0xFFFF) != 0
                || (nextAvail & PackedRing.OFFSET_MASK) >= size || (nextUsed & PackedRing.OFFSET_MASK) >= size) {
            throw new IllegalArgumentException(String.format(
                    "packed ring positions are an offset below the queue size %d in bits 0-14 and a wrap counter in bit 15,"
                            + " got next avail 0x%x and next used 0x%x", size, nextAvail, nextUsed));
        }
        int inFlight = PackedRing.distance(nextUsed, nextAvail, size);
        if (inFlight > size) {
            throw new IllegalArgumentException(String.format(
                    "next avail 0x%x and next used 0x%x put %d slots in flight, more than the queue size %d",
                    nextAvail, nextUsed, inFlight, size));
        }
        availOffset = nextAvail & PackedRing.OFFSET_MASK;
        availWrap = (nextAvail & PackedRing.WRAP_BIT) != 0;
        usedOffset = nextUsed & PackedRing.OFFSET_MASK;
        usedWrap = (nextUsed & PackedRing.WRAP_BIT) != 0;
        publishedPosition = nextUsed;
        rewoundDescriptors = 0;
        Arrays.fill(idState, FREE);
        popped = 0;
        popSlot = 0;
        pushSlot = 0;
        pendingCount = 0;
        decidedPosition = nextUsed;
        decidedKnown = false;
        advancedSinceDecision = 0;
    }

    /** Whether the driver has made a buffer available that this queue has not popped yet. */
    public boolean hasAvailable() {
        checkUsable();
        return isAvailable(readFlags(availOffset), availWrap);
    }

    @Override
    public boolean pop(DescriptorChain into) {
        checkUsable();
        // virtio 1.2 §2.8.21.1: the driver stores the first descriptor's flags last; acquire them first
        int flags = readFlags(availOffset);
        if (!isAvailable(flags, availWrap)) {
            checkNotUsedThisLap(flags);
            if (!eventIdx || !notificationsEnabled) {
                return false;
            }
            // §2.8.10: off_wrap written by the last pop must be visible before this last look, or a
            // driver making a buffer available now reads the old value and skips its kick
            VarHandle.fullFence();
            flags = readFlags(availOffset);
            if (!isAvailable(flags, availWrap)) {
                checkNotUsedThisLap(flags);
                return false;
            }
        }
        int descriptors;
        try {
            descriptors = readChain(flags, into);
        } catch (VirtqueueException e) {
            into.invalidate();
            throw e;
        }
        advanceAvail(descriptors);
        rewoundDescriptors = Math.max(0, rewoundDescriptors - descriptors);
        if (eventIdx && notificationsEnabled) {
            writeDeviceEventDesc();
        }
        return true;
    }

    @Override
    public void rewind(int chains) {
        checkUsable();
        if (chains < 0 || chains > Math.min(popped, size)) {
            throw new IllegalArgumentException("cannot rewind " + chains + " chains: " + Math.min(popped, size)
                    + " were popped since the queue started");
        }
        int descriptors = 0;
        int checked = 0;
        try {
            for (; checked < chains; checked++) {
                int id = popOrder[popOrderSlot(checked)];
                if (idState[id] != POPPED) {
                    throw new IllegalArgumentException("cannot rewind " + chains + " chains: the chain popped " + (checked + 1)
                            + " pops ago (buffer id " + id + ") is not waiting to be returned");
                }
                idState[id] = CHECKING;
                descriptors += idDescriptors[id];
            }
        } finally {
            for (int k = 0; k < checked; k++) {
                idState[popOrder[popOrderSlot(k)]] = chains == checked ? FREE : POPPED;
            }
        }
        popped -= chains;
        popSlot -= chains;
        if (popSlot < 0) {
            popSlot += size;
        }
        stepAvailBack(descriptors);
        // §2.8.10: off_wrap stays past the chains given back, as avail_event does on a split ring
        rewoundDescriptors += descriptors;
    }

    /**
     * Records buffer {@code head} (its buffer id) as used with {@code writtenLength} bytes written;
     * the driver sees it after {@link #publish()}.
     *
     * @throws IllegalArgumentException if head is not below the queue size or the length is negative
     * @throws IllegalStateException    if that buffer is not popped and unreturned, or with
     *                                  VIRTIO_F_IN_ORDER it is not the oldest one in flight
     */
    @Override
    public void push(int head, int writtenLength) {
        checkUsable();
        if (head < 0 || head >= size) {
            throw new IllegalArgumentException("used buffer id " + head + " is outside the queue of size " + size);
        }
        if (writtenLength < 0) {
            throw new IllegalArgumentException("written length must not be negative, was " + writtenLength + " for buffer id " + head);
        }
        if (idState[head] != POPPED) {
            throw new IllegalStateException("push of buffer id " + head + ", which is not popped and unreturned");
        }
        if (inOrder) {
            int oldest = popOrder[pushSlot];
            if (head != oldest) {
                // virtio 1.2 §6.2: with VIRTIO_F_IN_ORDER the device uses buffers in the order they were made available
                throw new IllegalStateException("VIRTIO_F_IN_ORDER: buffer id " + head + " pushed before buffer id " + oldest
                        + ", which was made available first (virtio 1.2 §6.2)");
            }
            pushSlot = pushSlot + 1 == size ? 0 : pushSlot + 1;
        }
        idState[head] = PUSHED;
        pendingIds[pendingCount] = head;
        pendingLengths[pendingCount] = writtenLength;
        pendingCount++;
        int n = idDescriptors[head];
        usedOffset += n;
        if (usedOffset >= size) {
            usedOffset -= size;
            usedWrap = !usedWrap;
        }
    }

    /**
     * Writes the used descriptors of every push since the last publish; the first one's flags go
     * last, with a release store, so the driver sees all or none (§2.8.21.1, §2.8.22).
     */
    @Override
    public void publish() {
        checkUsable();
        if (pendingCount == 0) {
            return;
        }
        int offset = publishedPosition & PackedRing.OFFSET_MASK;
        boolean wrap = (publishedPosition & PackedRing.WRAP_BIT) != 0;
        long firstFlagsAddress = -1;
        int firstFlags = 0;
        long advanced = 0;
        for (int i = 0; i < pendingCount; ) {
            int last = i;
            int slots = idDescriptors[pendingIds[i]];
            if (inOrder) {
                // §2.8.8: one used descriptor for a batch, the last buffer's id; the driver takes the
                // skipped ones as used completely, so only buffers that were may be skipped
                while (last + 1 < pendingCount && pendingLengths[last] == idWritableBytes[pendingIds[last]]) {
                    last++;
                    slots += idDescriptors[pendingIds[last]];
                }
            }
            int id = pendingIds[last];
            int length = pendingLengths[last];
            long entry = descRing + (long) DESCRIPTOR_SIZE * offset;
            // §2.8.3, §2.8.4: WRITE in a used descriptor says the device wrote data, and len how much
            int flags = PackedRing.usedFlags(wrap) | (length > 0 ? DESC_F_WRITE : 0);
            memory.writeInt(entry + DESCRIPTOR_LEN, length);
            memory.writeShort(entry + DESCRIPTOR_ID, (short) id);
            if (firstFlagsAddress < 0) {
                firstFlagsAddress = entry + DESCRIPTOR_FLAGS;
                firstFlags = flags;
            } else {
                memory.writeShort(entry + DESCRIPTOR_FLAGS, (short) flags);
            }
            offset += slots;
            if (offset >= size) {
                offset -= size;
                wrap = !wrap;
            }
            advanced += slots;
            i = last + 1;
        }
        memory.storeReleaseShort(firstFlagsAddress, (short) firstFlags);
        for (int i = 0; i < pendingCount; i++) {
            idState[pendingIds[i]] = FREE;
        }
        pendingCount = 0;
        publishedPosition = PackedRing.position(offset, wrap);
        advancedSinceDecision += advanced;
    }

    /**
     * Whether the driver wants a used buffer notification for what was published since the last
     * decision (§2.8.10): per the driver event suppression structure, ENABLE yes, DISABLE no, DESC
     * (EVENT_IDX only) if the used position passed the descriptor off_wrap names. False if nothing
     * was published since the last decision.
     *
     * @throws VirtqueueException if the structure holds a reserved value, DESC without EVENT_IDX, or
     *                            an offset outside the ring
     */
    @Override
    public boolean needsNotification() {
        checkUsable();
        // §2.8.22: the used descriptors' flags must be visible before the driver's structure is read
        VarHandle.fullFence();
        if (advancedSinceDecision == 0) {
            return false;
        }
        int event = memory.readInt(driverEvent);
        int offWrap = event & 0xFFFF;
        int flags = event >>> 16;
        if ((flags & ~PackedRing.RING_EVENT_FLAGS_MASK) != 0 || flags == PackedRing.RING_EVENT_FLAGS_MASK) {
            // virtio 1.2 §2.8.14: desc_event_flags is 2 bits with 0x3 reserved, the other 14 bits reserved as 0
            throw broken(String.format("driver event suppression flags 0x%x are not ENABLE (0), DISABLE (1) or DESC (2)"
                    + " (virtio 1.2 §2.8.10, §2.8.14)", flags));
        }
        if (flags == PackedRing.RING_EVENT_FLAGS_DESC) {
            if (!eventIdx) {
                // §2.8.10: RING_EVENT_FLAGS_DESC is only valid if VIRTIO_F_EVENT_IDX has been negotiated
                throw broken("driver event suppression flags 0x2 (DESC) without VIRTIO_F_EVENT_IDX negotiated (virtio 1.2 §2.8.10)");
            }
            if ((offWrap & PackedRing.OFFSET_MASK) >= size) {
                throw broken(String.format("driver event suppression off_wrap 0x%x names offset %d, outside the ring of size %d"
                        + " (virtio 1.2 §2.8.10)", offWrap, offWrap & PackedRing.OFFSET_MASK, size));
            }
        }
        int old = decidedPosition;
        boolean oldKnown = decidedKnown;
        long advanced = advancedSinceDecision;
        decidedPosition = publishedPosition;
        decidedKnown = true;
        advancedSinceDecision = 0;
        return switch (flags) {
            case PackedRing.RING_EVENT_FLAGS_ENABLE -> true;
            case PackedRing.RING_EVENT_FLAGS_DISABLE -> false;
            default -> !oldKnown || advanced >= 2L * size || PackedRing.needsEvent(offWrap, publishedPosition, old, size);
        };
    }

    /**
     * Asks the driver not to kick: DISABLE in the device event suppression structure (§2.8.10).
     * Already off, it writes nothing (a polling device calls this every pass; see SplitQueue's).
     */
    @Override
    public void disableNotifications() {
        checkUsable();
        if (notificationsEnabled) {
            memory.writeShort(deviceEvent + PackedRing.EVENT_FLAGS, (short) PackedRing.RING_EVENT_FLAGS_DISABLE);
        }
        notificationsEnabled = false;
    }

    /**
     * Asks the driver to kick again (§2.8.10): ENABLE, or with EVENT_IDX DESC for the first slot not
     * looked at; then fences and looks at that slot once more. Returns true if a buffer is already
     * available there: the caller must process again instead of sleeping. Chains handed back with
     * {@link #rewind} are not counted.
     */
    @Override
    public boolean enableNotifications() {
        checkUsable();
        notificationsEnabled = true;
        if (eventIdx) {
            writeDeviceEventDesc();
        } else {
            memory.writeShort(deviceEvent + PackedRing.EVENT_FLAGS, (short) PackedRing.RING_EVENT_FLAGS_ENABLE);
        }
        // store-load: the structure must be visible before the slot is read again, or a driver making
        // a buffer available in between sees events off and we see no buffer: a lost kick
        VarHandle.fullFence();
        int offset = availOffset + rewoundDescriptors;
        boolean wrap = availWrap;
        if (offset >= size) {
            offset -= size;
            wrap = !wrap;
        }
        return isAvailable(readFlags(offset), wrap);
    }

    @Override
    public VirtqueueException markBroken(String message) {
        return broken(message);
    }

    /** off_wrap for the first slot not looked at, and DESC, in one store (§2.8.14). */
    private void writeDeviceEventDesc() {
        int offset = availOffset + rewoundDescriptors;
        boolean wrap = availWrap;
        if (offset >= size) {
            offset -= size;
            wrap = !wrap;
        }
        memory.writeInt(deviceEvent, PackedRing.position(offset, wrap) | PackedRing.RING_EVENT_FLAGS_DESC << 16);
    }

    private int readFlags(int offset) {
        return Short.toUnsignedInt(memory.loadAcquireShort(descRing + (long) DESCRIPTOR_SIZE * offset + DESCRIPTOR_FLAGS));
    }

    private static boolean isAvailable(int flags, boolean wrap) {
        return (flags & (DESC_F_AVAIL | DESC_F_USED)) == PackedRing.availFlags(wrap);
    }

    /**
     * At the next slot to pop, a descriptor with AVAIL and USED both equal to the wrap counter would
     * be used in this lap, which only the device does, and only behind the avail position (§2.8.1).
     */
    private void checkNotUsedThisLap(int flags) {
        if ((flags & (DESC_F_AVAIL | DESC_F_USED)) == PackedRing.usedFlags(availWrap)) {
            throw broken(String.format("descriptor at slot %d: flags 0x%x mark it used in the current lap (AVAIL and USED both %d),"
                    + " but the device has not reached it yet: the driver wrote a used descriptor or lost the wrap counter"
                    + " (virtio 1.2 §2.8.1)", availOffset, flags, availWrap ? 1 : 0));
        }
    }

    /** Reads the chain at the avail position, whose first flags are {@code firstFlags}; returns the ring slots it takes. */
    private int readChain(int firstFlags, DescriptorChain chain) {
        chain.reset(-1);
        int limit = Math.min(maxChainSegments, chain.capacity());
        int inFlight = PackedRing.distance(publishedPosition, nextAvail(), size);
        int room = size - inFlight;
        int offset = availOffset;
        boolean wrap = availWrap;
        int flags = firstFlags;
        for (int n = 1; ; n++) {
            if (n > room) {
                // §2.8.16, §2.8.17: no list longer than the queue, and no descriptor changed while in flight
                throw broken(String.format("descriptor at slot %d would be descriptor %d of the chain starting at slot %d, but only %d"
                                + " of the ring's %d slots are not in flight: the chain is longer than the queue or overwrites"
                                + " descriptors in flight (virtio 1.2 §2.8.16, §2.8.17)",
                        offset, n, availOffset, room, size));
            }
            long entry = descRing + (long) DESCRIPTOR_SIZE * offset;
            if (n > 1) {
                flags = Short.toUnsignedInt(memory.readShort(entry + DESCRIPTOR_FLAGS));
                if (!isAvailable(flags, wrap)) {
                    // §2.8.6, §2.8.17: every descriptor of the list is made available before the first
                    throw broken(String.format("descriptor at slot %d of the chain starting at slot %d: flags 0x%x do not mark it"
                                    + " available for wrap counter %d, yet the previous descriptor has NEXT (virtio 1.2 §2.8.6, §2.8.17)",
                            offset, availOffset, flags, wrap ? 1 : 0));
                }
            }
            long address = memory.readLong(entry + DESCRIPTOR_ADDR);
            int length = memory.readInt(entry + DESCRIPTOR_LEN);
            if ((flags & DESC_F_INDIRECT) != 0) {
                if (n > 1) {
                    // virtio 1.2 §2.8.19: no INDIRECT descriptor in a list linked by NEXT
                    throw broken(String.format("descriptor at slot %d of the chain starting at slot %d: flags 0x%x set INDIRECT in a"
                            + " list linked by NEXT (virtio 1.2 §2.8.19)", offset, availOffset, flags));
                }
                if ((flags & DESC_F_NEXT) != 0) {
                    throw broken(String.format("descriptor at slot %d: flags 0x%x set INDIRECT together with NEXT (virtio 1.2 §2.8.19)",
                            offset, flags));
                }
                // §2.8.7: WRITE is reserved and ignored in a descriptor naming a table
                readIndirectTable(offset, address, length, chain, limit);
                return finishChain(entry, 1, chain);
            }
            appendSegment(chain, limit, offset, -1, address, length, (flags & DESC_F_WRITE) != 0);
            if ((flags & DESC_F_NEXT) == 0) {
                return finishChain(entry, n, chain);
            }
            if (++offset == size) {
                offset = 0;
                wrap = !wrap;
            }
        }
    }

    /** Reads the buffer id from the chain's last descriptor (§2.8.6), checks it and records the chain in flight. */
    private int finishChain(long lastEntry, int descriptors, DescriptorChain chain) {
        int id = Short.toUnsignedInt(memory.readShort(lastEntry + DESCRIPTOR_ID));
        if (id >= size) {
            throw broken(String.format("chain at slot %d: buffer id %d is outside the queue of size %d (at most %d buffers are"
                    + " in flight, virtio 1.2 §2.8.10.1)", availOffset, id, size, size));
        }
        if (idState[id] != FREE) {
            throw broken(String.format("chain at slot %d: buffer id %d is already in flight and not yet used; the driver reused it"
                    + " (virtio 1.2 §2.8.16)", availOffset, id));
        }
        chain.head(id);
        idState[id] = POPPED;
        idDescriptors[id] = descriptors;
        idWritableBytes[id] = chain.writableBytes();
        popOrder[popSlot] = id;
        popSlot = popSlot + 1 == size ? 0 : popSlot + 1;
        popped++;
        return descriptors;
    }

    private void readIndirectTable(int slot, long table, int tableLength, DescriptorChain chain, int limit) {
        long tableBytes = Integer.toUnsignedLong(tableLength);
        if (tableBytes == 0 || tableBytes % DESCRIPTOR_SIZE != 0) {
            // virtio 1.2 §2.8.7: the table is len / 16 whole descriptors, at least one
            throw broken(String.format("descriptor at slot %d: indirect table length %d is not a positive multiple of %d"
                    + " (virtio 1.2 §2.8.7)", slot, tableBytes, DESCRIPTOR_SIZE));
        }
        if (!memory.contains(table, tableBytes)) {
            throw broken(String.format("descriptor at slot %d: indirect table [0x%x, +%d) is not inside one guest memory region",
                    slot, table, tableBytes));
        }
        long entries = tableBytes / DESCRIPTOR_SIZE;
        for (int i = 0; i < entries; i++) {
            long entry = table + (long) DESCRIPTOR_SIZE * i;
            int flags = Short.toUnsignedInt(memory.readShort(entry + DESCRIPTOR_FLAGS));
            if ((flags & DESC_F_INDIRECT) != 0) {
                // virtio 1.2 §2.8.19: no flag but WRITE in an indirect table; a table in a table would nest
                throw broken(String.format("entry %d of the indirect table in the descriptor at slot %d: flags 0x%x set INDIRECT"
                        + " inside an indirect table (virtio 1.2 §2.8.19)", i, slot, flags));
            }
            // §2.8.7: the other flags (NEXT among them) and the id are reserved and ignored by the device
            appendSegment(chain, limit, slot, i, memory.readLong(entry + DESCRIPTOR_ADDR), memory.readInt(entry + DESCRIPTOR_LEN),
                    (flags & DESC_F_WRITE) != 0);
        }
    }

    /** Validates one buffer element and appends it; {@code tableEntry} is -1 for a ring descriptor at {@code slot}. */
    private void appendSegment(DescriptorChain chain, int limit, int slot, int tableEntry, long address, int length,
                               boolean writable) {
        if (!writable && chain.writableCount() > 0) {
            // virtio 1.2 §2.8.17: device-writable elements come after all device-readable ones
            throw broken(where(slot, tableEntry) + ": a device-readable descriptor follows a device-writable one (virtio 1.2 §2.8.17)");
        }
        if (chain.segmentCount() == limit) {
            // virtio 1.2 §2.8.18: the device may limit the buffers it allows in a list
            throw broken(String.format("%s: the chain starting at slot %d has more than %d segments, the most this queue accepts"
                    + " (virtio 1.2 §2.8.18)", where(slot, tableEntry), availOffset, limit));
        }
        if (length < 0) {
            throw broken(String.format("%s: length %d is more than the %d bytes one segment may have",
                    where(slot, tableEntry), Integer.toUnsignedLong(length), Integer.MAX_VALUE));
        }
        if (!memory.contains(address, length)) {
            throw broken(String.format("%s: buffer [0x%x, +%d) is not inside one guest memory region",
                    where(slot, tableEntry), address, length));
        }
        if (chain.totalBytes() + length > MAX_CHAIN_BYTES) {
            // the split ring's bound (§2.7.5.2), kept so one chain cannot describe more than 4 GiB
            throw broken(String.format("%s: the chain starting at slot %d grows to %d bytes, longer than the 2^32 bytes a chain may have",
                    where(slot, tableEntry), availOffset, chain.totalBytes() + length));
        }
        chain.append(address, length, writable);
    }

    /** The popOrder slot of the chain popped {@code back + 1} pops ago ({@code back} below size). */
    private int popOrderSlot(int back) {
        int slot = popSlot - 1 - back;
        return slot < 0 ? slot + size : slot;
    }

    private static String where(int slot, int tableEntry) {
        return tableEntry < 0
                ? "descriptor at slot " + slot
                : "entry " + tableEntry + " of the indirect table in the descriptor at slot " + slot;
    }

    private void advanceAvail(int descriptors) {
        availOffset += descriptors;
        if (availOffset >= size) {
            availOffset -= size;
            availWrap = !availWrap; // §2.8.1: the counter flips after the ring's last descriptor
        }
    }

    private void stepAvailBack(int descriptors) {
        availOffset -= descriptors;
        if (availOffset < 0) {
            availOffset += size;
            availWrap = !availWrap;
        }
    }

    private VirtqueueException broken(String message) {
        broken = true;
        return new VirtqueueException(message);
    }

    private void checkUsable() {
        if (broken) {
            throw new IllegalStateException(
                    "this virtqueue is broken by an earlier guest error and must be reset (virtio 1.2 §2.1.2 DEVICE_NEEDS_RESET)");
        }
    }

    @Override
    public String toString() {
        return String.format("PackedQueue[size=%d, desc=0x%x, driver=0x%x, device=0x%x, eventIdx=%b, inOrder=%b, nextAvail=%d/%d,"
                        + " nextUsed=%d/%d%s]", size, descRing, driverEvent, deviceEvent, eventIdx, inOrder,
                availOffset, availWrap ? 1 : 0, usedOffset, usedWrap ? 1 : 0, broken ? ", broken" : "");
    }
}
