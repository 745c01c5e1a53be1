package io.vmm4j.vhost.user;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.QueuePositions;
import io.vmm4j.virtio.net.VirtioNetHeader;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;

import static io.vmm4j.virtio.VirtioFeatures.bit;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Guest memory on an unsealed memfd, as DPDK's virtio_user sends it: the daemon serves it, and when
 * the front-end shrinks the file under traffic, the daemon's next access to the lost pages faults
 * (HotSpot: InternalError on the net-io thread). That ends this front-end's session with a log line
 * naming the region, and nothing else: every daemon thread lives, no descriptor stays open, and the
 * next front-end is served.
 */
class VhostUserShrunkMemoryTest {
    private static final long ACKED = bit(VirtioFeatures.VERSION_1) | bit(NetFeatures.MRG_RXBUF) | bit(VirtioFeatures.EVENT_IDX);
    private static final int POOL = TestGuest.QUEUE_SIZE;
    private static final int FRAME = 200;

    /** The guest side of the traffic: keeps the transmit ring full from a fixed pool of buffers and drains the wire. */
    private static final class TxPump implements Runnable {
        final TestGuest guest;
        final MemoryPort wire;
        final long[] pool = new long[POOL];
        final AtomicLong received = new AtomicLong();
        final AtomicReference<Throwable> ended = new AtomicReference<>();
        volatile boolean stop;

        TxPump(TestGuest guest, MemoryPort wire) {
            this.guest = guest;
            this.wire = wire;
            byte[] frame = VhostUserRoundTripTest.frame(FRAME, 9);
            for (int i = 0; i < POOL; i++) {
                pool[i] = guest.buffers.allocate(TestGuest.BUFFER, 16);
                guest.memory.fill(pool[i], VirtioNetHeader.SIZE, (byte) 0);
                guest.memory.write(pool[i] + VirtioNetHeader.SIZE, frame, 0, frame.length);
            }
        }

        @Override
        public void run() {
            byte[] buf = new byte[65536];
            long sent = 0;
            try {
                while (!stop) {
                    while (guest.tx.pollUsed() != null) {
                        // chains come back in order: the buffer of the oldest one is free again
                    }
                    while (guest.tx.freeDescriptors() > 0) {
                        // at most POOL chains are in flight, so pool[sent % POOL] is no longer in one
                        guest.tx.add(new long[] {pool[(int) (sent++ % POOL)]}, new int[] {VirtioNetHeader.SIZE + FRAME}, 1);
                    }
                    guest.tx.publish();
                    if (guest.tx.needsKick()) {
                        guest.txKick.signal();
                    }
                    boolean any = false;
                    while (LibC.pollOne(wire.fd(0), LibC.POLLIN, 0) > 0) {
                        wire.receive(0, buf);
                        received.incrementAndGet();
                        any = true;
                    }
                    if (!any) {
                        guest.txCall.await(5);
                    }
                }
                ended.set(new AssertionError("stopped"));
            } catch (Throwable t) {
                ended.set(t); // after the shrink the guest's own accesses fault too
            }
        }
    }

