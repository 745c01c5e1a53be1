package io.vmm4j.vhost.user;

import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.linux.LinuxException;
import io.vmm4j.virtio.queue.SplitQueue;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * The back-end's record of what each split ring has in flight, in a shared memory file the
 * front-end keeps across a back-end restart (vhost-user.rst, "Inflight I/O tracking";
 * GET_INFLIGHT_FD makes one, SET_INFLIGHT_FD hands it to the next back-end). One queue region
 * per virtqueue, each the spec's {@code QueueRegionSplit}: features u64, version u16, desc_num u16,
 * last_batch_head u16, used_idx u16, then {@code desc_num} {@code DescStateSplit} entries of 16
 * bytes (inflight u8, padding[5], next u16, counter u64); each region is padded to 64 bytes.
 */
final class InflightRegion implements AutoCloseable {
    /** "QueueRegionSplit": the header before the descriptor states. */
    static final int QUEUE_HEADER_SIZE = 16;
    /** "DescStateSplit": inflight, padding[5], next, counter. */
    static final int DESC_STATE_SIZE = 16;
    /** Each queue region starts on a 64-byte boundary (as DPDK lays its regions out). */
    static final int QUEUE_ALIGNMENT = 64;
    /** "The version of this region. It's 1 currently. Zero value indicates an uninitialized buffer". */
    static final short VERSION = 1;

    private static final long OFF_VERSION = 8;
    private static final long OFF_DESC_NUM = 10;
    private static final long OFF_LAST_BATCH_HEAD = 12;
    private static final long OFF_USED_IDX = 14;
    private static final long DESC_INFLIGHT = 0;
    private static final long DESC_NEXT = 6;
    private static final long DESC_COUNTER = 8;

    private final MemorySegment mapping;
    private final int queues;
    private final int queueSize;

    private InflightRegion(MemorySegment mapping, int queues, int queueSize) {
        this.mapping = mapping;
        this.queues = queues;
        this.queueSize = queueSize;
    }

    /** Bytes of one queue's region for queues of up to {@code queueSize} descriptors. */
    static long queueRegionSize(int queueSize) {
        long raw = QUEUE_HEADER_SIZE + (long) DESC_STATE_SIZE * queueSize;
        return (raw + QUEUE_ALIGNMENT - 1) / QUEUE_ALIGNMENT * QUEUE_ALIGNMENT;
    }

    /** The whole file: one region per queue, rounded up to a page. */
    static long mmapSize(int queues, int queueSize) {
        long raw = queues * queueRegionSize(queueSize);
        return (raw + 4095) / 4096 * 4096;
    }

    static void checkShape(int queues, int queueSize, int maxQueues) {
        if (queues < 1 || queues > maxQueues) {
            throw new VhostUserException("inflight description: num queues " + queues + " is outside 1.." + maxQueues
                    + " (the queues this back-end serves)");
        }
        if (queueSize < 1 || queueSize > 32768 || Integer.bitCount(queueSize) != 1) {
            throw new VhostUserException("inflight description: queue size " + queueSize + " is not a power of two from 1 to 32768");
        }
    }

    /**
     * GET_INFLIGHT_FD: a new zeroed file (every region "uninitialized") and its mapping; the caller
     * sends {@code fd[0]} to the front-end and closes it.
     */
    static InflightRegion create(int queues, int queueSize, int[] fd) {
        long size = mmapSize(queues, queueSize);
        int memfd = LibC.memfdCreate("vhost-user-inflight", LibC.MFD_CLOEXEC);
        try {
            LibC.ftruncate(memfd, size);
            MemorySegment m = LibC.mmap(size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, memfd, 0);
            fd[0] = memfd;
            return new InflightRegion(m, queues, queueSize);
        } catch (RuntimeException e) {
            LibC.closeQuietly(memfd);
            throw e;
        }
    }

