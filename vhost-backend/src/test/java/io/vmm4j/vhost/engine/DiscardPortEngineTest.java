package io.vmm4j.vhost.engine;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.testing.AllocatedBytes;
import io.vmm4j.tap.DiscardPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.DriverQueuePairs;
import io.vmm4j.vhost.NumberedFrames;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.NetQueueCounters;
import io.vmm4j.virtio.queue.RingLayout;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;

import static io.vmm4j.virtio.VirtioFeatures.bit;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The queue engine over the discard port, an in-process port with no fd: transmitted frames are
 * counted and dropped, every posted receive buffer gets the port's frame when the guest kicks, the
 * engine sleeps when there are no buffers, and the loop thread allocates nothing per frame.
 */
class DiscardPortEngineTest {
    private static final long MOVE_MILLIS = 3_000;
    private static final long ACKED = bit(VirtioFeatures.VERSION_1) | bit(NetFeatures.MRG_RXBUF) | bit(VirtioFeatures.EVENT_IDX);

    private final Deque<AutoCloseable> made = new ArrayDeque<>();
    private DiscardPort port;
    private EventLoop loop;
    private QueuePairWorker worker;

    private QueuePairWorker start(QueuePairWorker.Queues queues, int frameSize) {
        port = new DiscardPort("discard-test", 1, TapDevice.VNET_HEADER_V1_SIZE, frameSize);
        made.push(port);
        loop = new EventLoop("net-io-discard");
        made.push(loop);
        worker = new QueuePairWorker(0, loop, port, queues);
        made.push(worker::release);
        worker.start();
        made.push(worker::stop);
        loop.executeAndWait(() -> { });
        return worker;
    }

    private DriverQueuePairs guest(RingLayout layout) {
        DriverQueuePairs guest = new DriverQueuePairs(1, true, layout);
        made.push(guest);
        long acked = layout == RingLayout.PACKED ? ACKED | bit(VirtioFeatures.RING_PACKED) : ACKED;
        start(QueuePairWorker.Queues.from(guest.activation(acked, 1), 0), DiscardPort.DEFAULT_FRAME_SIZE);
        return guest;
    }

    @AfterEach
    void tearDown() throws Exception {
        while (!made.isEmpty()) {
            made.pop().close();
        }
    }

    @ParameterizedTest
    @EnumSource(RingLayout.class)
    void transmittedFramesAreCountedAndDroppedAndEveryChainComesBack(RingLayout layout) throws Exception {
        DriverQueuePairs guest = guest(layout);
        long bytes = 0;
        for (int n = 0; n < 600; n++) { // more than two rings' worth: the ring wraps
            byte[] frame = new byte[60 + n % 200];
            frame[0] = (byte) n;
            guest.transmit(0, frame);
            bytes += frame.length;
            if (n % 100 == 99) {
                assertEquals(100, guest.awaitTransmitted(0, 100, MOVE_MILLIS), "the engine returned the batch");
            }
        }
        loop.executeAndWait(() -> { });
        DiscardPort.Stats s = port.stats();
        assertEquals(600, s.txFrames(), "the port counted each frame once");
        assertEquals(bytes, s.txBytes(), "the port counted the frames' bytes, without the vnet header");
        NetQueueCounters tx = guest.counters(1);
        assertEquals(600, tx.packets);
        assertEquals(bytes, tx.bytes, "the engine and the port agree");
        assertEquals(0, tx.portErrors);
        assertEquals(0, s.rxFrames(), "no receive buffers, no frames made");
    }

    @ParameterizedTest
    @EnumSource(RingLayout.class)
    void everyPostedReceiveBufferGetsTheFrameAndWithNoBuffersTheEngineSleepsUntilTheNextKick(RingLayout layout) throws Exception {
        DriverQueuePairs guest = guest(layout);
        ThreadCpu io = ThreadCpu.of(loop);
        byte[] expected = port.frame();
        assertEquals(64, expected.length);
        guest.postReceiveBuffers(0, 32);
        for (int i = 0; i < 32; i++) {
            byte[] f = guest.awaitReceived(0, MOVE_MILLIS);
            assertNotNull(f, "frame " + i + " of 32 arrived");
            assertArrayEquals(expected, f, "frame " + i + " is the port's frame, whole");
        }
        assertNull(guest.pollReceived(0), "one frame per buffer, none more");
        io.assertSleeps("no receive buffers: the engine waits for the receive kick");
        assertEquals(32, port.stats().rxFrames());

        guest.postReceiveBuffers(0, 8); // the kick wakes the engine again
        for (int i = 0; i < 8; i++) {
            assertArrayEquals(expected, guest.awaitReceived(0, MOVE_MILLIS), "frame " + i + " after the second kick");
        }
        loop.executeAndWait(() -> { });
        DiscardPort.Stats s = port.stats();
        assertEquals(40, s.rxFrames());
        assertEquals(40L * 64, s.rxBytes());
        assertEquals(40, guest.counters(0).packets, "the engine counted what the port made");
        assertTrue(guest.deviceErrors().isEmpty(), guest.deviceErrors().toString());
    }

