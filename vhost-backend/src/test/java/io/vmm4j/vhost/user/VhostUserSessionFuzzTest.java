package io.vmm4j.vhost.user;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.vmm4j.core.event.EventFd;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.linux.LinuxException;
import io.vmm4j.vhost.VringAddress;
import org.junit.jupiter.api.AfterAll;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzz target: the vhost-user message parser and session state machine of the back-end daemon,
 * over a real Unix socket. Each input is one front-end connection (half of them first negotiate
 * and send a valid 2 MiB memory table, so rings can start) sending a sequence of messages
 * (known requests mostly, with structured payloads: u64, vring state, vring address, memory tables
 * whose regions point anywhere; sometimes unknown codes, bad flags or versions, size fields that
 * lie) carrying descriptors of every kind a peer can pass: memfds (sized right, too small, sealed or
 * not), eventfds and pipe ends. Invariants: the daemon answers each message, refuses it with a
 * non-zero REPLY_ACK, or hangs up (the documented refusals); it never dies and serves the next
 * front-end; once the session ends no descriptor and no thread is left behind; every input ends
 * within a bounded number of messages and a time bound.
 */
class VhostUserSessionFuzzTest {
    private static final int MAX_MESSAGES = 24;
    private static final long MIB = 1L << 20;
    private static final long USER = 0x7f00_0000_0000L;
    private static final long MAX_NANOS_PER_INPUT = 10_000_000_000L;

    private static DaemonOnThread daemon;
    private static int sessions;