    /** SET_INFLIGHT_FD: maps the front-end's file after checking it holds what the description says. */
    static InflightRegion map(int fd, long mmapSize, long mmapOffset, int queues, int queueSize) {
        long expected = mmapSize(queues, queueSize);
        if (mmapSize != expected) {
            throw new VhostUserException("SET_INFLIGHT_FD: mmap size " + mmapSize + " is not the " + expected + " bytes that "
                    + queues + " queue(s) of " + queueSize + " take (a region this back-end's GET_INFLIGHT_FD made)");
        }
        if (mmapOffset < 0 || mmapOffset % 4096 != 0) {
            throw new VhostUserException("SET_INFLIGHT_FD: mmap offset " + mmapOffset + " is not page-aligned");
        }
        long fileSize;
        try {
            BasicFileAttributes a = Files.readAttributes(Path.of("/proc/self/fd/" + fd), BasicFileAttributes.class);
            if (!a.isRegularFile()) {
                throw new VhostUserException("SET_INFLIGHT_FD: the fd is not a regular file (a memfd)");
            }
            fileSize = a.size();
        } catch (IOException e) {
            throw new VhostUserException("SET_INFLIGHT_FD: the fd cannot be examined: " + e.getMessage());
        }
        if (mmapOffset + mmapSize > fileSize) {
            throw new VhostUserException("SET_INFLIGHT_FD: offset + size = " + (mmapOffset + mmapSize) + " lies beyond the end of "
                    + "its fd (" + fileSize + " bytes)");
        }
        try {
            MemorySegment m = LibC.mmap(mmapSize, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, mmapOffset);
            return new InflightRegion(m, queues, queueSize);
        } catch (LinuxException e) {
            throw new VhostUserException("SET_INFLIGHT_FD: cannot map it: " + e.getMessage());
        }
    }

    int queues() {
        return queues;
    }

    int queueSize() {
        return queueSize;
    }

    long mmapSize() {
        return mapping.byteSize();
    }

    /** Whether ring {@code index} of {@code size} descriptors has a region here. */
    boolean covers(int index, int size) {
        return index < queues && size <= queueSize;
    }

    /**
     * The tracker of ring {@code index} (of {@code size} descriptors, whose used idx in guest memory is
     * {@code usedIdx}), after the spec's "When reconnecting" steps on what a dead back-end left.
     */
    QueueTracker queue(int index, int size, int usedIdx) {
        return new QueueTracker(mapping.asSlice(index * queueRegionSize(queueSize), queueRegionSize(queueSize)), size, usedIdx);
    }

    @Override
    public void close() {
        LibC.munmap(mapping);
    }

    /**
     * One ring's region as the queue engine updates it (the spec's "When receiving available
     * buffers" and "When supplying used buffers" steps), on the ring's loop thread.
     */
    static final class QueueTracker implements SplitQueue.InflightLog {
        private final MemorySegment region;
        private final int size;
        /** Heads popped and not pushed, oldest first, to know which a rewind gives back. */
        private final int[] popped;
        private int poppedFirst;
        private int poppedCount;
        /** Heads pushed since the last publish: the batch whose inflight flags the publish clears. */
        private final int[] batch;
        private int batchCount;
        private long counter;
        private final int resubmitted;

        private QueueTracker(MemorySegment region, int size, int usedIdx) {
            this.region = region;
            this.size = size;
            this.popped = new int[size];
            this.batch = new int[size];
            this.resubmitted = reconcile(usedIdx);
        }

