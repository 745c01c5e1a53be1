package io.vmm4j.vhost.user;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.QueuePositions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static io.vmm4j.virtio.VirtioFeatures.bit;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Front-ends that misbehave at the edges of the protocol rather than inside a message: they pass
 * blocking eventfds, fill their own call counter, connect and say nothing, trickle a message byte
 * by byte, never read the replies, or stop reading before the reply comes. The daemon changes none
 * of their descriptors' flags, never hangs on them, closes what it must with a line naming the
 * front-end, and serves the next one.
 */
class VhostUserDaemonPeerTest {
    private static final long ACKED = bit(VirtioFeatures.VERSION_1) | bit(VirtioFeatures.EVENT_IDX);
    /** eventfd(2): the largest value the counter may hold; one more and a write blocks. */
    private static final long FULL_COUNTER = 0xffff_ffff_ffff_fffeL;

    private static int flags(int fd) {
        return LibC.fcntl(fd, LibC.F_GETFL, 0);
    }

    /** Makes the front-end's own eventfd blocking, as a front-end that never asked for O_NONBLOCK has it. */
    private static void makeBlocking(int fd) {
        LibC.fcntl(fd, LibC.F_SETFL, flags(fd) & ~LibC.O_NONBLOCK);
    }

    private static void add(int eventFd, long value) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocate(ValueLayout.JAVA_LONG);
            v.set(ValueLayout.JAVA_LONG, 0, value);
            assertEquals(8, LibC.writeRaw(eventFd, v, 8), "write " + Long.toHexString(value) + " to eventfd " + eventFd);
        }
    }

    private static long read(int eventFd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocate(ValueLayout.JAVA_LONG);
            assertEquals(8, LibC.readRaw(eventFd, v, 8));
            return v.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    private static byte[] header(VhostUserRequest request) {
        return ByteBuffer.allocate(VhostUserProtocol.HEADER_SIZE).order(ByteOrder.nativeOrder()).putInt(request.code())
                .putInt(VhostUserProtocol.VERSION).putInt(0).array();
    }

    private static long openFds() throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count();
        }
    }

    private static void nextFrontendIsServed(DaemonOnThread d) {
        try (RawFrontend next = new RawFrontend(d.socket())) {
            assertEquals(d.daemon().offeredFeatures(), next.get(VhostUserRequest.GET_FEATURES), "the next front-end is served");
        }
    }

    @Test
    void theFrontEndsEventFdsKeepTheirFlagsWhileFramesCrossBothWays() throws Exception {
        try (DaemonOnThread d = new DaemonOnThread(1, 2_000);
             EventLoop watch = new EventLoop("vu-watch");
             TestGuest guest = new TestGuest(true)) {
            int[] fds = {guest.rxKick.fd(), guest.rxCall.fd(), guest.txKick.fd(), guest.txCall.fd()};
            String[] names = {"rx kick", "rx call", "tx kick", "tx call"};
            int[] before = new int[fds.length];
            for (int i = 0; i < fds.length; i++) {
                makeBlocking(fds[i]);
                before[i] = flags(fds[i]);
                assertEquals(0, before[i] & LibC.O_NONBLOCK);
            }
            try (VhostUserNetBackend backend = new VhostUserNetBackend(d.socket(), watch)) {
                backend.start(guest.activation(ACKED, QueuePositions.zero(2)));
                byte[] out = VhostUserRoundTripTest.frame(200, 3);
                guest.transmit(out);
                assertArrayEquals(out, VhostUserRoundTripTest.readWire(d.wire(), 2_000), "the kick on a blocking fd was seen");
                assertEquals(1, guest.awaitTransmitted(1, 2_000), "the call on a blocking fd was signalled");
                guest.postReceiveBuffers(4);
                byte[] in = VhostUserRoundTripTest.frame(120, 4);
                d.wire().send(0, VhostUserRoundTripTest.withHeader(in));
                assertArrayEquals(in, guest.awaitReceived(2_000));
                for (int i = 0; i < fds.length; i++) {
                    // the open file description is shared with the daemon: O_NONBLOCK set there would show here
                    assertEquals(before[i], flags(fds[i]), "the " + names[i] + " eventfd's flags are the front-end's own");
                }
                backend.stop();
            }
            d.awaitSessionsEnded(1, 3_000);
            for (int i = 0; i < fds.length; i++) {
                assertEquals(before[i], flags(fds[i]), "after the session, the " + names[i] + " eventfd's flags are unchanged");
            }
        }
    }

    @Test
    void aCallCounterTheFrontEndFilledUpDoesNotHangTheRingsOrTheirStop() throws Exception {
        try (DaemonOnThread d = new DaemonOnThread(1, 2_000);
             EventLoop watch = new EventLoop("vu-watch");
             TestGuest guest = new TestGuest(true)) {
            makeBlocking(guest.txCall.fd());
            add(guest.txCall.fd(), FULL_COUNTER);
            try (VhostUserNetBackend backend = new VhostUserNetBackend(d.socket(), watch)) {
                backend.start(guest.activation(ACKED, QueuePositions.zero(2)));
                for (int i = 0; i < 3; i++) {
                    byte[] out = VhostUserRoundTripTest.frame(100 + i, i);
                    guest.transmit(out);
                    assertArrayEquals(out, VhostUserRoundTripTest.readWire(d.wire(), 2_000), "frame " + i + " still goes out");
                }
                long t0 = System.nanoTime();
                backend.stop();
                assertTrue(System.nanoTime() - t0 < 3_000_000_000L, "GET_VRING_BASE came back");
            }
            d.awaitSessionsEnded(1, 3_000);
            assertEquals(FULL_COUNTER, read(guest.txCall.fd()), "the counter was left as the front-end filled it");
            nextFrontendIsServed(d);
        }
    }

    @Test
    void aLoopStuckWritingToAFullCallCounterIsFreedWhenItsRingsStop() throws Exception {
        int call = LibC.eventfd(0, LibC.EFD_CLOEXEC); // blocking, like a front-end's
        try {
            Vring ring = new Vring(0);
            ring.callFd = call;
            add(call, FULL_COUNTER);
            // the front-end filled its counter between the loop's poll and its write: the write waits for a reader
            Thread loop = Thread.ofPlatform().name("stuck-loop").start(() -> ring.write(call));
            Thread.sleep(3L * Vring.UNBLOCK_CHECK_MILLIS);
            assertTrue(loop.isAlive(), "a write into a full eventfd counter blocks");
            Vring.unblockingSignals(() -> {
                try {
                    loop.join(5_000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }, ring);
            assertFalse(loop.isAlive(), "waiting for the loop freed it");
            assertEquals(1, read(call), "the front-end still finds the wake-up the loop wrote");
        } finally {
            LibC.closeQuietly(call);
        }
    }

    @Test
    void aSilentPeerIsClosedAfterTheFirstMessageTimeoutAndTheNextFrontendIsServed() throws Exception {
        try (DaemonOnThread d = new DaemonOnThread(new VhostUserNetDaemon.Options(1, false, 300, 500))) {
            try (RawFrontend silent = new RawFrontend(d.socket())) {
                long t0 = System.nanoTime();
                nextFrontendIsServed(d); // RawFrontend waits 3 s for a reply
                long ms = (System.nanoTime() - t0) / 1_000_000;
                assertTrue(ms < 2_500, "served " + ms + " ms after the silent peer connected");
                silent.expectClosed();
            }
            assertTrue(d.log().contains("front-end 1: sent no message within 500 ms of connecting"), d.log());
            assertEquals(1, d.daemon().stats().silentFrontends());
            assertEquals(2, d.daemon().stats().frontends());
        }
    }

    /**
     * Connects without blocking (a full backlog answers EAGAIN), retrying for up to 10 s, so a daemon
     * that never gets to the connection fails the test instead of hanging it.
     */
    private static int silentClient(Path socket) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 10_000;
        while (true) {
            int fd = LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_NONBLOCK | LibC.SOCK_CLOEXEC);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment addr = arena.allocate(LibC.SOCKADDR_UN_SIZE, 2);
                addr.set(ValueLayout.JAVA_SHORT, 0, (short) LibC.AF_UNIX);
                addr.setString(2, socket.toString());
                LibC.connect(fd, addr, "path=" + socket);
                return fd;
            } catch (io.vmm4j.core.linux.LinuxException e) {
                LibC.closeQuietly(fd);
                if (e.errno() != io.vmm4j.core.linux.Errno.EAGAIN || System.currentTimeMillis() > deadline) {
                    throw new AssertionError("could not connect a silent client within 10 s: " + e.getMessage());
                }
                Thread.sleep(20);
            }
        }
    }

    /** The daemon hung up on {@code fd} within {@code millis}: end of stream, nothing sent. */
    private static void assertHungUp(int fd, int millis) {
        assertTrue(LibC.pollOne(fd, LibC.POLLIN, millis) != 0, "the daemon closed the silent connection within " + millis + " ms");
        try (Arena arena = Arena.ofConfined()) {
            assertEquals(0, LibC.readRaw(fd, arena.allocate(16), 16), "end of stream");
        }
    }

    @Test
    void manySilentPeersLeaveNoDescriptorOrThreadBehind() throws Exception {
        try (DaemonOnThread d = new DaemonOnThread(new VhostUserNetDaemon.Options(1, false, 300, 100))) {
            nextFrontendIsServed(d); // everything the daemon keeps is made by now
            d.awaitSessionsEnded(1, 3_000);
            long fdsBefore = openFds();
            int threadsBefore = Thread.getAllStackTraces().size();
            int n = 20;
            List<Integer> silent = new ArrayList<>();
            try {
                for (int i = 0; i < n; i++) {
                    silent.add(silentClient(d.socket())); // more than the backlog of 8: they wait their turn
                }
                for (int fd : silent) {
                    assertHungUp(fd, 3_000);
                }
            } finally {
                silent.forEach(LibC::closeQuietly);
            }
            assertEquals(n, d.daemon().stats().silentFrontends());
            assertEquals(fdsBefore, openFds(), "descriptors open");
            assertEquals(threadsBefore, Thread.getAllStackTraces().size(), "threads alive");
            nextFrontendIsServed(d);
        }
    }

    @Test
    void aPeerTricklingItsFirstHeaderIsClosedWhenTheMessageTimeoutRunsOut() throws Exception {
        try (DaemonOnThread d = new DaemonOnThread(new VhostUserNetDaemon.Options(1, false, 300, 5_000));
             RawFrontend f = new RawFrontend(d.socket())) {
            byte[] header = header(VhostUserRequest.GET_FEATURES);
            try {
                for (byte b : header) {
                    f.channel.sendRaw(new byte[] {b});
                    Thread.sleep(100); // each byte well inside the timeout, the whole header far beyond it
                }
            } catch (RuntimeException closed) {
                // the daemon hung up mid-header: later bytes find no reader
            }
            d.awaitSessionsEnded(1, 3_000);
            String end = d.daemon().stats().sessions().getFirst().end();
            assertTrue(end.contains("arrived within 300 ms of the message's first byte: a truncated header"), end);
            nextFrontendIsServed(d);
        }
    }

    @Test
    void aPeerThatNeverReadsItsRepliesIsClosedWhenItsReplyCannotBeSent() throws Exception {
        try (DaemonOnThread d = new DaemonOnThread(new VhostUserNetDaemon.Options(1, false, 300, 5_000))) {
            RawFrontend hog = new RawFrontend(d.socket());
            byte[] burst = new byte[100 * VhostUserProtocol.HEADER_SIZE];
            for (int i = 0; i < 100; i++) {
                System.arraycopy(header(VhostUserRequest.GET_FEATURES), 0, burst, i * VhostUserProtocol.HEADER_SIZE,
                        VhostUserProtocol.HEADER_SIZE);
            }
            Thread spam = Thread.ofPlatform().name("never-reads").start(() -> {
                try {
                    for (int i = 0; i < 1_000; i++) {
                        hog.channel.sendRaw(burst);
                    }
                } catch (RuntimeException closed) {
                    // the daemon hung up
                }
            });
            try {
                d.awaitSessionsEnded(1, 10_000);
                String end = d.daemon().stats().sessions().getFirst().end();
                assertTrue(end.contains("has read nothing for 300 ms"), end);
                nextFrontendIsServed(d);
            } finally {
                LibC.shutdown(hog.channel.fd(), 2);
                spam.join(5_000);
                hog.close();
            }
        }
    }

    @Test
    void aPeerThatStoppedReadingBeforeItsReplyEndsInOneLineNotARefusal() throws Exception {
        try (DaemonOnThread d = new DaemonOnThread(1, 300); RawFrontend f = new RawFrontend(d.socket())) {
            LibC.shutdown(f.channel.fd(), 0); // SHUT_RD: a reply to this socket now fails with EPIPE
            f.send(VhostUserRequest.GET_FEATURES, false, new byte[0]);
            d.awaitSessionsEnded(1, 3_000);
            String end = d.daemon().stats().sessions().getFirst().end();
            assertTrue(end.contains("sending GET_FEATURES") && end.contains("EPIPE"), end);
            assertFalse(d.log().contains("refused"), "a reply that cannot be sent is no refusal:\n" + d.log());
            nextFrontendIsServed(d);
        }
    }
}
