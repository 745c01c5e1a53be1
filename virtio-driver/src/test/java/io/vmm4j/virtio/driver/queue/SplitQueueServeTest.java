package io.vmm4j.virtio.driver.queue;

import io.vmm4j.virtio.driver.DriverQueue;
import io.vmm4j.virtio.queue.ChainHandler;
import io.vmm4j.virtio.queue.DescriptorChain;
import io.vmm4j.virtio.queue.SplitQueue;
import io.vmm4j.virtio.queue.SplitRing;
import io.vmm4j.virtio.queue.Virtqueue;
import io.vmm4j.virtio.queue.VirtqueueException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;
import java.util.function.ToIntFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link SplitQueue#serve}, the one service loop of devices that return chains one by one: every
 * available chain reaches the handler and goes back with the length it returned, one publish per
 * batch, the driver's notification wish passed on, the §2.7.10 re-check before sleeping, and the two
 * ways a handler ends a pass early with notifications still off.
 */
class SplitQueueServeTest {
    private static final int SIZE = 8;

    private QueuePair q;
    private long buf;

    @AfterEach
    void nothingOutsideTheRingsWasWritten() {
        try {
            q.guest.assertCanariesIntact();
        } finally {
            q.close();
        }
    }

    private void pair(boolean eventIdx) {
        q = new QueuePair(SIZE, eventIdx);
        buf = q.buffer(64);
    }

    private int offer() {
        int head = q.driver.add(new long[] {buf}, new int[] {64}, 0);
        q.driver.publish();
        return head;
    }

    /** What the loop did, call by call. */
    private static final class Recorder implements ChainHandler {
        final List<Integer> heads = new ArrayList<>();
        final List<Boolean> published = new ArrayList<>();
        ToIntFunction<DescriptorChain> lengths = c -> 10 + c.head();
        Runnable afterPublish = () -> { };
        int serveChains = Integer.MAX_VALUE;

        @Override
        public int handle(DescriptorChain chain) {
            heads.add(chain.head());
            serveChains--;
            return lengths.applyAsInt(chain);
        }

        @Override
        public void published(boolean notifyDriver) {
            published.add(notifyDriver);
            afterPublish.run();
        }

        @Override
        public boolean serving() {
            return serveChains > 0;
        }
    }

    /**
     * Whether the device asks for kicks for chains after {@code availIdx} (§2.7.10): without EVENT_IDX
     * the used ring's NO_NOTIFY flag is clear, with it avail_event names that index.
     */
    private boolean kicksAskedFrom(boolean eventIdx, int availIdx) {
        if (!eventIdx) {
            return (q.memory.readShort(q.driver.usedRing() + SplitRing.RING_FLAGS) & SplitRing.USED_F_NO_NOTIFY) == 0;
        }
        return Short.toUnsignedInt(q.memory.readShort(q.driver.usedRing() + SplitRing.availEventOffset(SIZE))) == availIdx;
    }

    @ParameterizedTest(name = "eventIdx={0}")
    @ValueSource(booleans = {false, true})
    void everyChainGoesBackWithItsLengthInOnePublishAndTheDriverHearsOnce(boolean eventIdx) {
        pair(eventIdx);
        int a = offer();
        int b = offer();
        int c = offer();
        q.driver.needsKick(); // the driver kicked for these three
        Recorder r = new Recorder();
        q.device.serve(q.chain, r);
        assertEquals(List.of(a, b, c), r.heads);
        assertEquals(List.of(true), r.published, "one batch, and the driver wants to hear of it");
        for (int head : List.of(a, b, c)) {
            DriverQueue.Used used = q.driver.pollUsed();
            assertEquals(head, used.head());
            assertEquals(10 + head, used.length(), "the used length is what the handler returned (§2.7.8.2)");
        }
        assertNull(q.driver.pollUsed());
        assertTrue(kicksAskedFrom(eventIdx, 3), "kicks are asked for again, from the next chain on, before the loop sleeps");
        offer();
        assertTrue(q.driver.needsKick(), "so a driver adding a chain now kicks");
    }

    /** A long pass hands buffers back every {@link Virtqueue#PUBLISH_BATCH} chains, so the driver can refill while it goes on. */
    @ParameterizedTest(name = "eventIdx={0}")
    @ValueSource(booleans = {false, true})
    void aLongPassPublishesEveryBatchNotOnlyAtItsEnd(boolean eventIdx) {
        q = new QueuePair(256, eventIdx);
        buf = q.buffer(64);
        for (int i = 0; i < 200; i++) {
            q.driver.add(new long[] {buf}, new int[] {64}, 0);
        }
        q.driver.publish();
        List<Integer> usedSeen = new ArrayList<>();
        Recorder r = new Recorder();
        r.lengths = c -> {
            usedSeen.add(Short.toUnsignedInt(q.memory.loadAcquireShort(q.driver.usedRing() + SplitRing.RING_IDX)));
            return 0;
        };
        q.device.serve(q.chain, r);
        assertEquals(200, r.heads.size());
        int batch = Virtqueue.PUBLISH_BATCH;
        for (int i = 0; i < 200; i++) {
            assertEquals(i / batch * batch, usedSeen.get(i), "chain " + i + " sees every full batch before it published");
        }
        assertEquals((200 + batch - 1) / batch, r.published.size(), "a publish per batch and one for the rest");
        assertEquals(200, Short.toUnsignedInt(q.memory.loadAcquireShort(q.driver.usedRing() + SplitRing.RING_IDX)));
    }

