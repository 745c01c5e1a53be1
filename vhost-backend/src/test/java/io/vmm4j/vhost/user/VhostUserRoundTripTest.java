package io.vmm4j.vhost.user;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.NetQueueCounters;
import io.vmm4j.virtio.net.QueuePositions;
import io.vmm4j.virtio.net.VirtioNetHeader;
import io.vmm4j.virtio.queue.SplitRing;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static io.vmm4j.virtio.VirtioFeatures.bit;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The vhost-user front-end and the back-end daemon in one JVM, over a real UNIX socket with real
 * descriptor passing (two memory regions sharing one memfd, kick/call/err eventfds): frames go both
 * ways, GET_VRING_BASE stops the rings and a second start resumes them where they stood, and the
 * front-end hears about a back-end that goes away.
 */
class VhostUserRoundTripTest {
    private static final long ACKED = bit(VirtioFeatures.VERSION_1) | bit(NetFeatures.MRG_RXBUF) | bit(VirtioFeatures.EVENT_IDX)
            | bit(VirtioFeatures.INDIRECT_DESC) | bit(NetFeatures.CTRL_VQ) | bit(NetFeatures.STATUS);

    static byte[] frame(int length, int seed) {
        byte[] f = new byte[length];
        for (int i = 0; i < length; i++) {
            f[i] = (byte) (seed * 31 + i);
        }
        return f;
    }

    static byte[] withHeader(byte[] frame) {
        byte[] b = new byte[VirtioNetHeader.SIZE + frame.length];
        System.arraycopy(frame, 0, b, VirtioNetHeader.SIZE, frame.length);
        return b;
    }

    /** The next frame the daemon wrote to the port, header stripped, or null after {@code millis}. */
    static byte[] readWire(MemoryPort wire, int millis) {
        if (LibC.pollOne(wire.fd(0), LibC.POLLIN, millis) == 0) {
            return null;
        }
        byte[] buf = new byte[65536];
        int n = wire.receive(0, buf);
        assertTrue(n >= VirtioNetHeader.SIZE, "a frame on the wire starts with a 12-byte header, got " + n + " bytes");
        return Arrays.copyOfRange(buf, VirtioNetHeader.SIZE, n);
    }

    @Test
    void framesCrossBothWaysAndGetVringBaseStopsTheRingsUntilTheyResume() throws Exception {
        try (DaemonOnThread d = new DaemonOnThread(1, 2_000);
             EventLoop watch = new EventLoop("vu-watch");
             TestGuest guest = new TestGuest(true)) {
            VhostUserNetBackend backend = new VhostUserNetBackend(d.socket(), watch);
            try {
                // what the device may offer is known before the guest negotiates
                long supported = backend.supportedFeatures();
                assertTrue(VirtioFeatures.has(supported, VirtioFeatures.VERSION_1));
                assertTrue(VirtioFeatures.has(supported, NetFeatures.MRG_RXBUF));
                assertTrue(VirtioFeatures.has(supported, NetFeatures.MTU));
                assertTrue(VirtioFeatures.has(supported, NetFeatures.CTRL_VQ), "the control plane stays in the VMM");
                assertFalse(VirtioFeatures.has(supported, NetFeatures.CSUM), "an in-memory port carries no offloads");
                assertFalse(VirtioFeatures.has(supported, NetFeatures.CTRL_GUEST_OFFLOADS));
                assertFalse(VirtioFeatures.has(supported, VhostUserProtocol.F_PROTOCOL_FEATURES));
                assertEquals(VhostUserNetBackend.WANTED_PROTOCOL_FEATURES, backend.protocolFeatures());
                assertEquals(1, backend.maxQueuePairs());

                backend.start(guest.activation(ACKED, QueuePositions.zero(2)));
                byte[] out = frame(100, 1);
                guest.transmit(out);
                assertArrayEquals(out, readWire(d.wire(), 2_000), "guest -> daemon -> wire");
                assertEquals(1, guest.awaitTransmitted(1, 2_000), "the transmit chain came back (call eventfd)");

                guest.postReceiveBuffers(8);
                byte[] in = frame(300, 2);
                d.wire().send(0, withHeader(in));
                assertArrayEquals(in, guest.awaitReceived(2_000), "wire -> daemon -> guest");

                QueuePositions where = backend.stop();
                assertEquals(1, where.nextAvail(0));
                assertEquals(1, where.nextUsed(0));
                assertEquals(1, where.nextAvail(1));
                assertEquals(1, where.nextUsed(1));

                // stopped means stopped: nothing moves until the rings start again
                byte[] pendingOut = frame(60, 3);
                guest.transmit(pendingOut);
                guest.txKick.signal();
                byte[] pendingIn = frame(70, 4);
                d.wire().send(0, withHeader(pendingIn));
                assertNull(readWire(d.wire(), 300), "a stopped transmit ring is not served");
                assertNull(guest.awaitReceived(300), "a stopped receive ring is not filled");
                assertEquals(1, SplitRing.usedIdx(guest.memory, guest.tx.usedRing()));

                backend.start(guest.activation(ACKED, where));
                assertArrayEquals(pendingOut, readWire(d.wire(), 2_000), "resumed at avail 1: the frame left in the ring goes out");
                assertArrayEquals(pendingIn, guest.awaitReceived(2_000), "the frame that waited in the port comes in");
                assertEquals(1, guest.awaitTransmitted(1, 2_000));

                for (NetQueueCounters c : guest.vmmCounters) {
                    assertEquals(0, c.packets + c.kicks + c.interrupts, "no VMM thread served " + c + ": the data plane is the daemon");
                }
                VhostUserNetDaemon.Stats stats = d.daemon().stats();
                assertEquals(2, stats.queues().get(0).packets(), "daemon rx0: " + stats);
                assertEquals(2, stats.queues().get(1).packets(), "daemon tx0: " + stats);
                assertTrue(d.log().contains("memory table 2 region(s)"), d.log());
                assertTrue(d.log().contains("features acked"), d.log());
            } finally {
                backend.close();
            }
            d.awaitSessionsEnded(1, 2_000);
            assertTrue(d.log().contains("front-end 1 disconnected"), d.log());
            assertTrue(d.log().contains("queue tx0: packets 2"), d.log());
            // the daemon outlives its front-end and takes the next one
            VhostUserNetBackend second = new VhostUserNetBackend(d.socket(), watch);
            assertEquals(backend.backendFeatures(), second.backendFeatures());
            second.close();
            assertTrue(guest.deviceErrors.isEmpty(), guest.deviceErrors.toString());
        }
    }

