package io.vmm4j.core.linux;

import io.vmm4j.core.testing.AllocatedBytes;
import io.vmm4j.core.testing.HeaderConstants;
import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The io_uring binding: ABI numbers against the headers, readv/writev through the rings, errors, refusals, cleanup. */
class IoUringTest {
    private static final int FRAMES = 16;

    @Test
    void constantsAndLayoutsMatchHeaders() throws Exception {
        new HeaderConstants().include("sys/syscall.h", "linux/uio.h", "linux/io_uring.h")
                .expect("SYS_io_uring_setup", IoUring.SYS_IO_URING_SETUP)
                .expect("SYS_io_uring_enter", IoUring.SYS_IO_URING_ENTER)
                .expect("UIO_MAXIOV", IoUring.UIO_MAXIOV)
                .expect("IORING_SETUP_SQPOLL", IoUring.IORING_SETUP_SQPOLL)
                .expect("IORING_SETUP_SUBMIT_ALL", IoUring.IORING_SETUP_SUBMIT_ALL)
                .expect("IORING_SETUP_COOP_TASKRUN", IoUring.IORING_SETUP_COOP_TASKRUN)
                .expect("IORING_SETUP_SINGLE_ISSUER", IoUring.IORING_SETUP_SINGLE_ISSUER)
                .expect("IORING_SETUP_DEFER_TASKRUN", IoUring.IORING_SETUP_DEFER_TASKRUN)
                .expect("IORING_FEAT_SINGLE_MMAP", IoUring.IORING_FEAT_SINGLE_MMAP)
                .expect("IORING_FEAT_NODROP", IoUring.IORING_FEAT_NODROP)
                .expect("IORING_ENTER_GETEVENTS", IoUring.IORING_ENTER_GETEVENTS)
                .expect("IORING_ENTER_SQ_WAKEUP", IoUring.IORING_ENTER_SQ_WAKEUP)
                .expect("IORING_SQ_NEED_WAKEUP", IoUring.IORING_SQ_NEED_WAKEUP)
                .expect("IORING_OP_NOP", IoUring.IORING_OP_NOP)
                .expect("IORING_OP_READV", IoUring.IORING_OP_READV)
                .expect("IORING_OP_WRITEV", IoUring.IORING_OP_WRITEV)
                .expect("IORING_OFF_SQ_RING", IoUring.IORING_OFF_SQ_RING)
                .expect("IORING_OFF_CQ_RING", IoUring.IORING_OFF_CQ_RING)
                .expect("IORING_OFF_SQES", IoUring.IORING_OFF_SQES)
                .expectLayout("io_uring_sqe", IoUring.SQE)
                .expectLayout("io_uring_cqe", IoUring.CQE)
                .expectLayout("io_sqring_offsets", IoUring.SQRING_OFFSETS)
                .expectLayout("io_cqring_offsets", IoUring.CQRING_OFFSETS)
                .expectLayout("io_uring_params", IoUring.PARAMS)
                .verify();
    }

    /** Skips (fails under CI=true) when io_uring_setup fails here, with its errno and kernel.io_uring_disabled. */
    private static void requireIoUring() {
        String reason = IoUring.unavailableReason();
        HostRequirements.require(reason == null, "io_uring (" + reason + ")");
    }