    @Test
    void theFrameIsValidIpv4Udp() {
        byte[] f = new DiscardPort("d", 1, 12, 128).frame();
        assertEquals(128, f.length);
        assertEquals(0x0800, (f[12] & 0xFF) << 8 | (f[13] & 0xFF), "EtherType IPv4");
        assertEquals(0x45, f[14] & 0xFF);
        assertEquals(128 - 14, (f[16] & 0xFF) << 8 | (f[17] & 0xFF), "IPv4 total length");
        int sum = 0;
        for (int i = 14; i < 34; i += 2) {
            sum += (f[i] & 0xFF) << 8 | (f[i + 1] & 0xFF);
        }
        while (sum > 0xFFFF) {
            sum = (sum & 0xFFFF) + (sum >>> 16);
        }
        assertEquals(0xFFFF, sum, "the IPv4 header checksum verifies (RFC 1071)");
        assertEquals(17, f[23], "UDP");
        assertEquals(128 - 34, (f[38] & 0xFF) << 8 | (f[39] & 0xFF), "UDP length");
    }

    @Test
    void aFrameLargerThanOneBufferSpansSeveralWithMergeableBuffers() throws Exception {
        try (RingGuest guest = new RingGuest(64, true)) {
            start(QueuePairWorker.Queues.from(guest.activation(ACKED), 0), 300);
            byte[] expected = port.frame();
            for (int i = 0; i < 16; i++) {
                guest.addReceiveBuffer(128, true); // 312 bytes with the header: three buffers each
            }
            guest.publishReceiveBuffers();
            for (int i = 0; i < 5; i++) {
                RingGuest.Frame f = guest.awaitFrame(MOVE_MILLIS);
                assertNotNull(f, "frame " + i);
                assertEquals(3, f.numBuffers(), "num_buffers says the frame took three buffers");
                assertArrayEquals(expected, f.bytes());
            }
            loop.executeAndWait(() -> { });
            assertEquals(5, guest.rxCounters().packets, "the last buffer alone cannot hold a frame: it waits for more");
            assertEquals(6, port.stats().rxFrames(), "the port made the sixth, which waits in the engine for buffers");
            assertTrue(guest.deviceErrors.isEmpty(), guest.deviceErrors.toString());
            worker.stop();
        }
    }

    @Test
    void withTheLinkDownNothingIsMadeAndTheEngineDoesNotSpin() throws Exception {
        DriverQueuePairs guest = guest(RingLayout.SPLIT);
        ThreadCpu io = ThreadCpu.of(loop);
        worker.setLinkUp(false);
        guest.postReceiveBuffers(0, 16);
        io.assertSleeps("link down over a port with no backlog");
        assertNull(guest.pollReceived(0), "no carrier, no frames");
        worker.setLinkUp(true);
        assertNotNull(guest.awaitReceived(0, MOVE_MILLIS), "link up: the posted buffers are filled");
    }

    @Test
    void theLoopThreadAllocatesNothingPerFrameInSteadyState() throws Exception {
        DriverQueuePairs guest = guest(RingLayout.SPLIT);
        long thread = threadId(loop);
        AllocatedBytes allocated = new AllocatedBytes();
        rounds(guest, thread, allocated, 200, 20); // warm up: classes load, the JIT compiles the path
        long[] small = rounds(guest, thread, allocated, 20, 15);
        long[] large = rounds(guest, thread, allocated, 200, 15);
        // each round wakes the loop a few times the same way whatever its size (kicks, epoll); per frame there must be nothing:
        // 180 more frames each way must not add even one byte per frame
        long perWakeups = median(small);
        long growth = median(large) - perWakeups;
        System.out.printf("loop thread bytes per round: 40 frames %s, 400 frames %s%n", Arrays.toString(small), Arrays.toString(large));
        assertTrue(growth < 360, "400 frames a round allocate " + growth + " bytes more than 40 frames (" + Arrays.toString(large)
                + " vs " + Arrays.toString(small) + "): the data path allocates per frame");
        assertEquals(20L * 200 + 15 * 20 + 15 * 200, port.stats().txFrames());
        assertEquals(port.stats().txFrames(), port.stats().rxFrames());
    }

    /** Rounds of {@code frames} transmitted and {@code frames} received; the loop thread's bytes allocated in each. */
    private static long[] rounds(DriverQueuePairs guest, long thread, AllocatedBytes allocated, int frames, int rounds)
            throws InterruptedException {
        byte[] frame = NumberedFrames.frame(0);
        long[] perRound = new long[rounds];
        for (int round = 0; round < rounds; round++) {
            // no executeAndWait inside the measured window: the loop thread runs that task, and it allocates
            Thread.sleep(20);
            long before = allocated.of(thread);
            for (int i = 0; i < frames; i++) {
                guest.queueTransmit(0, frame);
            }
            guest.publishTransmit(0);
            guest.postReceiveBuffers(0, frames);
            assertEquals(frames, guest.awaitTransmitted(0, frames, MOVE_MILLIS));
            for (int i = 0; i < frames; i++) {
                assertNotNull(guest.awaitReceived(0, MOVE_MILLIS));
            }
            Thread.sleep(20); // the engine is back asleep
            perRound[round] = allocated.of(thread) - before;
        }
        return perRound;
    }

    private static long median(long[] values) {
        long[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }

    private static long threadId(EventLoop loop) {
        long[] id = new long[1];
        loop.executeAndWait(() -> id[0] = Thread.currentThread().threadId());
        return id[0];
    }
}