    @ParameterizedTest(name = "eventIdx={0}")
    @ValueSource(booleans = {false, true})
    void aDriverThatSuppressesInterruptsIsNotNotified(boolean eventIdx) {
        pair(eventIdx);
        q.driver.setInterruptSuppressed(true);
        offer();
        Recorder r = new Recorder();
        q.device.serve(q.chain, r);
        assertEquals(1, r.heads.size());
        if (!eventIdx) {
            assertEquals(List.of(false), r.published, "NO_INTERRUPT: the device does not notify (§2.7.7.2)");
        } else {
            assertEquals(1, r.published.size());
        }
    }

    @ParameterizedTest(name = "eventIdx={0}")
    @ValueSource(booleans = {false, true})
    void chainsAddedWhileNotificationsWereOffAreServedBeforeTheLoopSleeps(boolean eventIdx) {
        pair(eventIdx);
        offer();
        Recorder r = new Recorder();
        int[] added = {-1};
        // the driver adds a chain after the device's last pop and before it asks for kicks again: no kick comes for it
        r.afterPublish = () -> {
            if (added[0] < 0) {
                added[0] = offer();
            }
        };
        q.device.serve(q.chain, r);
        assertEquals(2, r.heads.size(), "the re-check after enabling notifications found the second chain (§2.7.10)");
        assertEquals(added[0], r.heads.get(1));
        assertEquals(2, r.published.size(), "each pass publishes its own batch");
    }

    @ParameterizedTest(name = "eventIdx={0}")
    @ValueSource(booleans = {false, true})
    void aDeferredChainGoesBackUnusedAndTheNextPassTakesItAgain(boolean eventIdx) {
        pair(eventIdx);
        int a = offer();
        int b = offer();
        q.driver.needsKick(); // the driver kicked for these two
        Recorder r = new Recorder();
        r.lengths = c -> c.head() == b ? ChainHandler.DEFER : 0; // the port filled up at the second frame
        q.device.serve(q.chain, r);
        assertEquals(List.of(a, b), r.heads);
        assertEquals(1, r.published.size(), "what was handled before the deferred chain is published");
        assertEquals(a, q.driver.pollUsed().head());
        assertNull(q.driver.pollUsed(), "the deferred chain is not used");
        assertEquals(1, q.device.nextAvail(), "the deferred chain is the next to pop");
        assertFalse(kicksAskedFrom(eventIdx, 2), "a deferred pass leaves kicks off: the device has its own wake-up");
        int c = offer();
        assertFalse(q.driver.needsKick(), "a driver adding a chain now does not kick");

        r.lengths = chain -> 0;
        q.device.serve(q.chain, r);
        assertEquals(List.of(a, b, b, c), r.heads, "the next pass (the port writable again) takes the same chain first");
        assertEquals(b, q.driver.pollUsed().head());
        assertEquals(c, q.driver.pollUsed().head());
    }

    @ParameterizedTest(name = "eventIdx={0}")
    @ValueSource(booleans = {false, true})
    void aDeviceThatStopsServingTakesNoFurtherChainAndPublishesWhatItDid(boolean eventIdx) {
        pair(eventIdx);
        int a = offer();
        offer();
        offer();
        Recorder r = new Recorder();
        r.serveChains = 1; // stop() arrives while the first chain is handled
        q.device.serve(q.chain, r);
        assertEquals(List.of(a), r.heads, "no pop after serving() says no");
        assertEquals(1, r.published.size());
        assertEquals(a, q.driver.pollUsed().head());
        assertNull(q.driver.pollUsed());
        assertEquals(1, q.device.nextAvail(), "the chains not taken stay available for the next backend");
        assertFalse(kicksAskedFrom(eventIdx, 3), "a stopping device does not ask for kicks again");
    }

    @ParameterizedTest(name = "eventIdx={0}")
    @ValueSource(booleans = {false, true})
    void aChainTheHandlerRefusesPublishesNothingOfItsBatch(boolean eventIdx) {
        pair(eventIdx);
        offer();
        offer();
        Recorder r = new Recorder();
        r.lengths = c -> {
            if (r.heads.size() == 2) {
                throw new VirtqueueException("a rule of the device type");
            }
            return 0;
        };
        assertThrows(VirtqueueException.class, () -> q.device.serve(q.chain, r));
        assertTrue(r.published.isEmpty());
        assertNull(q.driver.pollUsed(), "the used idx did not move");
    }
}
