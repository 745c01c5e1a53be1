package io.vmm4j.cli.qmp;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The QMP server when {@code accept} fails because the process is out of file descriptors
 * (EMFILE): the test lowers this JVM's RLIMIT_NOFILE to just above what is open, connects until
 * the server cannot accept, and checks that the server says so once, does not spin, and takes
 * the waiting client once descriptors are free again.
 */
class QmpAcceptFailureTest {
    /** RLIMIT_NOFILE in asm-generic/resource.h (x86-64 and arm64). */
    private static final int RLIMIT_NOFILE = 7;
    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle GETRLIMIT = libc("getrlimit");
    private static final MethodHandle SETRLIMIT = libc("setrlimit");

    @TempDir
    Path dir;
    private QmpServer server;
    private final List<SocketChannel> clients = new ArrayList<>();

    private static MethodHandle libc(String name) {
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(), FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
    }

    /** {soft, hard} */
    private static long[] fileLimit() throws Throwable {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment rlimit = arena.allocate(16);
            assertEquals(0, (int) GETRLIMIT.invokeExact(RLIMIT_NOFILE, rlimit));
            return new long[] {rlimit.get(JAVA_LONG, 0), rlimit.get(JAVA_LONG, 8)};
        }
    }

    private static void setFileLimit(long soft, long hard) throws Throwable {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment rlimit = arena.allocate(16);
            rlimit.set(JAVA_LONG, 0, soft);
            rlimit.set(JAVA_LONG, 8, hard);
            assertEquals(0, (int) SETRLIMIT.invokeExact(RLIMIT_NOFILE, rlimit));
        }
    }

    @AfterEach
    void stop() throws IOException {
        for (SocketChannel c : clients) {
            c.close();
        }
        if (server != null) {
            server.close();
        }
    }

    @Test
    void acceptFailingWithEmfileIsLoggedOnceRetriedWithoutSpinningAndRecovers() throws Throwable {
        Path socket = dir.resolve("vm.qmp");
        server = QmpServer.start(socket, VmCommands.version(), List.of());
        UnixDomainSocketAddress address = UnixDomainSocketAddress.of(socket);
        SocketChannel warmUp = SocketChannel.open(StandardProtocolFamily.UNIX); // loads what the server needs per client
        clients.add(warmUp);
        warmUp.connect(address);
        assertTrue(readLine(warmUp).startsWith("{\"QMP\""));
        awaitClients(1);
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        long loopThread = Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().startsWith("qmp-") && t.isAlive()).max(java.util.Comparator.comparingLong(Thread::threadId))
                .orElseThrow().threadId();

        PrintStream stderr = System.err;
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        long[] saved = fileLimit();
        FileChannel spare = FileChannel.open(Path.of("/dev/null")); // freed when the parity of client and server fds needs it
        SocketChannel waiting = null;
        long loopCpuNanos;
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            long open = fds.count();
            System.setErr(new PrintStream(log, true));
            setFileLimit(open + 6, saved[1]);
            // each client costs one fd here and one in the server: connect until the server is the one left without
            while (waiting == null) {
                SocketChannel c;
                try {
                    c = SocketChannel.open(StandardProtocolFamily.UNIX);
                } catch (IOException full) {
                    assertTrue(spare.isOpen(), "no fd for a client socket even after freeing the spare: " + full);
                    spare.close();
                    continue;
                }
                c.connect(address); // queued in the listen backlog whether or not the server can accept it
                clients.add(c);
                long deadline = System.nanoTime() + 500_000_000L;
                while (server.clients() < clients.size() && System.nanoTime() < deadline) {
                    Thread.sleep(5);
                }
                if (server.clients() < clients.size()) {
                    waiting = c;
                }
            }
            long cpu0 = threads.getThreadCpuTime(loopThread);
            Thread.sleep(3000);
            loopCpuNanos = threads.getThreadCpuTime(loopThread) - cpu0;
        } finally {
            setFileLimit(saved[0], saved[1]);
            System.setErr(stderr);
            spare.close();
        }
        String logged = log.toString(StandardCharsets.UTF_8);
        stderr.print(logged);
        assertTrue(loopCpuNanos < 500_000_000L, "the event loop used " + loopCpuNanos / 1_000_000 + " ms of CPU in 3 s of EMFILE");
        List<String> failures = logged.lines().filter(l -> l.contains("Too many open files")).toList();
        assertEquals(1, failures.size(), "one log line for the failing accepts, not one per attempt:\n" + logged);
        assertTrue(failures.get(0).contains(socket.toString()) && failures.get(0).contains("ulimit -n"),
                "the line names the socket and what to do: " + failures.get(0));

        awaitClients(clients.size());
        assertTrue(readLine(waiting).startsWith("{\"QMP\""), "the client that waited is greeted");
    }

    private void awaitClients(int n) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 5000;
        while (server.clients() != n && System.currentTimeMillis() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(n, server.clients());
    }

    private static String readLine(SocketChannel ch) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(4096);
        while (b.position() == 0 || b.get(b.position() - 1) != '\n') {
            if (ch.read(b) < 0) {
                throw new IOException("the server hung up");
            }
        }
        return new String(b.array(), 0, b.position(), StandardCharsets.US_ASCII);
    }
}
