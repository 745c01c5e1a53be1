package io.vmm4j.vhost.user;

import io.vmm4j.core.linux.LibC;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The daemon's inflight record across a back-end that dies at each step of vhost-user.rst's
 * "Inflight I/O tracking" (when receiving available buffers, when supplying used buffers, when
 * reconnecting): one back-end writes the record in a memfd, stops without a word at some step, and
 * a second maps the same file (as SET_INFLIGHT_FD hands it over) and counts what it must resubmit.
 * Also what a front-end may leave in the shared file: the second back-end stays inside it.
 */
class InflightRegionTest {
    private static final int QUEUES = 2;
    private static final int SIZE = 256;
    private static final int TX = 1;

    private final int[] fd = new int[1];
    private InflightRegion first;

    @BeforeEach
    void create() {
        first = InflightRegion.create(QUEUES, SIZE, fd);
    }

    @AfterEach
    void close() {
        first.close();
        LibC.closeQuietly(fd[0]);
    }

    /** The next back-end, given the record the front-end kept, with the used idx it finds in guest memory. */
    private InflightRegion.QueueTracker restarted(int usedIdxInGuestMemory) {
        try (InflightRegion second = InflightRegion.map(fd[0], InflightRegion.mmapSize(QUEUES, SIZE), 0, QUEUES, SIZE)) {
            return second.queue(TX, SIZE, usedIdxInGuestMemory);
        }
    }

    private static void popped(InflightRegion.QueueTracker t, int... heads) {
        for (int h : heads) {
            t.popped(h);
        }
    }

    private static void pushed(InflightRegion.QueueTracker t, int... heads) {
        for (int h : heads) {
            t.pushed(h);
        }
    }

    @Test
    void aNewRecordIsInitialisedAndResubmitsNothing() {
        assertEquals(12288, InflightRegion.mmapSize(QUEUES, SIZE), "two 64-byte-aligned QueueRegionSplit of 16 + 16 x 256, in pages");
        assertEquals(0, first.queue(TX, SIZE, 0).resubmitted());
        assertEquals(0, restarted(0).resubmitted(), "the version and desc_num written by the first survive");
    }

    @Test
    void chainsTakenAndNotPublishedAreResubmittedAndPublishedOnesAreNot() {
        InflightRegion.QueueTracker t = first.queue(TX, SIZE, 0);
        popped(t, 0, 1, 2, 3);
        pushed(t, 0, 1);
        t.published(2); // the used idx in guest memory is 2 now
        assertEquals(2, restarted(2).resubmitted(), "heads 2 and 3 were taken and never returned");
    }

    @Test
    void aChainSentButNotYetPublishedWhenTheBackEndDiedIsResubmitted() {
        // the window the record cannot close: the frame left, its used entry was written, the used idx not yet
        InflightRegion.QueueTracker t = first.queue(TX, SIZE, 0);
        t.popped(7);
        t.pushed(7);
        assertEquals(1, restarted(0).resubmitted(), "delivery across a crash is at least once");
    }

    @Test
    void aBatchPublishedToTheGuestButNotYetClearedIsClearedNotResubmitted() {
        // "When reconnecting": used_idx in the record lags the ring's, so the last batch was done
        InflightRegion.QueueTracker t = first.queue(TX, SIZE, 0);
        popped(t, 3, 4, 5);
        pushed(t, 3, 4);
        // the queue stored used idx 2 in guest memory and the back-end died before clearing the batch's flags
        assertEquals(1, restarted(2).resubmitted(), "only head 5 is still in flight");
    }

    @Test
    void chainsGivenBackUnusedAreNotInFlight() {
        InflightRegion.QueueTracker t = first.queue(TX, SIZE, 0);
        popped(t, 0, 1, 2);
        t.rewound(2);
        assertEquals(1, restarted(0).resubmitted());
    }

