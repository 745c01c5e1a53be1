package io.vmm4j.vhost.engine;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.tap.DiscardPort;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.tap.PacketPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.DriverQueuePairs;
import io.vmm4j.vhost.NumberedFrames;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.queue.RingLayout;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Deque;
import java.util.concurrent.TimeUnit;

import static io.vmm4j.virtio.VirtioFeatures.bit;
import static io.vmm4j.virtio.net.NetFeatures.MRG_RXBUF;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The engine on a busy-polling loop ({@code --poll-us}): while it polls, frames the driver never
 * kicked for go out and buffers it never kicked for are filled, the driver is told not to kick, and
 * once the window passes with nothing to do the loop sleeps and asks for kicks again.
 */
class BusyPollEngineTest {
    private static final long MOVE_MILLIS = 3_000;
    private static final long ACKED = bit(VirtioFeatures.VERSION_1) | bit(MRG_RXBUF) | bit(VirtioFeatures.EVENT_IDX);

    private final Deque<AutoCloseable> made = new ArrayDeque<>();
    private DriverQueuePairs guest;
    private EventLoop loop;

    private void start(RingLayout layout, PacketPort port, long pollMillis) {
        guest = new DriverQueuePairs(1, true, layout);
        made.push(guest);
        loop = new EventLoop("net-io-poll");
        made.push(loop);
        loop.setBusyPoll(TimeUnit.MILLISECONDS.toNanos(pollMillis));
        long acked = layout == RingLayout.PACKED ? ACKED | bit(VirtioFeatures.RING_PACKED) : ACKED;
        QueuePairWorker worker = new QueuePairWorker(0, loop, port, QueuePairWorker.Queues.from(guest.activation(acked, 1), 0));
        made.push(worker::release);
        worker.start();
        made.push(worker::stop);
        loop.executeAndWait(() -> { });
    }

    private MemoryPort[] wire() {
        MemoryPort[] ports = MemoryPort.pair(1, TapDevice.VNET_HEADER_V1_SIZE);
        made.push(ports[0]);
        made.push(ports[1]);
        return ports;
    }

    @AfterEach
    void tearDown() throws Exception {
        while (!made.isEmpty()) {
            made.pop().close();
        }
    }

    @ParameterizedTest
    @EnumSource(RingLayout.class)
    void whilePollingFramesNobodyKickedForGoOutAndComeInInOrder(RingLayout layout) {
        MemoryPort[] ports = wire();
        start(layout, ports[0], 10_000); // a window longer than the test: the loop polls throughout
        guest.transmit(0, NumberedFrames.frame(0)); // may kick: the loop was asleep
        assertEquals(1, guest.awaitTransmitted(0, 1, MOVE_MILLIS));
        List<Integer> arrived = new ArrayList<>(NumberedFrames.receive(ports[1], 0, 1, MOVE_MILLIS));
        int askedForKick = 0;
        for (int n = 1; n <= 300; n++) { // one at a time, each after the last came back: more than a ring's worth
            guest.queueTransmit(0, NumberedFrames.frame(n));
            askedForKick += guest.publishTransmitWithoutKick(0) ? 1 : 0;
            assertEquals(1, guest.awaitTransmitted(0, 1, MOVE_MILLIS), "frame " + n + ", never kicked for, went out");
            if (n % 50 == 0) { // the host reads as it goes: the port never fills
                arrived.addAll(NumberedFrames.receive(ports[1], 0, 50, MOVE_MILLIS));
            }
        }
        assertEquals(NumberedFrames.range(0, 301), arrived, "each frame once, in order");
        // split with EVENT_IDX: avail_event stays where the last event-driven pass put it, so at most the first publish asks
        assertTrue(askedForKick <= 1, "the polling device told the driver not to kick, yet " + askedForKick + " publishes asked for one");
        assertTrue(guest.counters(1).kicks <= 1, "kicks the engine saw: " + guest.counters(1).kicks);

        guest.postReceiveBuffersWithoutKick(0, 64);
        NumberedFrames.send(ports[1], 0, 1000, 1040);
        assertEquals(NumberedFrames.range(1000, 1040), NumberedFrames.receive(guest, 0, 40, MOVE_MILLIS),
                "frames from the port fill buffers nobody kicked for");
        assertEquals(0, guest.counters(0).kicks, "no receive kick was sent or needed");
    }

    @ParameterizedTest
    @EnumSource(RingLayout.class)
    void afterTheWindowTheLoopSleepsAndAsksForKicksAgain(RingLayout layout) throws Exception {
        MemoryPort[] ports = wire();
        start(layout, ports[0], 100);
        ThreadCpu io = ThreadCpu.of(loop);
        guest.transmit(0, NumberedFrames.frame(0));
        assertEquals(1, guest.awaitTransmitted(0, 1, MOVE_MILLIS));
        Thread.sleep(300); // the 100 ms window passes with nothing to do
        io.assertSleeps("the poll window is over and there is no work: the loop sleeps in epoll");
        guest.queueTransmit(0, NumberedFrames.frame(1));
        assertTrue(guest.publishTransmitWithoutKick(0), "a sleeping device asks the driver to kick (§2.7.10, §2.8.10)");
        assertEquals(0, guest.awaitTransmitted(0, 1, 300), "nobody kicked and nobody polls: the frame waits");
        guest.txKick(0).signal();
        assertEquals(1, guest.awaitTransmitted(0, 1, MOVE_MILLIS), "the kick wakes the loop");
        assertEquals(NumberedFrames.range(0, 2), NumberedFrames.receive(ports[1], 0, 2, MOVE_MILLIS));
    }

    @ParameterizedTest
    @EnumSource(RingLayout.class)
    void anInProcessPortFillsBuffersNobodyKickedForWhilePolling(RingLayout layout) {
        DiscardPort port = new DiscardPort("discard-poll", 1, TapDevice.VNET_HEADER_V1_SIZE, DiscardPort.DEFAULT_FRAME_SIZE);
        made.push(port);
        start(layout, port, 10_000);
        guest.transmit(0, NumberedFrames.frame(0)); // wakes the loop: it polls from here
        assertEquals(1, guest.awaitTransmitted(0, 1, MOVE_MILLIS));
        for (int round = 0; round < 10; round++) {
            guest.postReceiveBuffersWithoutKick(0, 50);
            for (int i = 0; i < 50; i++) {
                assertNotNull(guest.awaitReceived(0, MOVE_MILLIS), "round " + round + ", buffer " + i + " was filled");
            }
        }
        assertEquals(500, port.stats().rxFrames());
        assertEquals(0, guest.counters(0).kicks, "no receive kick was sent");
    }
}
