package io.vmm4j.vhost.engine;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.NumberedFrames;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.NetQueueCounters;
import io.vmm4j.virtio.net.VirtioNetHeader;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static io.vmm4j.virtio.VirtioFeatures.bit;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The receive row of {@code ./vmm compare} as a stress test of the engine: the host floods frames
 * into the port with a bounded window, the guest counts them and recycles few receive buffers, so
 * the ring runs dry again and again and frames wait in the port (edge-triggered readiness: only a
 * kick re-reads it) or half-read for more buffers. Hundreds of short rounds; a round that does not
 * complete in a generous bound is a lost wake-up, and so is a frame the guest finds only after
 * waiting for an interrupt that never came.
 */
class ReceiveWindowStressTest {
    private static final int ROUNDS = 600;
    private static final int FRAMES_PER_ROUND = 64;
    private static final int WINDOW = 32;
    private static final long ROUND_BOUND_MILLIS = 5_000;

    @ParameterizedTest(name = "EVENT_IDX {0}, MRG_RXBUF {1}, {2} buffers of {3} bytes in a ring of {4}")
    @CsvSource({
            "true, true, 16, 512, 16",     // frames over 500 bytes span buffers and often wait half-read for more
            "false, true, 16, 512, 16",
            "true, true, 8, 2048, 256",    // the comparison's guest, with its ring nearly empty
            "false, false, 4, 1526, 8",
    })
    void everyRoundOfABoundedWindowFloodCompletesWithoutALostWakeUp(boolean eventIdx, boolean mergeable, int buffers, int bufferSize,
                                                                    int ringSize) throws Exception {
        long acked = bit(VirtioFeatures.VERSION_1) | (mergeable ? bit(NetFeatures.MRG_RXBUF) : 0)
                | (eventIdx ? bit(VirtioFeatures.EVENT_IDX) : 0);
        MemoryPort[] ports = MemoryPort.pair(1, TapDevice.VNET_HEADER_V1_SIZE);
        try (RingGuest guest = new RingGuest(ringSize, eventIdx); EventLoop loop = new EventLoop("net-io-0")) {
            QueuePairWorker worker = new QueuePairWorker(0, loop, ports[0], QueuePairWorker.Queues.from(guest.activation(acked), 0));
            guest.postReceiveBuffers(buffers, bufferSize);
            worker.start();
            Semaphore window = new Semaphore(WINDOW);
            AtomicLong sent = new AtomicLong();
            AtomicReference<Throwable> hostFailure = new AtomicReference<>();
            Thread host = Thread.ofPlatform().daemon().name("host-flood").start(() -> {
                SplittableRandom random = new SplittableRandom(42);
                try {
                    for (int seq = 0; seq < ROUNDS * FRAMES_PER_ROUND; seq++) {
                        if (!window.tryAcquire(ROUND_BOUND_MILLIS, TimeUnit.MILLISECONDS)) {
                            return; // the guest stalled; it reports
                        }
                        NumberedFrames.sendWhenRoom(ports[1], 0, frame(60 + random.nextInt(1455), seq));
                        sent.incrementAndGet();
                    }
                } catch (Throwable t) {
                    hostFailure.set(t);
                }
            });
            SplittableRandom pause = new SplittableRandom(7);
            int received = 0;
            try {
                for (int round = 0; round < ROUNDS; round++) {
                    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ROUND_BOUND_MILLIS);
                    int target = (round + 1) * FRAMES_PER_ROUND;
                    boolean waited = false;
                    while (received < target) {
                        RingGuest.Frame f = guest.pollFrame(true);
                        if (f == null) {
                            guest.publishReceiveBuffers(); // recycled buffers go back, with a kick if the device asks
                            if (hostFailure.get() != null) {
                                throw new AssertionError("the host side failed", hostFailure.get());
                            }
                            long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                            if (left <= 0) {
                                fail(String.format("round %d stalled: %d of %d frames received after %d ms, %d sent; %s; rx ring: %s;"
                                                + " device next avail %d, used %d", round, received, target, ROUND_BOUND_MILLIS,
                                        sent.get(), guest.rxCounters(), guest.rx, worker.rxNextAvail(), worker.rxNextUsed()));
                            }
                            waited = guest.rxCall.await((int) left) == 0;
                            continue;
                        }
                        if (waited) {
                            fail(String.format("frame %d was in the used ring but its interrupt never came (round %d); %s", received,
                                    round, guest.rxCounters()));
                        }
                        assertFrame(f.bytes(), received);
                        received++;
                        window.release();
                        if (pause.nextInt(8) == 0) {
                            guest.publishReceiveBuffers();
                        }
                    }
                    if (pause.nextInt(4) == 0) {
                        Thread.sleep(0, 200_000); // the guest is late now and then: the ring runs dry, frames wait in the port
                    }
                }
            } finally {
                worker.stop();
                worker.release();
                host.join(ROUND_BOUND_MILLIS);
            }
            NetQueueCounters rx = guest.rxCounters();
            assertEquals(ROUNDS * FRAMES_PER_ROUND, rx.packets, "every frame came in once: " + rx);
            assertEquals(0, rx.dropsNoBuffer, rx.toString());
            assertEquals(0, rx.portErrors, rx.toString());
        } finally {
            ports[0].close();
            ports[1].close();
        }
    }

    /** A frame with its sequence number in the first four bytes and a pattern after. */
    private static byte[] frame(int length, int seq) {
        byte[] b = new byte[VirtioNetHeader.SIZE + length];
        ByteBuffer.wrap(b, VirtioNetHeader.SIZE, 4).putInt(seq);
        for (int i = 4; i < length; i++) {
            b[VirtioNetHeader.SIZE + i] = (byte) (seq + i);
        }
        return b;
    }

    private static void assertFrame(byte[] frame, int expectedSeq) {
        int seq = ByteBuffer.wrap(frame, 0, 4).getInt();
        assertEquals(expectedSeq, seq, "frames arrive whole and in order");
        for (int i = 4; i < frame.length; i++) {
            if (frame[i] != (byte) (seq + i)) {
                fail("frame " + seq + " (" + frame.length + " bytes) differs at byte " + i);
            }
        }
    }
}