    @Test
    void aSecondRestartBeforeTheChainIsTakenAgainFindsNoFlagAndStillResumesAtUsedIdx() {
        InflightRegion.QueueTracker t = first.queue(TX, SIZE, 0);
        t.popped(0);
        InflightRegion.QueueTracker again = restarted(0);
        assertEquals(1, again.resubmitted());
        // the second back-end has not taken it yet and dies too: the ring resumes from used idx, the chain is taken there again
        assertEquals(0, restarted(0).resubmitted(), "the reconcile cleared the flag; taking the chain again sets it");
    }

    @Test
    void aRecordLeftByARingOfAnotherSizeIsDiscarded() {
        InflightRegion.QueueTracker t = first.queue(TX, SIZE, 0);
        t.popped(9);
        try (InflightRegion second = InflightRegion.map(fd[0], InflightRegion.mmapSize(QUEUES, SIZE), 0, QUEUES, SIZE)) {
            assertEquals(0, second.queue(TX, 128, 0).resubmitted(), "desc_num 256 is not this ring's 128: nothing in it to trust");
        }
    }

    @Test
    void whatAFrontEndScribbledInTheSharedFileKeepsTheNextBackEndInsideIt() {
        first.queue(TX, SIZE, 0); // version and desc_num set, as a real back-end leaves them
        long size = InflightRegion.mmapSize(QUEUES, SIZE);
        MemorySegment raw = LibC.mmap(size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd[0], 0);
        try {
            long q = TX * InflightRegion.queueRegionSize(SIZE);
            raw.set(ValueLayout.JAVA_SHORT_UNALIGNED, q + 12, (short) 0);      // last_batch_head: 0
            raw.set(ValueLayout.JAVA_SHORT_UNALIGNED, q + 14, (short) 0);      // used_idx 0, the ring's 40000: a huge "last batch"
            for (int d = 0; d < SIZE; d++) {
                long desc = q + InflightRegion.QUEUE_HEADER_SIZE + (long) d * InflightRegion.DESC_STATE_SIZE;
                raw.set(ValueLayout.JAVA_BYTE, desc, (byte) 0x7f);                       // every flag set, not 1
                raw.set(ValueLayout.JAVA_SHORT_UNALIGNED, desc + 6, (short) d);          // next: itself, a cycle
                raw.set(ValueLayout.JAVA_LONG_UNALIGNED, desc + 8, -1L);                 // counter: garbage
            }
            raw.set(ValueLayout.JAVA_SHORT_UNALIGNED, q + InflightRegion.QUEUE_HEADER_SIZE + 6, (short) 0xFFFF); // desc 0's next: beyond the ring
            int resubmitted = restarted(40000).resubmitted();
            assertTrue(resubmitted >= 0 && resubmitted <= SIZE, "bounded by the ring: " + resubmitted);
            assertEquals(SIZE - 1, resubmitted, "the walk of the 'last batch' cleared head 0 and stopped at a next beyond the ring");
        } finally {
            LibC.munmap(raw);
        }
    }

    @Test
    void aFileThatDoesNotHoldTheDescribedRegionIsRefusedByName() {
        long size = InflightRegion.mmapSize(QUEUES, SIZE);
        assertThrows(VhostUserException.class, () -> InflightRegion.map(fd[0], size, size, QUEUES, SIZE), "past the end of the file");
        assertThrows(VhostUserException.class, () -> InflightRegion.map(fd[0], 4096, 0, QUEUES, SIZE), "the wrong size");
        assertThrows(VhostUserException.class, () -> InflightRegion.map(fd[0], size, 512, QUEUES, SIZE), "an unaligned offset");
        VhostUserException e = assertThrows(VhostUserException.class, () -> InflightRegion.checkShape(QUEUES, 1000, QUEUES));
        assertTrue(e.getMessage().contains("queue size 1000 is not a power of two"), e.getMessage());
        e = assertThrows(VhostUserException.class, () -> InflightRegion.checkShape(5, SIZE, QUEUES));
        assertTrue(e.getMessage().contains("num queues 5 is outside 1..2"), e.getMessage());
    }
}