    private static long openFds() throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count();
        }
    }

    private static Set<String> daemonThreads() {
        Set<String> names = new TreeSet<>();
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.isAlive() && (t.getName().startsWith("net-io") || t.getName().startsWith("vhost-user") || t.getName().startsWith("vu-"))) {
                names.add(t.getName());
            }
        }
        return names;
    }

    @Test
    void anUnsealedMemfdCarriesTrafficAndShrinkingItUnderTrafficEndsOnlyThatSession() throws Exception {
        // the front-end cuts its memory file down to one page (the rings and buffers lie beyond it)
        shrinkUnderTraffic(4096, "memory region 0", "which now has 0x1000");
    }

    @Test
    void shrinkingOnlyThePagesOfThePacketBuffersEndsTheSessionToo() throws Exception {
        // the rings (file offset 0) stay, the buffers (file offset 8 MiB) go: the tap's writev gets EFAULT, not a signal
        shrinkUnderTraffic(TestGuest.LOW_FD_OFFSET, "memory region 0", "which now has 0x800000");
    }

    private void shrinkUnderTraffic(long newSize, String region, String fileSize) throws Exception {
        try (DaemonOnThread d = new DaemonOnThread(1, 2_000);
             EventLoop watch = new EventLoop("vu-watch")) {
            // a first, clean front-end: what a session leaves behind by design (the net-io-0 loop) exists before the baseline
            exchangeFramesBothWays(d, watch, true);
            d.awaitSessionsEnded(1, 5_000);
            long fdsBefore = openFds();
            Set<String> threadsBefore = daemonThreads();
            assertTrue(threadsBefore.contains("net-io-0"), threadsBefore.toString());

            TestGuest guest = new TestGuest(true, false);
            VhostUserNetBackend backend = new VhostUserNetBackend(d.socket(), watch);
            TxPump pump = new TxPump(guest, d.wire());
            Thread pumpThread = Thread.ofPlatform().name("guest-tx").start(pump);
            try {
                backend.start(guest.activation(ACKED, QueuePositions.zero(2)));
                long deadline = System.currentTimeMillis() + 10_000;
                while (pump.received.get() < 2_000) {
                    assertTrue(System.currentTimeMillis() < deadline, "traffic over the unsealed memfd: " + pump.received
                            + " frames in 10 s; daemon log:\n" + d.log());
                    Thread.sleep(10);
                }
                assertTrue(d.log().contains("memory table 2 region(s)"), "the unsealed memfd was mapped:\n" + d.log());

                LibC.ftruncate(guest.memfd(), newSize); // under traffic
                guest.txKick.signal(); // in case the engine was idle: its next look at the ring touches the lost pages
                d.awaitSessionsEnded(2, 5_000);
            } finally {
                pump.stop = true;
                pumpThread.join(5_000);
            }
            String line = d.log().lines().filter(l -> l.contains("front-end 2: the front-end shrank its memory file")).findFirst()
                    .orElseThrow(() -> new AssertionError("no log line says the front-end shrank its memory; log:\n" + d.log()));
            System.out.println("daemon: " + line);
            assertTrue(line.contains(region) && line.contains(fileSize), line);
            assertTrue(line.contains("queue pair 0") && line.contains("closing the connection"), line);
            String end = d.daemon().stats().sessions().get(1).end();
            assertTrue(end.contains("shrank its memory file"), "the session's end reason: " + end);
            assertTrue(d.alive(), "the daemon thread lives");
            assertTrue(daemonThreads().contains("net-io-0"), "the engine's loop thread lives: " + daemonThreads());

            // the front-end grows the file back so that its own side can stop reading its rings, then goes
            LibC.ftruncate(guest.memfd(), TestGuest.LOW_FD_OFFSET + TestGuest.LOW_SIZE);
            backend.close();
            guest.close();
            assertEquals(fdsBefore, openFds(), "every descriptor of the failed session is closed (memfd, eventfds, socket)");
            assertEquals(threadsBefore, daemonThreads(), "no thread died or was left behind");

            // the next front-end is served, both ways (once the frames the pump's session left on the wire are read)
            while (VhostUserRoundTripTest.readWire(d.wire(), 0) != null) {
                pump.received.incrementAndGet();
            }
            exchangeFramesBothWays(d, watch, false);
            d.awaitSessionsEnded(3, 5_000);
            assertEquals("the front-end closed the connection", d.daemon().stats().sessions().get(2).end());
            assertFalse(d.log().contains("front-end 3: the front-end shrank"), d.log());
            assertEquals(fdsBefore, openFds(), "and that session, too, leaves no descriptor behind");
        }
    }

    /** One front-end session that moves a frame each way. */
    private static void exchangeFramesBothWays(DaemonOnThread d, EventLoop watch, boolean sealed) {
        try (TestGuest guest = new TestGuest(true, sealed);
             VhostUserNetBackend backend = new VhostUserNetBackend(d.socket(), watch)) {
            backend.start(guest.activation(ACKED, QueuePositions.zero(2)));
            byte[] out = VhostUserRoundTripTest.frame(120, 3);
            guest.transmit(out);
            assertArrayEquals(out, VhostUserRoundTripTest.readWire(d.wire(), 2_000), "guest -> daemon -> wire");
            guest.postReceiveBuffers(4);
            byte[] in = VhostUserRoundTripTest.frame(90, 4);
            d.wire().send(0, VhostUserRoundTripTest.withHeader(in));
            assertArrayEquals(in, guest.awaitReceived(2_000), "wire -> daemon -> guest");
        }
    }
}
