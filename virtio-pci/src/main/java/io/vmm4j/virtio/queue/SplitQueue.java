package io.vmm4j.virtio.queue;

import io.vmm4j.core.memory.GuestMemory;

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
 * One split virtqueue in the device role (virtio 1.2 §2.7): takes descriptor chains the driver made
 * available and returns them through the used ring.
 *
 * <p>Every value read from the guest is validated before it is used, and read only once; a rule
 * broken by the guest throws {@link VirtqueueException}, after which the queue is
 * {@linkplain #isBroken() broken} and every further ring operation throws
 * {@link IllegalStateException} (the transport sets DEVICE_NEEDS_RESET). Nothing outside guest
 * memory is ever read or written, and a chain that fails leaves the used ring untouched.
 *
 * <p>Indirect descriptors are always accepted (the device offers VIRTIO_F_INDIRECT_DESC), also as
 * the last descriptor of a direct chain (§2.7.5.3.2).
 *
 * <p><b>Chain limit.</b> A chain may have at most {@link #maxChainSegments()} segments,
 * {@code max(queue size, 1024)}: a direct chain can use every descriptor of the queue, and an
 * indirect table can bring up to 1024 segments, the bound QEMU (VIRTQUEUE_MAX_SIZE) and Linux vhost
 * (UIO_MAXIOV) use, which real drivers stay within (§2.7.4.1 lets a device have such a limit). A
 * smaller {@link DescriptorChain} lowers the limit for that device. A segment is at most
 * {@link Integer#MAX_VALUE} bytes and a chain at most 2^32 bytes (§2.7.5.2).
 *
 * <p><b>Notifications.</b> The device loop that sleeps between kicks is: {@link #disableNotifications()},
 * {@link #pop} until it returns false, {@link #enableNotifications()}, and go round again if that
 * returns true; after {@link #publish()}, {@link #needsNotification()} says whether to interrupt the
 * guest. {@link #serve} is that loop for a device that returns each chain on its own. With VIRTIO_F_EVENT_IDX and notifications enabled, {@code pop} also keeps avail_event at the
 * next avail index, as QEMU's {@code virtqueue_pop} does (Linux vhost writes it only on enable), so
 * a device that never disables notifications gets a kick for exactly the next new entry; and when
 * such a {@code pop} finds nothing it fences and looks once more, so a false return is a safe point
 * to sleep in that mode too. Chains handed back with {@link #rewind} count as looked at: a device
 * that rewinds because they are not enough yet (a receive path whose frame needs more buffers) is
 * kicked for the next entry the driver adds, and {@link #enableNotifications()} does not send it
 * round again for the ones it gave back.
 *
 * <p>Not thread-safe: one consumer thread owns the queue. The data path (pop, push, publish,
 * needsNotification, enable/disable) allocates nothing.
 *
 * <p>Implements {@link Virtqueue}, the layout-independent view data planes use; {@link PackedQueue}
 * is the packed layout beside it.
 */
public final class SplitQueue implements Virtqueue {
    /** Segments an indirect table may bring, as QEMU's VIRTQUEUE_MAX_SIZE and Linux's UIO_MAXIOV. */
    public static final int INDIRECT_SEGMENT_LIMIT = 1024;
    /** The longest chain in bytes (§2.7.5.2: no chain longer than 2^32 bytes). */
    public static final long MAX_CHAIN_BYTES = 1L << 32;

    private final GuestMemory memory;
    private final int size;
    private final int mask;
    private final long descTable;
    private final long availRing;
    private final long usedRing;
    private final boolean eventIdx;
    private final long usedEventAddress;
    private final long availEventAddress;
    private final int maxChainSegments;

    private int nextAvail;
    /** The avail idx last read from the guest; entries in [nextAvail, availIdx) are known to be there. */
    private int availIdx;
    /** Chains given back by {@link #rewind} and not popped again: entries [nextAvail, nextAvail + rewound) were looked at. */
    private int rewound;
    private int nextUsed;
    private int publishedUsed;
    /** The used idx at the last notification decision, and whether it is known (not after setPosition). */
    private int decidedUsed;
    private boolean decidedUsedKnown = true;
    private boolean notificationsEnabled = true;
    private boolean broken;

    /**
     * Hears each chain's life, for a back-end that keeps a record outside its own memory of what is
     * in flight (vhost-user's "Inflight I/O tracking"): called on the consumer thread, in order.
     */
    public interface InflightLog {
        /** Chain {@code head} was taken from the avail ring. */
        void popped(int head);

        /** The last {@code chains} popped chains were given back unused ({@link #rewind}). */
        void rewound(int chains);

        /** Chain {@code head} was written to the used ring (not yet visible to the driver). */
        void pushed(int head);

        /** Used idx {@code usedIdx} is now visible to the driver: every chain pushed since the last publish is done. */
        void published(int usedIdx);
    }

    private InflightLog inflightLog;

    /** Tells {@code log} of every chain from now on (null: nobody). */
    public void setInflightLog(InflightLog log) {
        this.inflightLog = log;
    }

    /**
     * A queue over rings the driver placed at the given guest-physical addresses. Writes nothing;
     * starts at avail and used index 0 with notifications enabled.
     *
     * @param eventIdx whether VIRTIO_F_EVENT_IDX was negotiated
     * @throws VirtqueueException if the layout breaks §2.7 (see {@link #validateLayout})
     */
    public SplitQueue(GuestMemory memory, int size, long descTable, long availRing, long usedRing, boolean eventIdx) {
        validateLayout(memory, size, descTable, availRing, usedRing);
        this.memory = memory;
        this.size = size;
        this.mask = size - 1;
        this.descTable = descTable;
        this.availRing = availRing;
        this.usedRing = usedRing;
        this.eventIdx = eventIdx;
        this.usedEventAddress = availRing + SplitRing.usedEventOffset(size);
        this.availEventAddress = usedRing + SplitRing.availEventOffset(size);
        this.maxChainSegments = Math.max(size, INDIRECT_SEGMENT_LIMIT);
    }

    /**
     * Checks what the driver wrote into the queue's address registers: the size is a power of two in
     * 1..32768, each area has its alignment and lies wholly inside one guest memory region, trailing
     * event fields included (§2.7).
     *
     * @throws VirtqueueException naming the area and the value that is wrong
     */
    public static void validateLayout(GuestMemory memory, int size, long descTable, long availRing, long usedRing) {
        if (!SplitRing.isValidQueueSize(size)) {
            // virtio 1.2 §2.7: Queue Size is always a power of 2, at most 32768
            throw new VirtqueueException("queue size " + size + " is not a power of two in 1.."
                    + SplitRing.MAX_QUEUE_SIZE + " (virtio 1.2 §2.7)");
        }
        checkArea(memory, "descriptor table", descTable, SplitRing.DESCRIPTOR_TABLE_ALIGNMENT,
                SplitRing.descriptorTableBytes(size), size);
        checkArea(memory, "available ring", availRing, SplitRing.AVAIL_RING_ALIGNMENT,
                SplitRing.availRingBytes(size), size);
        checkArea(memory, "used ring", usedRing, SplitRing.USED_RING_ALIGNMENT,
                SplitRing.usedRingBytes(size), size);
    }

    private static void checkArea(GuestMemory memory, String area, long address, int alignment, long bytes, int size) {
        if ((address & (alignment - 1)) != 0) {
            // virtio 1.2 §2.7.1: each part starts at a multiple of its alignment
            throw new VirtqueueException(String.format(
                    "%s address 0x%x is not %d-byte aligned (virtio 1.2 §2.7.1)", area, address, alignment));
        }
        if (!memory.contains(address, bytes)) {
            throw new VirtqueueException(String.format(
                    "%s [0x%x, +%d) for queue size %d is not inside one guest memory region", area, address, bytes, size));
        }
    }

    public int size() {
        return size;
    }

    public boolean eventIdx() {
        return eventIdx;
    }

    /** The most segments a chain may have on this queue: {@code max(size, 1024)}. */
    public int maxChainSegments() {
        return maxChainSegments;
    }

    /** Whether the guest broke a ring rule; a broken queue refuses every ring operation until it is replaced. */
    public boolean isBroken() {
        return broken;
    }

    /** The avail ring index the next pop takes (a free-running 16-bit counter). */
    public int nextAvail() {
        return nextAvail;
    }

    /**
     * The used ring index the next push fills (a free-running 16-bit counter). Publish before reading
     * it for a backend switch: pushed but unpublished entries belong to this queue object only.
     */
    public int nextUsed() {
        return nextUsed;
    }

    /**
     * Resumes where another backend stopped: the next pop takes avail entry {@code nextAvail}, the next
     * push fills used entry {@code nextUsed}. The first notification decision afterwards notifies
     * (the previous backend's last decision is unknown; §2.7.7.1 says the driver handles spurious
     * ones). Call {@link #enableNotifications()} (or pop until empty) before waiting for a kick.
     *
     * @throws IllegalArgumentException if an index is not a 16-bit value, or more than size chains
     *                                  would be in flight ({@code nextAvail - nextUsed})
     */
    public void setPosition(int nextAvail, int nextUsed) {
        checkUsable();
        if ((nextAvail & ~0xFFFF) != 0 || (nextUsed & ~0xFFFF) != 0) {
            throw new IllegalArgumentException(String.format(
                    "ring positions are 16-bit indices, got next avail %d and next used %d", nextAvail, nextUsed));
        }
        int inFlight = (nextAvail - nextUsed) & 0xFFFF;
        if (inFlight > size) {
            throw new IllegalArgumentException(String.format(
                    "next avail %d and next used %d put %d chains in flight, more than the queue size %d",
                    nextAvail, nextUsed, inFlight, size));
        }
        this.nextAvail = nextAvail;
        this.availIdx = nextAvail;
        this.rewound = 0;
        this.nextUsed = nextUsed;
        this.publishedUsed = nextUsed;
        this.decidedUsed = nextUsed;
        this.decidedUsedKnown = false;
    }

    /** Whether the driver has made entries available that this queue has not popped yet. */
    public boolean hasAvailable() {
        checkUsable();
        return availIdx != nextAvail || readAvailIdx();
    }

    /**
     * Takes the next available chain into {@code into}. Returns false when there is none.
     *
     * @throws VirtqueueException if the guest broke a ring rule; the queue is broken from then on,
     *                            {@code into} is left empty and nothing was written
     */
    public boolean pop(DescriptorChain into) {
        int head;
        try {
            if (!hasAvailable()) {
                if (!eventIdx || !notificationsEnabled) {
                    return false;
                }
                // virtio 1.2 §2.7.10: avail_event written by the last pop must be visible before this last
                // look at avail idx, or a driver publishing now reads the old value and skips its kick
                VarHandle.fullFence();
                if (!readAvailIdx()) {
                    return false;
                }
            }
            // the acquire load of avail idx (readAvailIdx) orders this entry's read after it (§2.7.13)
            head = Short.toUnsignedInt(memory.readShort(availRing + SplitRing.availEntryOffset(nextAvail & mask)));
            readChain(head, into);
        } catch (VirtqueueException e) {
            // also when avail idx itself is bad: a holder refilled by every pop must not keep the last chain
            into.invalidate();
            throw e;
        }
        nextAvail = (nextAvail + 1) & 0xFFFF;
        if (rewound > 0) {
            rewound--; // a chain given back earlier, taken again
        }
        if (inflightLog != null) {
            inflightLog.popped(head);
        }
        if (eventIdx && notificationsEnabled) {
            // virtio 1.2 §2.7.10: ask for a kick when the driver publishes the first entry not looked at yet
            memory.writeShort(availEventAddress, (short) firstUnseenAvail());
        }
        return true;
    }

    /**
     * Gives back the last {@code chains} popped chains unused, so the next pops return them again
     * (vhost's discard): for a receive path that took more buffers than a frame needed, or fewer than
     * it needs, or a transmit path whose port was full. They stay looked at: avail_event keeps
     * pointing past them, and {@link #enableNotifications()} does not count them as new.
     *
     * @throws IllegalArgumentException if fewer than {@code chains} popped chains are unreturned
     */
    public void rewind(int chains) {
        checkUsable();
        int inFlight = (nextAvail - nextUsed) & 0xFFFF;
        if (chains < 0 || chains > inFlight) {
            throw new IllegalArgumentException("cannot rewind " + chains + " chains: " + inFlight + " are popped and not pushed");
        }
        nextAvail = (nextAvail - chains) & 0xFFFF;
        rewound += chains;
        if (inflightLog != null && chains > 0) {
            inflightLog.rewound(chains);
        }
        // avail_event stays past the chains given back: the driver wrote those entries already, so an
        // avail_event naming one of them would never be reached and the next kick would be lost (§2.7.10)
    }

    /**
     * Writes a used element for chain {@code head} at the next used index; the driver sees it only
     * after {@link #publish()}. Push several, publish once, to batch.
     *
     * @param writtenLength bytes the device wrote into the chain's writable segments (§2.7.8.2)
     * @throws IllegalArgumentException if head is not a descriptor index or the length is negative
     * @throws IllegalStateException    if no popped chain is waiting to be returned
     */
    public void push(int head, int writtenLength) {
        checkUsable();
        if (head < 0 || head >= size) {
            throw new IllegalArgumentException("used head " + head + " is outside the queue of size " + size);
        }
        if (writtenLength < 0) {
            throw new IllegalArgumentException("written length must not be negative, was " + writtenLength + " for head " + head);
        }
        // each popped chain is returned exactly once, so popped minus pushed is the number in flight
        if (nextAvail == nextUsed) {
            throw new IllegalStateException(String.format(
                    "push of head %d with no chain in flight: next avail and next used are both %d", head, nextUsed));
        }
        long element = usedRing + SplitRing.usedElementOffset(nextUsed & mask);
        memory.writeInt(element, head);
        memory.writeInt(element + 4, writtenLength);
        nextUsed = (nextUsed + 1) & 0xFFFF;
        if (inflightLog != null) {
            inflightLog.pushed(head);
        }
    }

    /** Makes every pushed element visible: release-stores used idx after the elements (§2.7.8.2, §2.7.13). */
    public void publish() {
        checkUsable();
        memory.storeReleaseShort(usedRing + SplitRing.RING_IDX, (short) nextUsed);
        publishedUsed = nextUsed;
        if (inflightLog != null) {
            inflightLog.published(nextUsed);
        }
    }

    /**
     * Whether the guest wants a used buffer notification for what was published since the last
     * decision (§2.7.7.2): with EVENT_IDX when used idx passed used_event, otherwise unless avail
     * flags has NO_INTERRUPT. False if nothing was published since the last decision.
     */
    public boolean needsNotification() {
        checkUsable();
        // virtio 1.2 §2.7.7: the used idx store must be visible before used_event / flags are read
        VarHandle.fullFence();
        if (publishedUsed == decidedUsed) {
            return false;
        }
        int oldUsed = decidedUsed;
        boolean oldKnown = decidedUsedKnown;
        decidedUsed = publishedUsed;
        decidedUsedKnown = true;
        if (!eventIdx) {
            return (memory.readShort(availRing + SplitRing.RING_FLAGS) & SplitRing.AVAIL_F_NO_INTERRUPT) == 0;
        }
        if (!oldKnown) {
            return true;
        }
        int usedEvent = Short.toUnsignedInt(memory.readShort(usedEventAddress));
        return SplitRing.needsEvent(usedEvent, publishedUsed, oldUsed);
    }

    /**
     * Asks the driver not to kick (§2.7.10): without EVENT_IDX by setting NO_NOTIFY in used flags,
     * with it by no longer moving avail_event, which the driver soon passes. Already off, it writes
     * nothing: a device that polls calls this every pass, and a store to the used ring's first line
     * takes it away from the driver, which reads the used index there.
     */
    public void disableNotifications() {
        checkUsable();
        if (!eventIdx && notificationsEnabled) {
            memory.writeShort(usedRing + SplitRing.RING_FLAGS, (short) SplitRing.USED_F_NO_NOTIFY);
        }
        notificationsEnabled = false;
    }

    /**
     * Asks the driver to kick again (§2.7.10): clears NO_NOTIFY, or sets avail_event to the first
     * entry not looked at yet; then fences and looks at avail idx once more. Returns true if entries
     * are already available that this queue has not looked at: the driver may have published them
     * while notifications were off without kicking, so the caller must process again instead of
     * sleeping. Chains handed back with {@link #rewind} are not counted: a caller waiting for more of
     * them than the driver has posted sleeps until it posts more, instead of going round for ever.
     *
     * @throws VirtqueueException if the avail idx read is invalid
     */
    public boolean enableNotifications() {
        checkUsable();
        notificationsEnabled = true;
        if (eventIdx) {
            memory.writeShort(availEventAddress, (short) firstUnseenAvail());
        } else {
            memory.writeShort(usedRing + SplitRing.RING_FLAGS, (short) 0);
        }
        // store-load: the flag / avail_event must be visible before avail idx is read again, or a
        // driver publishing in between sees notifications off and we see no entry: a lost kick
        VarHandle.fullFence();
        readAvailIdx();
        return ((availIdx - nextAvail) & 0xFFFF) > rewound;
    }

    /** The avail index of the first entry this queue has not looked at (popped, or popped and given back). */
    private int firstUnseenAvail() {
        return (nextAvail + rewound) & 0xFFFF;
    }

    /**
     * Marks this queue broken for a rule of the device type that the ring engine cannot check itself
     * (virtio-net: receive buffers are device-writable), and returns the exception for the caller to
     * throw. As after the queue's own checks, every further ring operation then refuses.
     */
    public VirtqueueException markBroken(String message) {
        return broken(message);
    }

    /** Re-reads avail idx with acquire semantics; returns whether entries are available. */
    private boolean readAvailIdx() {
        int idx = Short.toUnsignedInt(memory.loadAcquireShort(availRing + SplitRing.RING_IDX));
        int pending = (idx - nextAvail) & 0xFFFF;
        if (pending > size) {
            // virtio 1.2 §2.7.6.1, §2.7.13: idx never decreases and never runs more than size ahead
            throw broken(String.format(
                    "avail idx %d is %d entries ahead of the next avail index %d, more than the queue size %d"
                            + " (virtio 1.2 §2.7.6.1, §2.7.13: idx moved backwards or skipped entries)",
                    idx, pending, nextAvail, size));
        }
        availIdx = idx;
        return pending != 0;
    }

    private void readChain(int head, DescriptorChain chain) {
        if (head >= size) {
            throw broken(String.format("avail ring entry %d: head index %d is outside the queue of size %d (virtio 1.2 §2.7.6)",
                    nextAvail, head, size));
        }
        chain.reset(head);
        readTable(head, -1, descTable, size, head, chain, Math.min(maxChainSegments, chain.capacity()));
    }

    /**
     * Walks a descriptor table from entry {@code first} and appends each buffer to {@code chain}: the
     * ring's own table ({@code tableDescriptor} -1, {@code entries} the queue size), or the indirect
     * table ring descriptor {@code tableDescriptor} names. Each descriptor is read once.
     */
    private void readTable(int head, int tableDescriptor, long table, long entries, int first, DescriptorChain chain, int limit) {
        boolean indirect = tableDescriptor >= 0;
        int index = first;
        for (long walked = 1; ; walked++) {
            long entry = table + (long) DESCRIPTOR_SIZE * index;
            long address = memory.readLong(entry + DESCRIPTOR_ADDR);
            int length = memory.readInt(entry + DESCRIPTOR_LEN);
            int flags = Short.toUnsignedInt(memory.readShort(entry + DESCRIPTOR_FLAGS));
            int next = Short.toUnsignedInt(memory.readShort(entry + DESCRIPTOR_NEXT));
            if ((flags & DESC_F_INDIRECT) != 0) {
                if (indirect) {
                    // virtio 1.2 §2.7.5.3.1: only one table per descriptor, no table inside a table
                    throw broken(String.format("%s: flags 0x%x set INDIRECT inside an indirect table (virtio 1.2 §2.7.5.3.1)",
                            where(head, tableDescriptor, index), flags));
                }
                if ((flags & DESC_F_NEXT) != 0) {
                    // virtio 1.2 §2.7.5.3.1: INDIRECT and NEXT never together; the table ends the chain
                    throw broken(String.format("%s: flags 0x%x set INDIRECT together with NEXT (virtio 1.2 §2.7.5.3.1)",
                            where(head, tableDescriptor, index), flags));
                }
                // virtio 1.2 §2.7.5.3.2: the WRITE flag of a descriptor naming a table is ignored
                readIndirectTable(head, index, address, length, chain, limit);
                return;
            }
            appendSegment(chain, limit, head, tableDescriptor, index, address, length, (flags & DESC_F_WRITE) != 0);
            if ((flags & DESC_F_NEXT) == 0) {
                return;
            }
            if (next >= entries) {
                throw broken(String.format("%s: next index %d is outside %s", where(head, tableDescriptor, index), next,
                        indirect ? "the table of " + entries + " entries" : "the queue of size " + size));
            }
            if (walked == entries) {
                // virtio 1.2 §2.7.5.3.1: no chain longer than the queue (or than its table); a longer one loops
                throw broken(String.format("%s: next index %d continues %s", where(head, tableDescriptor, index), next, indirect
                        ? "past all " + entries + " entries of the table: a loop"
                        : "the chain past " + walked + " descriptors, longer than the queue of size " + size
                                + ": a loop (virtio 1.2 §2.7.5.3.1)"));
            }
            index = next;
        }
    }

    private void readIndirectTable(int head, int tableDescriptor, long table, int tableLength, DescriptorChain chain, int limit) {
        long tableBytes = Integer.toUnsignedLong(tableLength);
        if (tableBytes == 0 || tableBytes % DESCRIPTOR_SIZE != 0) {
            // virtio 1.2 §2.7.5.3: the table is len / 16 whole descriptors, at least one
            throw broken(String.format("descriptor %d of chain %d: indirect table length %d is not a positive multiple of %d"
                    + " (virtio 1.2 §2.7.5.3)", tableDescriptor, head, tableBytes, DESCRIPTOR_SIZE));
        }
        if (!memory.contains(table, tableBytes)) {
            throw broken(String.format("descriptor %d of chain %d: indirect table [0x%x, +%d) is not inside one guest memory region",
                    tableDescriptor, head, table, tableBytes));
        }
        readTable(head, tableDescriptor, table, tableBytes / DESCRIPTOR_SIZE, 0, chain, limit);
    }

    /**
     * Validates one buffer descriptor and appends it. {@code tableDescriptor} is -1 for a descriptor
     * of the ring's table, else the ring descriptor whose indirect table holds entry {@code index}.
     */
    private void appendSegment(DescriptorChain chain, int limit, int head, int tableDescriptor, int index,
                               long address, int length, boolean writable) {
        if (!writable && chain.writableCount() > 0) {
            // virtio 1.2 §2.7.4.2: device-writable elements come after all device-readable ones
            throw broken(where(head, tableDescriptor, index)
                    + ": a device-readable descriptor follows a device-writable one (virtio 1.2 §2.7.4.2)");
        }
        if (chain.segmentCount() == limit) {
            // virtio 1.2 §2.7.4.1: a device may limit the descriptors it allows in a chain
            throw broken(String.format("%s: chain %d has more than %d segments, the most this queue accepts (virtio 1.2 §2.7.4.1)",
                    where(head, tableDescriptor, index), head, limit));
        }
        if (length < 0) {
            throw broken(String.format("%s: length %d is more than the %d bytes one segment may have",
                    where(head, tableDescriptor, index), Integer.toUnsignedLong(length), Integer.MAX_VALUE));
        }
        if (!memory.contains(address, length)) {
            throw broken(String.format("%s: buffer [0x%x, +%d) is not inside one guest memory region",
                    where(head, tableDescriptor, index), address, length));
        }
        if (chain.totalBytes() + length > MAX_CHAIN_BYTES) {
            // virtio 1.2 §2.7.5.2: no chain longer than 2^32 bytes in total
            throw broken(String.format("%s: chain %d grows to %d bytes, longer than the 2^32 bytes a chain may have"
                    + " (virtio 1.2 §2.7.5.2)", where(head, tableDescriptor, index), head, chain.totalBytes() + length));
        }
        chain.append(address, length, writable);
    }

    private static String where(int head, int tableDescriptor, int index) {
        return tableDescriptor < 0
                ? "descriptor " + index + " of chain " + head
                : "entry " + index + " of the indirect table in descriptor " + tableDescriptor + " of chain " + head;
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
        return String.format("SplitQueue[size=%d, desc=0x%x, avail=0x%x, used=0x%x, eventIdx=%b, nextAvail=%d, nextUsed=%d%s]",
                size, descTable, availRing, usedRing, eventIdx, nextAvail, nextUsed, broken ? ", broken" : "");
    }
}
