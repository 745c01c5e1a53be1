package io.vmm4j.virtio.queue;

import io.vmm4j.core.memory.GuestMemory;

import java.util.Objects;

/**
 * One descriptor chain as {@link Virtqueue#pop} read it: the head index (on a packed ring, the
 * buffer id) and the buffer segments, device-readable ones first (virtio 1.2 §2.7.4.2, §2.8.17). A reusable holder: allocate one per queue and
 * let every pop refill it, so the data path allocates nothing.
 *
 * <p>Every value here was read from guest memory once and validated: each segment lies wholly
 * inside one guest memory region and is at most {@link Integer#MAX_VALUE} bytes long, so
 * {@code length(i)} is never negative and {@code memory.slice(address(i), length(i))} succeeds.
 * The guest may change the descriptors afterwards; this copy does not change with them.
 *
 * <p>The capacity is the most segments a chain may have in this holder; a longer chain makes
 * {@code pop} throw {@link VirtqueueException}. Use {@link Virtqueue#maxChainSegments()} to accept
 * every chain the queue accepts, or less to impose a device limit (§2.7.4.1 allows one).
 */
public final class DescriptorChain {
    private final long[] addresses;
    private final int[] lengths;
    private int head = -1;
    private int segmentCount;
    private int readableCount;
    private long readableBytes;
    private long writableBytes;

    public DescriptorChain(int maxSegments) {
        if (maxSegments < 1) {
            throw new IllegalArgumentException("a descriptor chain holds at least one segment, asked for " + maxSegments);
        }
        this.addresses = new long[maxSegments];
        this.lengths = new int[maxSegments];
    }

    /** The most segments this holder takes. */
    public int capacity() {
        return addresses.length;
    }

    /**
     * Index of the chain's head descriptor (split) or its buffer id (packed): the id to hand back
     * with {@link Virtqueue#push}; -1 before the first pop.
     */
    public int head() {
        return head;
    }

    public int segmentCount() {
        return segmentCount;
    }

    /** Guest-physical address of segment {@code i}. */
    public long address(int i) {
        return addresses[Objects.checkIndex(i, segmentCount)];
    }

    /** Length in bytes of segment {@code i}; never negative. */
    public int length(int i) {
        return lengths[Objects.checkIndex(i, segmentCount)];
    }

    /** Whether segment {@code i} is device-writable; the writable segments follow the readable ones. */
    public boolean isWritable(int i) {
        return Objects.checkIndex(i, segmentCount) >= readableCount;
    }

    /** Number of device-readable segments, which are segments {@code 0..readableCount()-1}. */
    public int readableCount() {
        return readableCount;
    }

    /** Number of device-writable segments, which are the last ones. */
    public int writableCount() {
        return segmentCount - readableCount;
    }

    /** Total bytes the device may read. */
    public long readableBytes() {
        return readableBytes;
    }

    /** Total bytes the device may write. */
    public long writableBytes() {
        return writableBytes;
    }

    /**
     * Gathers up to {@code length} bytes of the readable segments, starting {@code offset} bytes into
     * them, into {@code dst[dstOffset..]}. Returns how many bytes were copied: fewer than asked when
     * the readable bytes run out.
     */
    public int copyFromReadable(GuestMemory memory, long offset, byte[] dst, int dstOffset, int length) {
        return copy(memory, false, 0, readableCount, offset, dst, dstOffset, length);
    }

    /**
     * Scatters up to {@code length} bytes of {@code src[srcOffset..]} over the writable segments,
     * starting {@code offset} bytes into them. Returns how many bytes were copied: fewer than asked
     * when the writable bytes run out. Readable segments are never written (§2.7.5.1).
     */
    public int copyToWritable(GuestMemory memory, long offset, byte[] src, int srcOffset, int length) {
        return copy(memory, true, readableCount, segmentCount, offset, src, srcOffset, length);
    }

    /** Copies between {@code buffer} and segments {@code [first, end)} taken as one run of bytes, {@code offset} bytes in. */
    private int copy(GuestMemory memory, boolean toGuest, int first, int end, long offset, byte[] buffer, int bufferOffset,
                     int length) {
        Objects.checkFromIndexSize(bufferOffset, length, buffer.length);
        checkOffset(offset);
        int copied = 0;
        long skip = offset;
        for (int i = first; i < end && copied < length; i++) {
            int segmentLength = lengths[i];
            if (skip >= segmentLength) {
                skip -= segmentLength;
                continue;
            }
            int n = (int) Math.min(segmentLength - skip, length - copied);
            if (toGuest) {
                memory.write(addresses[i] + skip, buffer, bufferOffset + copied, n);
            } else {
                memory.read(addresses[i] + skip, buffer, bufferOffset + copied, n);
            }
            copied += n;
            skip = 0;
        }
        return copied;
    }

    private static void checkOffset(long offset) {
        if (offset < 0) {
            throw new IllegalArgumentException("offset into the chain must not be negative, was " + offset);
        }
    }

    /** Starts refilling for the chain headed by {@code head}. */
    void reset(int head) {
        this.head = head;
        segmentCount = 0;
        readableCount = 0;
        readableBytes = 0;
        writableBytes = 0;
    }

    /** Sets the id to hand back once it is known (a packed chain carries it in its last descriptor). */
    void head(int head) {
        this.head = head;
    }

    /** Appends a validated segment; the queue has already checked order, capacity and bounds. */
    void append(long address, int length, boolean writable) {
        addresses[segmentCount] = address;
        lengths[segmentCount] = length;
        segmentCount++;
        if (writable) {
            writableBytes += length;
        } else {
            readableCount++;
            readableBytes += length;
        }
    }

    /** Bytes of all segments so far. */
    long totalBytes() {
        return readableBytes + writableBytes;
    }

    /** Forgets a half-read chain so no caller mistakes it for a valid one. */
    void invalidate() {
        reset(-1);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("DescriptorChain[head=").append(head);
        for (int i = 0; i < segmentCount; i++) {
            sb.append(i == 0 ? ": " : ", ").append(i < readableCount ? "R" : "W")
                    .append(String.format("[0x%x, +%d)", addresses[i], lengths[i]));
        }
        return sb.append(']').toString();
    }
}
