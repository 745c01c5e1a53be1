package io.vmm4j.vhost.engine;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.Errno;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.tap.TapException;
import io.vmm4j.vhost.DriverQueuePairs;
import io.vmm4j.vhost.NumberedFrames;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.NetQueueCounters;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.function.IntSupplier;

import static io.vmm4j.vhost.NumberedFrames.range;
import static io.vmm4j.virtio.VirtioFeatures.bit;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The queue-pair engine (what the emulated data plane and the vhost-user daemon run per pair) on
 * its own, over an in-memory port: a full port, a transmit chain too short for its header, kick and
 * interrupt suppression with their counters, and a pair switched off and on.
 */
class QueuePairEngineTest {
    private static final long MOVE_MILLIS = 3_000;
    private static final long QUIET_MILLIS = 300;
    private static final long ACKED = bit(VirtioFeatures.VERSION_1) | bit(NetFeatures.MRG_RXBUF);

    /** What each test made, closed last made first. */
    private final Deque<AutoCloseable> made = new ArrayDeque<>();
    private MemoryPort[] ports;
    private DriverQueuePairs guest;
    private EventLoop loop;
    private QueuePairWorker worker;

    /** The engine on pair 0 of a one-pair guest, started unless {@code enabled} is false (then set up disabled, as a pair beyond the active count). */
    private void start(boolean eventIdx, boolean enabled) {
        ports = MemoryPort.pair(1, TapDevice.VNET_HEADER_V1_SIZE);
        made.push(ports[0]);
        made.push(ports[1]);
        guest = new DriverQueuePairs(1, eventIdx);
        made.push(guest);
        loop = new EventLoop("net-io-0");
        made.push(loop);
        long acked = eventIdx ? ACKED | bit(VirtioFeatures.EVENT_IDX) : ACKED;
        // what EmulatedNetBackend does for each pair at DRIVER_OK
        worker = new QueuePairWorker(0, loop, ports[0], QueuePairWorker.Queues.from(guest.activation(acked, 1), 0));
        made.push(worker::release);
        worker.setEnabled(enabled);
        worker.start();
        made.push(worker::stop);
        loop.executeAndWait(() -> { }); // the start's first look at the rings is done: the engine waits for kicks
    }

    @AfterEach
    void tearDown() throws Exception {
        while (!made.isEmpty()) {
            made.pop().close();
        }
    }

    private MemoryPort wire() {
        return ports[1];
    }

    private NetQueueCounters rx() {
        return guest.counters(0);
    }

    private NetQueueCounters tx() {
        return guest.counters(1);
    }

    @Test
    void aFullPortHoldsTransmitUntilItDrainsAndThenEveryFrameGoesOnceInOrder() throws Exception {
        start(true, true);
        ThreadCpu io = ThreadCpu.of(loop);
        // fill the port from the engine's own end until the host's side holds no more (EAGAIN)
        byte[] filler = NumberedFrames.withHeader(new byte[NumberedFrames.LENGTH]);
        int fillers = 0;
        while (true) {
            try {
                ports[0].send(0, filler);
                fillers++;
            } catch (TapException e) {
                assertEquals(Errno.EAGAIN, e.errno(), e.getMessage());
                break;
            }
        }
        assertTrue(fillers > 0, "the port took frames before it filled");

        NumberedFrames.transmit(guest, 0, 0, 20);
        Thread.sleep(QUIET_MILLIS);
        assertEquals(0, guest.usedIdx(1), "a chain the full port refused is not returned (it waits in the ring)");
        io.assertSleeps("a full port: the engine waits for EPOLLOUT");
        assertEquals(0, tx().packets);
        assertEquals(0, tx().portErrors, "EAGAIN is back-pressure, not an error");

        // the host reads: the port drains, EPOLLOUT fires, the engine sends what waited
        assertEquals(range(0, 20), NumberedFrames.receive(wire(), 0, 20, MOVE_MILLIS), "each frame once, in order, none lost");
        assertEquals(20, guest.awaitTransmitted(0, 20, MOVE_MILLIS));
        assertEquals(20, tx().packets);
        assertEquals(List.of(), NumberedFrames.receive(wire(), 0, 1, QUIET_MILLIS), "and none sent twice");
    }

    @Test
    void aTransmitChainShorterThanTheHeaderIsAPortErrorAndIsReturnedUnsent() throws Exception {
        start(true, true);
        guest.transmitBytes(0, 4); // §5.1.6.2: every frame starts with a 12-byte header; 4 bytes cannot be a frame
        guest.transmit(0, NumberedFrames.frame(1));
        assertEquals(2, guest.awaitTransmitted(0, 2, MOVE_MILLIS), "both chains come back, the short one too");
        assertTrue(LibC.pollOne(wire().fd(0), LibC.POLLIN, (int) MOVE_MILLIS) != 0, "a frame reaches the wire");
        byte[] buf = new byte[4096];
        int n = wire().receive(0, buf);
        assertTrue(n >= TapDevice.VNET_HEADER_V1_SIZE, "the first thing on the wire is " + n + " bytes: the short chain was sent");
        assertEquals(1, NumberedFrames.number(java.util.Arrays.copyOfRange(buf, TapDevice.VNET_HEADER_V1_SIZE, n)),
                "the first frame on the wire is the good one: the short chain was not sent");
        assertEquals(-1, wire().receive(0, buf), "nothing else was sent");
        assertEquals(1, tx().portErrors, "the short chain is counted as a port error");
        assertEquals(1, tx().packets);
        assertTrue(guest.deviceErrors().isEmpty(), "a short chain is the driver's bad frame, not a broken ring: " + guest.deviceErrors());
    }

