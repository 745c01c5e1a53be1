package io.vmm4j.vhost.user;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.QueuePositions;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.vmm4j.virtio.VirtioFeatures.bit;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Front-ends that misbehave at the edges of the protocol rather than inside a message: they pass
 * blocking eventfds or fill their own call counter. The daemon changes none of their descriptors'
 * flags, never hangs on them, and serves the next one.
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
}
