package io.vmm4j.vhost.engine;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.VirtioNetHeader;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;


import static io.vmm4j.virtio.VirtioFeatures.bit;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Receive buffers that cannot take the frame at hand, posted to the queue-pair engine as the VMM's
 * emulated data plane runs it (the vhost-user daemon runs the same engine): each case ends in a wait
 * for the driver's next kick, a counted drop or a ring error, and never in a spinning I/O thread or
 * a stop() that hangs.
 */
class ReceiveBufferShortageTest {
    private static final long MERGEABLE = bit(VirtioFeatures.VERSION_1) | bit(NetFeatures.MRG_RXBUF);

    private MemoryPort[] ports;
    private RingGuest guest;
    private EventLoop loop;
    private ThreadCpu ioCpu;
    private QueuePairWorker worker;
    private boolean stopped;

    private void start(int queueSize, boolean eventIdx, long acked) {
        ports = MemoryPort.pair(1, TapDevice.VNET_HEADER_V1_SIZE);
        guest = new RingGuest(queueSize, eventIdx);
        loop = new EventLoop("net-io-0");
        ioCpu = ThreadCpu.of(loop);
        // what EmulatedNetBackend does for each pair at DRIVER_OK
        worker = new QueuePairWorker(0, loop, ports[0],
                QueuePairWorker.Queues.from(guest.activation(eventIdx ? acked | bit(VirtioFeatures.EVENT_IDX) : acked), 0));
        worker.start();
    }

    @AfterEach
    void tearDown() throws InterruptedException {
        if (worker != null && !stopped && !stopWithin(2_000)) {
            return; // a handler never returned: leave its thread and memory alone rather than hang here too
        }
        if (worker != null) {
            worker.release();
        }
        if (loop != null) {
            loop.close();
        }
        if (guest != null) {
            guest.close();
        }
        if (ports != null) {
            ports[0].close();
            ports[1].close();
        }
    }

    static byte[] frame(int length, int seed) {
        byte[] f = new byte[length];
        for (int i = 0; i < length; i++) {
            f[i] = (byte) (seed * 31 + i);
        }
        return f;
    }

    private void sendFromHost(byte[] frame) {
        byte[] b = new byte[VirtioNetHeader.SIZE + frame.length];
        System.arraycopy(frame, 0, b, VirtioNetHeader.SIZE, frame.length);
        ports[1].send(0, b);
    }

    private void assertIoThreadSleeps(String why) throws InterruptedException {
        Thread.sleep(200); // let the engine read the frame and reach its decision
        ioCpu.assertSleeps(why);
    }

    /** stop() (what GET_VRING_BASE and a backend switch call) returns at once, not behind a busy handler. */
    private void assertStopReturnsPromptly() throws InterruptedException {
        assertTrue(stopWithin(2_000), "stop() did not return within 2 s: it waits behind a handler that never returns");
    }

    private boolean stopWithin(long millis) throws InterruptedException {
        Thread stopper = Thread.ofPlatform().daemon().name("stopper").start(worker::stop);
        stopper.join(millis);
        stopped = !stopper.isAlive();
        return stopped;
    }

    @ParameterizedTest(name = "EVENT_IDX {0}")
    @ValueSource(booleans = {true, false})
    void aFrameLargerThanThePostedBuffersWaitsWithoutSpinningAndArrivesOnceTheDriverPostsEnough(boolean eventIdx) throws Exception {
        start(256, eventIdx, MERGEABLE);
        guest.postReceiveBuffers(1, 16); // legal with MRG_RXBUF (at least the 12-byte header, §5.1.6.3.1), but one is not enough
        byte[] in = frame(1000, 1);
        sendFromHost(in);
        assertIoThreadSleeps("one 16-byte buffer for a 1012-byte frame");
        assertEquals(0, guest.rxUsedIdx(), "nothing is used while the frame does not fit");

        // more, still not enough: the engine looks at them when kicked and sleeps again
        guest.postReceiveBuffers(30, 16);
        assertIoThreadSleeps("31 buffers of 16 bytes for a 1012-byte frame");
        assertEquals(0, guest.rxUsedIdx());

        // enough: the kick for these must come (avail_event past the buffers it gave back, §2.7.10) and the frame lands
        guest.postReceiveBuffers(40, 16);
        RingGuest.Frame got = guest.awaitFrame(2_000);
        assertNotNull(got, "the frame arrives once 71 buffers of 16 bytes are posted: the driver's kick was not lost");
        assertArrayEquals(in, got.bytes());
        assertEquals((1012 + 15) / 16, got.numBuffers(), "spread over as many 16-byte buffers as it fills (§5.1.6.4)");
        assertEquals(0, guest.rxCounters().dropsNoBuffer);
        assertTrue(guest.deviceErrors.isEmpty(), guest.deviceErrors.toString());
        assertStopReturnsPromptly();
    }