    @Test
    void aBrokenRingInTheDaemonBecomesADeviceErrorInTheVmm() throws Exception {
        try (DaemonOnThread d = new DaemonOnThread(1, 2_000);
             EventLoop watch = new EventLoop("vu-watch");
             TestGuest guest = new TestGuest(false);
             VhostUserNetBackend backend = new VhostUserNetBackend(d.socket(), watch)) {
            backend.start(guest.activation(bit(VirtioFeatures.VERSION_1), QueuePositions.zero(2)));
            // a descriptor pointing far outside guest memory (guest-physical 64 GiB)
            guest.tx.writeDescriptor(0, 0x10_0000_0000L, 64, 0, 0);
            guest.tx.pushAvail(0);
            guest.tx.publish();
            guest.txKick.signal();
            long deadline = System.currentTimeMillis() + 2_000;
            while (guest.deviceErrors.isEmpty() && System.currentTimeMillis() < deadline) {
                Thread.sleep(10);
            }
            assertEquals(1, guest.deviceErrors.size(), "the err eventfd reached the VMM; daemon log:\n" + d.log());
            assertTrue(guest.deviceErrors.getFirst().contains("transmitq1"), guest.deviceErrors.toString());
            assertTrue(d.log().contains("stopped on a ring error: transmitq1"), d.log());
            assertNull(readWire(d.wire(), 100), "nothing of the bad chain reached the wire");
            assertTrue(d.alive());
        }
    }

    @Test
    void aBackendThatGoesAwayIsReportedOnceAndStoppingDoesNotHang() throws Exception {
        try (DaemonOnThread d = new DaemonOnThread(1, 2_000);
             EventLoop watch = new EventLoop("vu-watch");
             TestGuest guest = new TestGuest(true);
             VhostUserNetBackend backend = new VhostUserNetBackend(d.socket(), watch)) {
            CompletableFuture<String> hangup = new CompletableFuture<>();
            backend.onHangup(hangup::complete);
            backend.start(guest.activation(ACKED, QueuePositions.zero(2)));
            guest.transmit(frame(80, 5));
            assertNotNull(readWire(d.wire(), 2_000));
            assertEquals(1, guest.awaitTransmitted(1, 2_000));

            d.daemon().close(5_000);
            String why = hangup.get(2, TimeUnit.SECONDS);
            assertTrue(why.contains(d.socket().toString()) && why.contains("gone"), why);
            assertEquals(why, backend.hangup());

            long t0 = System.nanoTime();
            QueuePositions where = backend.stop();
            assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(1), "stop() with the back-end gone returns at once");
            assertEquals(1, where.nextUsed(1), "the used index the daemon last published");
            assertEquals(1, where.nextAvail(1));
        }
    }
}