    @Test
    void manyWritevsInOneEnterArriveWholeAndInOrder() {
        requireIoUring();
        int[] pair = LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET | LibC.SOCK_CLOEXEC);
        try (Arena arena = Arena.ofConfined(); IoUring ring = IoUring.open(32, 0)) {
            MemorySegment iov = scatteredMessages(arena, FRAMES);
            for (int i = 0; i < FRAMES; i++) {
                assertTrue(ring.queueWritev(pair[0], iov, 2L * i, 2, 1000 + i));
            }
            assertEquals(FRAMES, ring.pendingSubmissions());
            assertTrue(ring.submitAndWait(FRAMES) >= FRAMES);
            assertEquals(0, ring.pendingSubmissions());
            assertEquals(FRAMES, ring.completionsReady());
            for (int i = 0; i < FRAMES; i++) {
                assertEquals(message(i).length(), ring.completionResult(i), "bytes written by request " + i);
                assertEquals(1000 + i, ring.completionUserData(i));
            }
            ring.consumeCompletions(FRAMES);
            assertEquals(0, ring.inFlight());
            MemorySegment buf = arena.allocate(64);
            for (int i = 0; i < FRAMES; i++) {
                long n = LibC.read(pair[1], buf, buf.byteSize()); // SEQPACKET: one read is one writev
                assertEquals(message(i), new String(buf.asSlice(0, n).toArray(JAVA_BYTE), StandardCharsets.US_ASCII));
            }
        } finally {
            LibC.close(pair[0]);
            LibC.close(pair[1]);
        }
    }

    @Test
    void manyReadvsInOneEnterEachTakeOneMessageInOrder() {
        requireIoUring();
        int[] pair = LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET | LibC.SOCK_CLOEXEC);
        try (Arena arena = Arena.ofConfined(); IoUring ring = IoUring.open(FRAMES, 0)) {
            for (int i = 0; i < FRAMES; i++) {
                MemorySegment m = arena.allocateFrom(message(i));
                LibC.write(pair[0], m, message(i).length());
            }
            // each readv scatters into a 4-byte head and a 60-byte rest
            MemorySegment bufs = arena.allocate(64L * FRAMES);
            MemorySegment iov = arena.allocate(LibC.IOVEC, 2L * FRAMES);
            for (int i = 0; i < FRAMES; i++) {
                LibC.setIovec(iov, 2L * i, bufs.address() + 64L * i, 4);
                LibC.setIovec(iov, 2L * i + 1, bufs.address() + 64L * i + 4, 60);
                assertTrue(ring.queueReadv(pair[1], iov, 2L * i, 2, i));
            }
            ring.submitAndWait(FRAMES);
            assertEquals(FRAMES, ring.completionsReady());
            for (int i = 0; i < FRAMES; i++) {
                int slot = (int) ring.completionUserData(i);
                int n = ring.completionResult(i);
                assertEquals(message(slot).length(), n, "bytes read by request " + slot);
                String got = new String(bufs.asSlice(64L * slot, n).toArray(JAVA_BYTE), StandardCharsets.US_ASCII);
                assertEquals(message(slot), got, "request " + slot + " read the message sent " + slot + "th");
            }
            ring.consumeCompletions(FRAMES);
        } finally {
            LibC.close(pair[0]);
            LibC.close(pair[1]);
        }
    }

    @Test
    void failuresComeBackAsNegativeErrnoInTheirCompletion() {
        requireIoUring();
        int eventFd = LibC.eventfd(0, LibC.EFD_CLOEXEC);
        int[] pair = LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET | LibC.SOCK_CLOEXEC);
        try (Arena arena = Arena.ofConfined(); IoUring ring = IoUring.open(8, 0)) {
            MemorySegment three = arena.allocate(3);
            MemorySegment iov = arena.allocate(LibC.IOVEC, 3);
            LibC.setIovec(iov, 0, three);            // eventfd(2): a write must be 8 bytes, else EINVAL
            LibC.setIovec(iov, 1, 8, 16);            // address 8 is never mapped: EFAULT
            LibC.setIovec(iov, 2, three);
            assertTrue(ring.queueWritev(eventFd, iov, 0, 1, 1));
            assertTrue(ring.queueWritev(pair[0], iov, 1, 1, 2));
            assertTrue(ring.queueWritev(100_000, iov, 2, 1, 3)); // no such fd: EBADF
            ring.submitAndWait(3);
            assertEquals(3, ring.completionsReady());
            int[] byRequest = new int[4];
            for (int i = 0; i < 3; i++) {
                byRequest[(int) ring.completionUserData(i)] = ring.completionResult(i);
            }
            ring.consumeCompletions(3);
            assertEquals(-Errno.EINVAL, byRequest[1], "short write to an eventfd");
            assertEquals(-Errno.EFAULT, byRequest[2], "iovec pointing at unmapped memory");
            assertEquals(-Errno.EBADF, byRequest[3], "fd that is not open");
        } finally {
            LibC.close(eventFd);
            LibC.close(pair[0]);
            LibC.close(pair[1]);
        }
    }

    @Test
    void badArgumentsAreRefusedNamingTheValue() {
        requireIoUring();
        assertTrue(assertThrows(IllegalArgumentException.class, () -> IoUring.open(0, 0)).getMessage().contains("got 0"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> IoUring.open(IoUring.MAX_ENTRIES + 1, 0)).getMessage()
                .contains("got 32769"));
        // IORING_SETUP_IOPOLL (bit 0) and IORING_SETUP_SQE128 (bit 10) change rules or layout this binding relies on
        assertTrue(assertThrows(IllegalArgumentException.class, () -> IoUring.open(8, 1)).getMessage().contains("0x1 "));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> IoUring.open(8, 1 << 10)).getMessage().contains("0x400"));
        // the kernel's own refusal comes back as the call, the errno and the arguments: DEFER_TASKRUN needs SINGLE_ISSUER
        LinuxException refused = assertThrows(LinuxException.class, () -> IoUring.open(8, IoUring.IORING_SETUP_DEFER_TASKRUN));
        assertEquals("io_uring_setup", refused.call());
        assertEquals(Errno.EINVAL, refused.errno());
        assertTrue(refused.getMessage().startsWith("io_uring_setup(entries=8, flags=0x2000) failed: EINVAL"), refused.getMessage());
        try (Arena arena = Arena.ofConfined(); IoUring ring = IoUring.open(8, 0)) {
            MemorySegment iov = arena.allocate(LibC.IOVEC, 4);
            assertTrue(assertThrows(IllegalArgumentException.class, () -> ring.queueWritev(-1, iov, 0, 1, 0)).getMessage()
                    .contains("got -1"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> ring.queueWritev(0, iov, 0, 0, 0)).getMessage()
                    .contains("got 0"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> ring.queueReadv(0, iov, 0, 1025, 0)).getMessage()
                    .contains("got 1025"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> ring.queueWritev(0, iov, 3, 2, 0)).getMessage()
                    .contains("iovecs 3..4 lie outside the 4"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> ring.queueWritev(0, iov, -1, 1, 0)).getMessage()
                    .contains("outside"));
            assertTrue(assertThrows(IllegalArgumentException.class,
                    () -> ring.queueWritev(0, MemorySegment.ofArray(new byte[64]), 0, 1, 0)).getMessage().contains("native"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> ring.submitAndWait(1)).getMessage()
                    .contains("0 requests in flight"));
            assertThrows(IndexOutOfBoundsException.class, () -> ring.completionResult(0));
            assertThrows(IllegalArgumentException.class, () -> ring.consumeCompletions(1));
            assertEquals(0, ring.inFlight(), "refused requests queue nothing");
            assertEquals(0, ring.pendingSubmissions());
        }
        IoUring closed = IoUring.open(2, 0);
        closed.close();
        closed.close(); // idempotent
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment iov = arena.allocate(LibC.IOVEC, 1);
            assertTrue(assertThrows(IllegalStateException.class, () -> closed.queueWritev(0, iov, 0, 1, 0)).getMessage()
                    .contains("closed"));
            assertThrows(IllegalStateException.class, () -> closed.submitAndWait(0));
            assertThrows(IllegalStateException.class, closed::completionsReady);
        }
    }

    @Test
    void aFullRingRefusesMoreUntilCompletionsAreConsumed() {
        requireIoUring();
        int[] pair = LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET | LibC.SOCK_CLOEXEC);
        try (Arena arena = Arena.ofConfined(); IoUring ring = IoUring.open(4, 0)) {
            assertEquals(4, ring.submissionEntries());
            assertEquals(8, ring.completionEntries());
            MemorySegment iov = scatteredMessages(arena, 1);
            for (int i = 0; i < 4; i++) {
                assertTrue(ring.queueWritev(pair[0], iov, 0, 2, i));
            }
            assertFalse(ring.queueWritev(pair[0], iov, 0, 2, 4), "the SQ ring holds 4");
            ring.submitAndWait(4);
            for (int i = 4; i < 8; i++) {
                assertTrue(ring.queueWritev(pair[0], iov, 0, 2, i));
            }
            ring.submitAndWait(8);
            // 8 completions unreaped fill the CQ ring: a ninth request could overflow it
            assertFalse(ring.queueWritev(pair[0], iov, 0, 2, 8), "8 requests in flight fill the 8 CQ slots");
            assertEquals(8, ring.completionsReady());
            ring.consumeCompletions(3);
            assertEquals(5, ring.inFlight());
            assertTrue(ring.queueWritev(pair[0], iov, 0, 2, 8));
            ring.submitAndWait(6);
            assertEquals(6, ring.completionsReady());
            for (int i = 0; i < 6; i++) {
                assertEquals(3 + i, ring.completionUserData(i), "completions keep their order across the ring's wrap");
                assertEquals(message(0).length(), ring.completionResult(i));
            }
            ring.consumeCompletions(6);
            assertEquals(0, ring.inFlight());
        } finally {
            LibC.close(pair[0]);
            LibC.close(pair[1]);
        }
    }

    @Test
    void sqPollRingSubmitsThroughTheKernelThread() {
        requireIoUring();
        IoUring ring;
        try {
            // twice the slots a round uses: the kernel thread may free a round's SQ slots only after posting its CQEs
            ring = IoUring.open(2 * FRAMES, IoUring.IORING_SETUP_SQPOLL);
        } catch (LinuxException e) {
            HostRequirements.require(false, "io_uring with IORING_SETUP_SQPOLL (" + e.getMessage() + ")");
            return;
        }
        int[] pair = LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET | LibC.SOCK_CLOEXEC);
        try (Arena arena = Arena.ofConfined(); ring) {
            MemorySegment iov = scatteredMessages(arena, FRAMES);
            for (int round = 0; round < 3; round++) {
                for (int i = 0; i < FRAMES; i++) {
                    assertTrue(ring.queueWritev(pair[0], iov, 2L * i, 2, i));
                }
                assertTrue(ring.submitAndWait(FRAMES) >= FRAMES);
                for (int i = 0; i < FRAMES; i++) {
                    assertEquals(message((int) ring.completionUserData(i)).length(), ring.completionResult(i));
                }
                ring.consumeCompletions(FRAMES);
                MemorySegment buf = arena.allocate(64);
                for (int i = 0; i < FRAMES; i++) {
                    long n = LibC.read(pair[1], buf, buf.byteSize());
                    assertEquals(message(i).length(), n);
                }
            }
        } finally {
            LibC.close(pair[0]);
            LibC.close(pair[1]);
        }
    }

    @Test
    void closeLeavesNoFdAndNoMapping() throws IOException {
        requireIoUring();
        long fds = openFds();
        long maps = ioUringMappings();
        for (int i = 0; i < 20; i++) {
            try (IoUring ring = IoUring.open(64, 0)) {
                assertTrue(ring.fd() >= 0);
            }
        }
        assertEquals(fds, openFds(), "fds open after 20 rings were opened and closed");
        assertEquals(maps, ioUringMappings(), "io_uring mappings left after close");
    }

    @Test
    void steadyStateSubmissionAllocatesNothing() throws Exception {
        requireIoUring();
        int[] pair = LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET | LibC.SOCK_CLOEXEC);
        try (Arena arena = Arena.ofConfined(); IoUring ring = IoUring.open(8, 0)) {
            MemorySegment iov = scatteredMessages(arena, 8);
            MemorySegment buf = arena.allocate(64);
            AllocatedBytes allocated = new AllocatedBytes();
            long thread = Thread.currentThread().threadId();
            rounds(ring, pair, iov, buf, 10_000); // warm up: classes load, the JIT compiles the path
            // until C2 has compiled the loop, the interpreter and C1 allocate what escape analysis later removes; on a busy
            // machine that takes a while, so sample for up to 4 s and keep the least: a per-request allocation never goes away
            long least = Long.MAX_VALUE;
            long deadline = System.nanoTime() + 4_000_000_000L;
            while (least >= 1_000 && System.nanoTime() < deadline) {
                long before = allocated.of(thread);
                rounds(ring, pair, iov, buf, 1_000);
                least = Math.min(least, allocated.of(thread) - before);
            }
            assertTrue(least < 1_000, "1000 rounds of 8 writevs through the ring allocated at least " + least
                    + " bytes on the submitting thread");
        } finally {
            LibC.close(pair[0]);
            LibC.close(pair[1]);
        }
    }

    private static void rounds(IoUring ring, int[] pair, MemorySegment iov, MemorySegment buf, int rounds) {
        for (int r = 0; r < rounds; r++) {
            for (int i = 0; i < 8; i++) {
                ring.queueWritev(pair[0], iov, 2L * i, 2, i);
            }
            ring.submitAndWait(8);
            int ready = ring.completionsReady();
            for (int i = 0; i < ready; i++) {
                if (ring.completionResult(i) <= 0) {
                    throw new AssertionError("writev failed: " + ring.completionResult(i));
                }
            }
            ring.consumeCompletions(ready);
            for (int i = 0; i < 8; i++) {
                LibC.readRaw(pair[1], buf, buf.byteSize());
            }
        }
    }

    private static String message(int i) {
        return "frame-" + i + "-payload";
    }

    /** {@code count} messages, each as two iovecs (the "frame-N-" head and the "payload" rest), like a header and a body. */
    private static MemorySegment scatteredMessages(Arena arena, int count) {
        MemorySegment iov = arena.allocate(LibC.IOVEC, 2L * count);
        for (int i = 0; i < count; i++) {
            String m = message(i);
            int cut = m.length() - "payload".length();
            MemorySegment head = arena.allocate(cut);
            MemorySegment.copy(m.getBytes(StandardCharsets.US_ASCII), 0, head, JAVA_BYTE, 0, cut);
            MemorySegment rest = arena.allocate(m.length() - cut);
            MemorySegment.copy(m.getBytes(StandardCharsets.US_ASCII), cut, rest, JAVA_BYTE, 0, m.length() - cut);
            LibC.setIovec(iov, 2L * i, head);
            LibC.setIovec(iov, 2L * i + 1, rest);
        }
        return iov;
    }

    private static long openFds() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        }
    }

    private static long ioUringMappings() throws IOException {
        return Files.readAllLines(Path.of("/proc/self/maps")).stream().filter(l -> l.contains("io_uring")).count();
    }
}