    @Test
    void oneKickServesABatchWithOneInterruptAndTheEngineAsksForTheNextKick() throws Exception {
        start(true, true);
        for (int n = 0; n < 50; n++) {
            guest.queueTransmit(0, NumberedFrames.frame(n));
        }
        assertTrue(guest.publishTransmit(0), "an idle engine asks for a kick (avail_event at the ring's head)");
        assertEquals(range(0, 50), NumberedFrames.receive(wire(), 0, 50, MOVE_MILLIS));
        awaitValue(() -> guest.usedIdx(1), 50, "all 50 chains returned");
        loop.executeAndWait(() -> { });
        assertEquals(1, tx().kicks, "one kick for the batch");
        assertEquals(1, tx().interrupts, "one interrupt for the batch: the chains are published together");
        assertEquals(0, tx().interruptsSuppressed);

        guest.queueTransmit(0, NumberedFrames.frame(50));
        assertTrue(guest.publishTransmit(0), "after the batch the engine asks for the next kick (avail_event = 50, §2.7.10)");
        assertEquals(List.of(50), NumberedFrames.receive(wire(), 0, 1, MOVE_MILLIS), "and the kick is served");
        awaitValue(() -> guest.usedIdx(1), 51, "the chain returned");
        assertEquals(2, tx().kicks);
        assertEquals(51, tx().packets);
    }

    @Test
    void withEventIdxTheEngineInterruptsOnlyWhenUsedIdxPassesUsedEvent() throws Exception {
        start(true, true);
        guest.postReceiveBuffers(0, 32);
        receiveOneAtATime(0, 5);
        // the driver took nothing, so used_event stayed 0: only the first buffer needed an interrupt (§2.7.10)
        assertEquals(1, rx().interrupts, rx().toString());
        assertEquals(4, rx().interruptsSuppressed, rx().toString());

        assertEquals(range(0, 5), NumberedFrames.receive(guest, 0, 5, MOVE_MILLIS)); // used_event moves to 5
        receiveOneAtATime(5, 6);
        assertEquals(2, rx().interrupts, "used idx passed the driver's used_event: interrupt again; " + rx());
        assertEquals(4, rx().interruptsSuppressed, rx().toString());
    }

    @ParameterizedTest(name = "NO_INTERRUPT {0}")
    @ValueSource(booleans = {true, false})
    void withoutEventIdxTheNoInterruptFlagDecides(boolean suppressed) throws Exception {
        start(false, true);
        guest.rx(0).setInterruptSuppressed(suppressed); // VIRTQ_AVAIL_F_NO_INTERRUPT (§2.7.7)
        guest.postReceiveBuffers(0, 32);
        receiveOneAtATime(0, 3);
        assertEquals(suppressed ? 0 : 3, rx().interrupts, rx().toString());
        assertEquals(suppressed ? 3 : 0, rx().interruptsSuppressed, rx().toString());
    }

    @Test
    void aDisabledPairIsNotServedAndEnablingItServesWhatWaited() throws Exception {
        start(true, false);
        ThreadCpu io = ThreadCpu.of(loop);
        guest.postReceiveBuffers(0, 8);
        NumberedFrames.transmit(guest, 0, 0, 1);
        NumberedFrames.send(wire(), 0, 10, 11);
        assertEquals(List.of(), NumberedFrames.receive(wire(), 0, 1, QUIET_MILLIS), "a disabled pair transmits nothing");
        assertEquals(List.of(), NumberedFrames.receive(guest, 0, 1, QUIET_MILLIS), "and receives nothing");
        assertEquals(0, guest.usedIdx(1));
        io.assertSleeps("a disabled pair with work in its rings and its port");

        worker.setEnabled(true);
        assertEquals(List.of(0), NumberedFrames.receive(wire(), 0, 1, MOVE_MILLIS), "enabled: what waited in the ring goes out");
        assertEquals(List.of(10), NumberedFrames.receive(guest, 0, 1, MOVE_MILLIS), "and what waited in the port comes in");

        worker.setEnabled(false);
        NumberedFrames.transmit(guest, 0, 1, 2);
        assertEquals(List.of(), NumberedFrames.receive(wire(), 0, 1, QUIET_MILLIS), "disabled again: nothing goes out");
        assertEquals(1, guest.usedIdx(1));
    }

    /**
     * The host sends frames {@code from..to-1}, each once the guest's used idx shows the one before
     * (so each gets its own pass of the engine, its own interrupt decision), the driver taking none.
     */
    private void receiveOneAtATime(int from, int to) throws InterruptedException {
        for (int n = from; n < to; n++) {
            NumberedFrames.send(wire(), 0, n, n + 1);
            int used = n + 1;
            awaitValue(() -> guest.usedIdx(0), used, "frame " + n + " received");
        }
        loop.executeAndWait(() -> { });
    }

    private static void awaitValue(IntSupplier value, int expected, String what) throws InterruptedException {
        long deadline = System.currentTimeMillis() + MOVE_MILLIS;
        while (value.getAsInt() != expected && System.currentTimeMillis() < deadline) {
            Thread.sleep(5);
        }
        assertEquals(expected, value.getAsInt(), what);
    }
}
