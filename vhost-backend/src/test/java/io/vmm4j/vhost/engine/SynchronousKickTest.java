package io.vmm4j.vhost.engine;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.DriverQueuePairs;
import io.vmm4j.vhost.NumberedFrames;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.queue.RingLayout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static io.vmm4j.virtio.VirtioFeatures.bit;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The engine as {@code --backend emulated-sync} runs it: a kick runs the device's handler on the
 * kicking (vCPU) thread, so the guest's transmits are served there while frames from the port are
 * served on the pair's I/O thread, both at once. Every frame must arrive whole, once and in order
 * in both directions: the two directions share no buffer the other can overwrite.
 */
class SynchronousKickTest {
    private static final int FRAMES = 30_000;
    private static final long BOUND_MILLIS = 60_000;
    private static final int RECEIVE_BUFFERS = 128;

    @ParameterizedTest(name = "{0} rings")
    @EnumSource(RingLayout.class)
    void transmitOnTheKickingThreadAndReceiveOnTheIoThreadAtOnceLoseAndMixNothing(RingLayout layout) throws Exception {
        long acked = bit(VirtioFeatures.VERSION_1) | bit(NetFeatures.MRG_RXBUF) | bit(VirtioFeatures.EVENT_IDX)
                | (layout == RingLayout.PACKED ? bit(VirtioFeatures.RING_PACKED) : 0);
        MemoryPort[] ports = MemoryPort.pair(1, TapDevice.VNET_HEADER_V1_SIZE);
        try (DriverQueuePairs guest = new DriverQueuePairs(1, true, layout, true); EventLoop loop = new EventLoop("net-io-0")) {
            QueuePairWorker worker = new QueuePairWorker(0, loop, ports[0], QueuePairWorker.Queues.from(guest.activation(acked, 1), 0));
            guest.postReceiveBuffers(0, RECEIVE_BUFFERS);
            worker.start();
            AtomicReference<Throwable> hostFailure = new AtomicReference<>();
            Thread host = Thread.ofPlatform().daemon().name("host-sender").start(() -> {
                try {
                    for (int n = 0; n < FRAMES; n++) {
                        NumberedFrames.sendWhenRoom(ports[1], 0, NumberedFrames.withHeader(NumberedFrames.frame(n)));
                    }
                } catch (Throwable t) {
                    hostFailure.set(t);
                }
            });
            List<Integer> guestGot = new ArrayList<>();
            List<Integer> hostGot = new ArrayList<>();
            byte[] buf = new byte[4096];
            int transmitted = 0;
            int inFlight = 0;
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(BOUND_MILLIS);
            try {
                while ((guestGot.size() < FRAMES || hostGot.size() < FRAMES) && System.nanoTime() < deadline
                        && hostFailure.get() == null) {
                    inFlight -= guest.reclaimTransmitted(0);
                    if (transmitted < FRAMES && inFlight < DriverQueuePairs.QUEUE_SIZE) {
                        guest.transmit(0, NumberedFrames.frame(transmitted++)); // the kick serves it right here
                        inFlight++;
                    }
                    byte[] f;
                    int taken = 0;
                    while ((f = guest.pollReceived(0)) != null) {
                        guestGot.add(NumberedFrames.number(f));
                        taken++;
                    }
                    if (taken > 0) {
                        guest.postReceiveBuffers(0, taken); // and so does this one, while the I/O thread reads the port
                    }
                    int n;
                    while ((n = ports[1].receive(0, buf)) > TapDevice.VNET_HEADER_V1_SIZE) {
                        hostGot.add(NumberedFrames.number(java.util.Arrays.copyOfRange(buf, TapDevice.VNET_HEADER_V1_SIZE, n)));
                    }
                }
            } finally {
                worker.stop();
                worker.release();
                host.join(BOUND_MILLIS);
            }
            assertEquals(null, hostFailure.get(), "the host sender failed");
            assertEquals(List.of(), guest.deviceErrors(), "no ring error");
            assertInOrder("the guest received", guestGot);
            assertInOrder("the host received", hostGot);
            assertEquals(0, guest.counters(0).portErrors + guest.counters(1).portErrors, guest.counters(0) + " " + guest.counters(1));
        } finally {
            ports[0].close();
            ports[1].close();
        }
    }

    /** Frames 0..FRAMES-1, each once, in order; a frame another direction's buffer overwrote shows as the wrong number. */
    private static void assertInOrder(String who, List<Integer> got) {
        for (int i = 0; i < got.size(); i++) {
            if (got.get(i) != i) {
                throw new AssertionError(who + " frame " + got.get(i) + " where frame " + i + " was due (" + got.size()
                        + " frames in all; -1: not a numbered frame, i.e. bytes of another buffer)");
            }
        }
        assertEquals(FRAMES, got.size(), who + " " + got.size() + " of " + FRAMES + " frames");
    }
}