        /**
         * "When reconnecting": if used_idx is behind the used ring's idx, the last batch was published
         * but its inflight flags not yet cleared, so clear them; then what is still in flight is
         * resubmitted. This engine takes and returns chains in avail order, so what is in flight is
         * exactly the avail entries from used idx on ("If virtqueue is processed in order, we can
         * easily achieve that by getting the inflight descriptors from descriptor table"): the ring
         * resumes at used idx, and each chain is recorded again as it is taken again.
         *
         * @return how many chains were in flight
         */
        private int reconcile(int usedIdx) {
            short version = region.get(ValueLayout.JAVA_SHORT_UNALIGNED, OFF_VERSION);
            int descNum = Short.toUnsignedInt(region.get(ValueLayout.JAVA_SHORT_UNALIGNED, OFF_DESC_NUM));
            if (version != VERSION || descNum != size) {
                region.fill((byte) 0); // new, or left by a ring of another size: nothing in it to trust
                region.set(ValueLayout.JAVA_SHORT_UNALIGNED, OFF_VERSION, VERSION);
                region.set(ValueLayout.JAVA_SHORT_UNALIGNED, OFF_DESC_NUM, (short) size);
                region.set(ValueLayout.JAVA_SHORT_UNALIGNED, OFF_USED_IDX, (short) usedIdx);
                return 0;
            }
            int recorded = Short.toUnsignedInt(region.get(ValueLayout.JAVA_SHORT_UNALIGNED, OFF_USED_IDX));
            if (recorded != usedIdx) {
                int batchSize = (usedIdx - recorded) & 0xFFFF;
                int h = Short.toUnsignedInt(region.get(ValueLayout.JAVA_SHORT_UNALIGNED, OFF_LAST_BATCH_HEAD));
                for (int i = 0; i < Math.min(batchSize, size) && h < size; i++) { // bounded: the region is shared memory
                    region.set(ValueLayout.JAVA_BYTE, desc(h) + DESC_INFLIGHT, (byte) 0);
                    h = Short.toUnsignedInt(region.get(ValueLayout.JAVA_SHORT_UNALIGNED, desc(h) + DESC_NEXT));
                }
                region.set(ValueLayout.JAVA_SHORT_UNALIGNED, OFF_USED_IDX, (short) usedIdx);
            }
            int inFlight = 0;
            for (int d = 0; d < size; d++) {
                if (region.get(ValueLayout.JAVA_BYTE, desc(d) + DESC_INFLIGHT) != 0) {
                    inFlight++;
                    counter = Math.max(counter, region.get(ValueLayout.JAVA_LONG_UNALIGNED, desc(d) + DESC_COUNTER));
                    region.set(ValueLayout.JAVA_BYTE, desc(d) + DESC_INFLIGHT, (byte) 0); // set again when taken again
                }
            }
            return inFlight;
        }

        /** Chains that were in flight when the previous back-end stopped, resubmitted from used idx. */
        int resubmitted() {
            return resubmitted;
        }

        private static long desc(int head) {
            return QUEUE_HEADER_SIZE + (long) head * DESC_STATE_SIZE;
        }

        @Override
        public void popped(int head) {
            // "When receiving available buffers": counter, then inflight = 1
            region.set(ValueLayout.JAVA_LONG_UNALIGNED, desc(head) + DESC_COUNTER, ++counter);
            region.set(ValueLayout.JAVA_BYTE, desc(head) + DESC_INFLIGHT, (byte) 1);
            if (poppedCount < size) {
                popped[(poppedFirst + poppedCount) % size] = head;
                poppedCount++;
            }
        }

        @Override
        public void rewound(int chains) {
            for (int i = 0; i < chains && poppedCount > 0; i++) {
                poppedCount--;
                int head = popped[(poppedFirst + poppedCount) % size];
                region.set(ValueLayout.JAVA_BYTE, desc(head) + DESC_INFLIGHT, (byte) 0); // given back: not in flight
            }
        }

        @Override
        public void pushed(int head) {
            // "When supplying used buffers": desc[i].next = last_batch_head, last_batch_head = i
            short last = region.get(ValueLayout.JAVA_SHORT_UNALIGNED, OFF_LAST_BATCH_HEAD);
            region.set(ValueLayout.JAVA_SHORT_UNALIGNED, desc(head) + DESC_NEXT, last);
            region.set(ValueLayout.JAVA_SHORT_UNALIGNED, OFF_LAST_BATCH_HEAD, (short) head);
            if (batchCount < size) {
                batch[batchCount++] = head;
            }
            if (poppedCount > 0) {
                if (popped[poppedFirst] == head) {
                    poppedFirst = (poppedFirst + 1) % size;
                    poppedCount--;
                } else {
                    removePopped(head);
                }
            }
        }

        private void removePopped(int head) {
            for (int i = 0; i < poppedCount; i++) {
                if (popped[(poppedFirst + i) % size] == head) {
                    for (int j = i; j < poppedCount - 1; j++) {
                        popped[(poppedFirst + j) % size] = popped[(poppedFirst + j + 1) % size];
                    }
                    poppedCount--;
                    return;
                }
            }
        }

        @Override
        public void published(int usedIdx) {
            // the used idx is stored; now the batch's inflight flags, then used_idx
            for (int i = 0; i < batchCount; i++) {
                region.set(ValueLayout.JAVA_BYTE, desc(batch[i]) + DESC_INFLIGHT, (byte) 0);
            }
            batchCount = 0;
            region.set(ValueLayout.JAVA_SHORT_UNALIGNED, OFF_USED_IDX, (short) usedIdx);
        }
    }
}