    @Test
    void stoppingWhileAFrameWaitsForBuffersReturnsAndCountsTheFrameAsDropped() throws Exception {
        start(256, true, MERGEABLE);
        guest.postReceiveBuffers(1, 16);
        sendFromHost(frame(1000, 2));
        assertIoThreadSleeps("one 16-byte buffer for a 1012-byte frame");
        assertStopReturnsPromptly();
        assertEquals(1, guest.rxCounters().dropsNoBuffer, "the frame nobody could deliver is counted");
        assertEquals(0, guest.rxUsedIdx());
    }

    @Test
    void aReadOnlyReceiveBufferIsARingError() throws Exception {
        start(256, true, MERGEABLE);
        guest.addReceiveBuffer(2048, false); // §2.7.5.1: the device must not write into it
        guest.publishReceiveBuffers();
        sendFromHost(frame(100, 3));
        assertIoThreadSleeps("a device-readable receive buffer");
        assertEquals(1, guest.deviceErrors.size(), "DEVICE_NEEDS_RESET through the device error path: " + guest.deviceErrors);
        String error = guest.deviceErrors.getFirst();
        assertTrue(error.startsWith("receiveq1: ") && error.contains("device-readable") && error.contains("§2.7.5.1"), error);
        assertEquals(0, guest.rxUsedIdx(), "nothing written into the ring");
        assertStopReturnsPromptly();
    }

    @Test
    void aMergeableBufferShorterThanTheHeaderIsARingError() throws Exception {
        start(256, true, MERGEABLE);
        guest.postReceiveBuffers(4, 8);
        sendFromHost(frame(100, 4));
        assertIoThreadSleeps("8-byte receive buffers");
        assertEquals(1, guest.deviceErrors.size(), guest.deviceErrors.toString());
        String error = guest.deviceErrors.getFirst();
        assertTrue(error.startsWith("receiveq1: ") && error.contains("holds 8 bytes") && error.contains("§5.1.6.3.1"), error);
        assertStopReturnsPromptly();
    }

    @ParameterizedTest(name = "EVENT_IDX {0}")
    @ValueSource(booleans = {true, false})
    void aFrameNoRingFullOfBuffersCanHoldIsDroppedAndCountedAndTheNextOneArrives(boolean eventIdx) throws Exception {
        start(8, eventIdx, MERGEABLE);
        guest.postReceiveBuffers(8, 16); // the whole ring: 128 bytes
        sendFromHost(frame(1000, 5));
        byte[] small = frame(60, 6);
        sendFromHost(small);
        RingGuest.Frame got = guest.awaitFrame(2_000);
        assertNotNull(got, "the frame after the one that can never fit arrives");
        assertArrayEquals(small, got.bytes());
        assertEquals((72 + 15) / 16, got.numBuffers());
        assertEquals(1, guest.rxCounters().dropsNoBuffer, "the 1012-byte frame is dropped and counted");
        assertEquals(1, guest.rxCounters().packets);
        assertIoThreadSleeps("after the drop");
        assertTrue(guest.deviceErrors.isEmpty(), guest.deviceErrors.toString());
        assertStopReturnsPromptly();
    }

    @Test
    void withoutMergeableBuffersAFrameLargerThanTheBufferIsDroppedAndCounted() throws Exception {
        start(8, true, bit(VirtioFeatures.VERSION_1));
        guest.postReceiveBuffers(1, 100); // §5.1.6.3.1 says SHOULD be 1526 bytes: legal, but too small for this frame
        sendFromHost(frame(1000, 7));
        byte[] small = frame(60, 8);
        sendFromHost(small);
        RingGuest.Frame got = guest.awaitFrame(2_000);
        assertNotNull(got);
        assertArrayEquals(small, got.bytes());
        assertEquals(1, got.numBuffers());
        assertEquals(1, guest.rxCounters().dropsNoBuffer);
        assertIoThreadSleeps("after the drop");
        assertNull(guest.pollFrame(false));
        assertStopReturnsPromptly();
    }
}