    private static DaemonOnThread daemon() {
        if (daemon == null) {
            try {
                daemon = new DaemonOnThread(1, 200);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return daemon;
    }

    @AfterAll
    static void stopDaemon() {
        if (daemon != null) {
            daemon.close();
            daemon = null;
            sessions = 0;
        }
        if (fifo != null) {
            try {
                Files.deleteIfExists(fifo);
                Files.deleteIfExists(fifo.getParent());
            } catch (IOException ignored) {
                // a temp file left behind
            }
            fifo = null;
        }
    }

    @FuzzTest(maxDuration = "20s")
    void messageSequences(FuzzedDataProvider data) throws Exception {
        DaemonOnThread d = daemon();
        long fdsBefore = openFds();
        int threadsBefore = Thread.activeCount();
        long started = System.nanoTime();
        try (RawFrontend f = new RawFrontend(d.socket())) {
            if (data.consumeBoolean()) {
                setUp(f); // the messages below then meet a session with memory, so their rings can start
            }
            for (int i = 0; i < MAX_MESSAGES && data.remainingBytes() > 0; i++) {
                if (!sendOne(f, data)) {
                    break; // the daemon hung up: a documented refusal
                }
                assertTrue(System.nanoTime() - started < MAX_NANOS_PER_INPUT, "one input ran for more than 10 s");
            }
        }
        sessions++;
        d.awaitSessionsEnded(sessions, 5_000);
        assertTrue(d.alive(), "the daemon thread died; log:\n" + d.log());
        // the daemon still serves a well-behaved front-end
        try (RawFrontend next = new RawFrontend(d.socket())) {
            assertNotEquals(0, next.get(VhostUserRequest.GET_FEATURES), "the daemon serves the next front-end");
        }
        sessions++;
        d.awaitSessionsEnded(sessions, 5_000);
        // at most as many as before: the JVM or the test runner may close one of its own meanwhile, never we open one
        long fdsAfter = openFds();
        assertTrue(fdsAfter <= fdsBefore, (fdsAfter - fdsBefore) + " descriptor(s) left open after the session ended; log:\n"
                + tail(d.log()));
        assertTrue(Thread.activeCount() <= threadsBefore, "threads left running after the session ended");
    }

    /** What QEMU sends first: features, protocol features, owner, and a 2 MiB memory table at guest 0, user address USER. */
    private static void setUp(RawFrontend f) {
        f.negotiate();
        int fd = LibC.memfdCreate(TestGuest.MEMFD_NAME, LibC.MFD_CLOEXEC | LibC.MFD_ALLOW_SEALING);
        try {
            LibC.ftruncate(fd, 2 * MIB);
            LibC.fcntl(fd, LibC.F_ADD_SEALS, LibC.F_SEAL_SHRINK | LibC.F_SEAL_GROW);
            byte[] table = VhostUserMessage.memoryTable(List.of(new VhostUserMessage.Region(0, 2 * MIB, USER, 0)));
            assertEquals(0, f.ack(VhostUserRequest.SET_MEM_TABLE, table, fd), "a valid memory table is taken");
        } finally {
            LibC.closeQuietly(fd);
        }
    }

    /** Sends one message; returns false once the daemon has closed the connection. */
    private static boolean sendOne(RawFrontend f, FuzzedDataProvider data) {
        VhostUserRequest[] known = VhostUserRequest.values();
        int code = data.consumeInt(0, 15) == 0 ? data.consumeInt(0, 64) : data.pickValue(known).code();
        boolean needReply = data.consumeBoolean();
        int flags = VhostUserProtocol.VERSION | (needReply ? VhostUserProtocol.FLAG_NEED_REPLY : 0);
        if (data.consumeInt(0, 31) == 0) {
            flags = data.consumeInt();
        }
        byte[] payload = payload(code, data);
        int size = payload.length;
        if (data.consumeInt(0, 31) == 0) {
            size = data.consumeBoolean() ? data.consumeInt(0, 8192) : data.consumeInt();
        }
        List<Integer> fds = fds(data);
        int[] fdArray = fds.stream().mapToInt(Integer::intValue).toArray();
        boolean expectAnswer = (flags & VhostUserProtocol.FLAG_NEED_REPLY) != 0 || isGet(code);
        try {
            ByteBuffer header = ByteBuffer.allocate(VhostUserProtocol.HEADER_SIZE + payload.length).order(ByteOrder.nativeOrder());
            header.putInt(code).putInt(flags).putInt(size).put(payload);
            f.channel.sendRaw(header.array(), fdArray);
        } catch (VhostUserException e) {
            return false; // the daemon closed first
        } catch (LinuxException e) {
            // the daemon hung up on an earlier message: EPIPE / ECONNRESET on our send is that refusal
            assertTrue(e.getMessage().contains("EPIPE") || e.getMessage().contains("ECONNRESET"), e.getMessage());
            return false;
        } finally {
            for (int fd : fdArray) {
                LibC.closeQuietly(fd);
            }
        }
        if (!expectAnswer) {
            return true;
        }
        try {
            VhostUserMessage m = f.channel.receive(2_000, 2_000);
            if (m == null) {
                return false;
            }
            assertNotNull(m.payload());
            return true;
        } catch (VhostUserException e) {
            return false; // reset or framing from a closing daemon
        }
    }

    private static boolean isGet(int code) {
        return code == VhostUserRequest.GET_FEATURES.code() || code == VhostUserRequest.GET_PROTOCOL_FEATURES.code()
                || code == VhostUserRequest.GET_QUEUE_NUM.code() || code == VhostUserRequest.GET_VRING_BASE.code()
                || code == VhostUserRequest.GET_MAX_MEM_SLOTS.code() || code == VhostUserRequest.GET_CONFIG.code()
                || code == VhostUserRequest.GET_STATUS.code();
    }

    /** A payload shaped for the request most of the time, raw bytes otherwise. */
    private static byte[] payload(int code, FuzzedDataProvider data) {
        if (data.consumeInt(0, 7) == 0) {
            return data.consumeBytes(data.consumeInt(0, 512));
        }
        if (code == VhostUserRequest.SET_MEM_TABLE.code()) {
            List<VhostUserMessage.Region> regions = new ArrayList<>();
            int n = data.consumeInt(0, 9);
            for (int i = 0; i < n; i++) {
                long gpa = data.consumeBoolean() ? MIB * data.consumeInt(0, 4) : data.consumeLong();
                long size = data.consumeBoolean() ? MIB * data.consumeInt(0, 2) : data.consumeLong();
                long user = data.consumeBoolean() ? USER + MIB * data.consumeInt(0, 4) : data.consumeLong();
                long offset = data.consumeBoolean() ? 0 : data.consumeLong();
                regions.add(new VhostUserMessage.Region(gpa, size, user, offset));
            }
            return VhostUserMessage.memoryTable(regions);
        }
        if (code == VhostUserRequest.SET_VRING_ADDR.code()) {
            long base = data.consumeBoolean() ? USER + data.consumeInt(0, 0x4000) : data.consumeLong();
            return VhostUserMessage.vringAddress(new VhostUserMessage.VringAddressDescription(data.consumeInt(0, 3),
                    data.consumeInt(0, 1), new VringAddress(base, base + data.consumeInt(0, 0x2000), base + data.consumeInt(0, 0x2000)),
                    data.consumeLong()));
        }
        if (code == VhostUserRequest.SET_VRING_NUM.code() || code == VhostUserRequest.SET_VRING_BASE.code()
                || code == VhostUserRequest.GET_VRING_BASE.code() || code == VhostUserRequest.SET_VRING_ENABLE.code()) {
            return VhostUserMessage.vringState(data.consumeBoolean() ? data.consumeInt(0, 3) : data.consumeInt(),
                    data.consumeBoolean() ? 1L << data.consumeInt(0, 16) : data.consumeLong());
        }
        if (isGet(code) && code != VhostUserRequest.GET_CONFIG.code()) {
            return new byte[0];
        }
        if (code == VhostUserRequest.SET_VRING_KICK.code() || code == VhostUserRequest.SET_VRING_CALL.code()
                || code == VhostUserRequest.SET_VRING_ERR.code()) {
            return VhostUserMessage.u64(data.consumeInt(0, 3) | (data.consumeBoolean() ? 0x100 : 0));
        }
        return VhostUserMessage.u64(data.consumeBoolean() ? data.consumeLong() : -1L >>> data.consumeInt(0, 63));
    }

    /** Descriptors to pass: none mostly, else memfds, eventfds or pipe ends (the caller closes its copies). */
    private static List<Integer> fds(FuzzedDataProvider data) {
        List<Integer> fds = new ArrayList<>();
        int n = data.consumeInt(0, 7) < 4 ? 0 : data.consumeInt(1, 3);
        for (int i = 0; i < n; i++) {
            switch (data.consumeInt(0, 3)) {
                case 0 -> {
                    int fd = LibC.memfdCreate(TestGuest.MEMFD_NAME, LibC.MFD_CLOEXEC | LibC.MFD_ALLOW_SEALING);
                    LibC.ftruncate(fd, data.consumeBoolean() ? 2 * MIB : data.consumeInt(0, 3) * 4096L);
                    if (data.consumeBoolean()) {
                        LibC.fcntl(fd, LibC.F_ADD_SEALS, LibC.F_SEAL_SHRINK | LibC.F_SEAL_GROW);
                    }
                    fds.add(fd);
                }
                case 1 -> fds.add(EventFd.create().fd()); // the caller's closeQuietly closes it
                case 2 -> fds.add(LibC.open(fifo().toString(), LibC.O_RDWR | LibC.O_CLOEXEC)); // a pipe (O_RDWR: no wait for a peer)
                default -> fds.add(devNull());
            }
        }
        return fds;
    }

    private static Path fifo;

    /** A named pipe (made once with mkfifo): opening it gives a pipe descriptor. */
    private static Path fifo() {
        if (fifo == null) {
            try {
                Path dir = Files.createTempDirectory("vu-fuzz");
                Path p = dir.resolve("pipe");
                Process mk = new ProcessBuilder("mkfifo", p.toString()).inheritIO().start();
                assertEquals(0, mk.waitFor(), "mkfifo " + p);
                fifo = p;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
        return fifo;
    }

    private static int devNull() {
        return LibC.open("/dev/null", LibC.O_RDWR | LibC.O_CLOEXEC);
    }

    private static long openFds() throws IOException {
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        }
    }

    private static String tail(String log) {
        return log.length() > 4000 ? log.substring(log.length() - 4000) : log;
    }
}
