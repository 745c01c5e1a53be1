package io.vmm4j.vhost.user;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.UnixListener;
import io.vmm4j.core.linux.UnixSocket;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.tap.TapDevice;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What comes back after the back-end went may be hostile: a peer that answers with garbage, one
 * that accepts and never answers, a storm of connections that drop at once. The front-end refuses
 * each with a line that names the socket and the reason, keeps running, does not spin, leaks no fd
 * or thread, and takes the next good back-end.
 */
class VhostUserReconnectHostileTest {
    private Path dir;
    private EventLoop loop;
    private final List<AutoCloseable> cleanUp = new ArrayList<>();

    @BeforeEach
    void setUp() throws IOException {
        dir = Files.createTempDirectory("vu-hostile");
        loop = new EventLoop("vmm-control");
    }

    @AfterEach
    void tearDown() throws Exception {
        for (int i = cleanUp.size() - 1; i >= 0; i--) {
            cleanUp.get(i).close();
        }
        loop.close();
        try (var files = Files.list(dir)) {
            for (Path p : files.toList()) {
                Files.deleteIfExists(p);
            }
        }
        Files.deleteIfExists(dir);
    }

    private static void await(BooleanSupplier condition, long millis, String what) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        while (!condition.getAsBoolean()) {
            assertTrue(System.currentTimeMillis() < deadline, what);
            Thread.sleep(10);
        }
    }

    private static long openFds() throws IOException {
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count();
        }
    }

    private static int threads() {
        return Thread.getAllStackTraces().size();
    }

    /** A real daemon on a thread, listening at {@code socket} (server) or connecting to it (client). */
    private VhostUserNetDaemon daemon(Path socket, boolean client) {
        MemoryPort[] ports = MemoryPort.pair(1, TapDevice.VNET_HEADER_V1_SIZE);
        PrintStream log = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        VhostUserNetDaemon.Options options = VhostUserNetDaemon.Options.defaults(1);
        VhostUserNetDaemon d = client ? VhostUserNetDaemon.client(socket, ports[0], options, log)
                : new VhostUserNetDaemon(socket, ports[0], options, log);
        Thread t = Thread.ofPlatform().name("vhost-user-daemon").start(d::serve);
        cleanUp.add(() -> {
            d.close(5_000);
            t.join(5_000);
            ports[0].close();
            ports[1].close();
        });
        return d;
    }

    /** A peer at {@code socket} that does {@code withEach} to every connection it accepts, on its own thread, until closed. */
    private UnixListener fakeBackend(Path socket, java.util.function.Consumer<UnixSocket> withEach) {
        UnixListener l = UnixListener.bind(socket);
        Thread t = Thread.ofPlatform().name("fake-backend").start(() -> {
            while (true) {
                UnixSocket s;
                try {
                    s = l.accept();
                } catch (RuntimeException closed) {
                    return;
                }
                withEach.accept(s);
            }
        });
        cleanUp.add(() -> {
            l.close();
            t.join(5_000);
        });
        return l;
    }

    private static void send(UnixSocket s, byte[] bytes) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocate(bytes.length);
            MemorySegment.copy(MemorySegment.ofArray(bytes), 0, m, 0, bytes.length);
            s.send(m);
        }
    }

    @Test
    void aBackendThatComesBackWithGarbageIsRefusedAndTheNextGoodOneIsTaken() throws Exception {
        Path socket = dir.resolve("vu.sock");
        VhostUserNetDaemon first = daemon(socket, false);
        VhostUserNetBackend vmm = new VhostUserNetBackend(VhostUserNetBackend.Endpoint.client(socket, 1), loop);
        cleanUp.add(vmm::close);
        assertTrue(vmm.connected());

        first.close(5_000);
        await(() -> !vmm.connected(), 5_000, "the front-end never saw the daemon go");
        UnixListener fake = fakeBackend(socket, s -> {
            try (Arena arena = Arena.ofConfined()) {
                s.receive(arena.allocate(64), 0); // the front-end's GET_FEATURES
            }
            // a reply header for GET_FEATURES with a payload size no message has, then more bytes
            send(s, new byte[] {1, 0, 0, 0, 5, 0, 0, 0, (byte) 0xff, (byte) 0xff, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8});
            s.close(); // the test JVM is the peer too: keep none of its fds
        });
        await(() -> vmm.connectionStatus().refused() >= 1, 10_000, "the garbage was never refused: " + vmm.connectionStatus());
        long fds = openFds();
        int threads = threads();
        await(() -> vmm.connectionStatus().refused() >= 4, 15_000, "the front-end stopped retrying: " + vmm.connectionStatus());
        VhostUserNetBackend.ConnectionStatus s = vmm.connectionStatus();
        assertTrue(s.lastProblem().startsWith("refused the back-end that connected at " + socket + ": "), s.lastProblem());
        assertTrue(s.lastProblem().contains("65535-byte payload"), "the line says what was wrong: " + s.lastProblem());
        assertFalse(s.connected(), s.toString());
        assertEquals(0, s.reconnects(), s.toString());
        assertTrue(s.refused() <= 8, "one attempt per reconnect period, no spinning: " + s);
        assertTrue(openFds() <= fds + 1, "no fd kept per refused back-end: " + fds + " -> " + openFds()); // +1: the attempt under way
        assertTrue(threads() <= threads, "no thread per attempt: " + threads + " -> " + threads());

        fake.close();
        Files.deleteIfExists(socket);
        daemon(socket, false);
        await(() -> vmm.connectionStatus().reconnects() == 1 && vmm.connected(), 10_000,
                "the good back-end after the garbage was not taken: " + vmm.connectionStatus());
    }

    @Test
    void aBackendThatAcceptsAndNeverAnswersIsRefusedAfterTheReplyTimeout() throws Exception {
        Path socket = dir.resolve("vu.sock");
        VhostUserNetDaemon first = daemon(socket, false);
        VhostUserNetBackend vmm = new VhostUserNetBackend(VhostUserNetBackend.Endpoint.client(socket, 1), loop);
        cleanUp.add(vmm::close);
        first.close(5_000);
        await(() -> !vmm.connected(), 5_000, "the front-end never saw the daemon go");
        List<UnixSocket> held = new ArrayList<>();
        fakeBackend(socket, s -> {
            synchronized (held) {
                held.add(s); // accepted, never read, never answered
            }
        });
        long t0 = System.currentTimeMillis();
        await(() -> vmm.connectionStatus().refused() >= 1, 15_000, "the silent back-end was never refused: " + vmm.connectionStatus());
        long took = System.currentTimeMillis() - t0;
        String problem = vmm.connectionStatus().lastProblem();
        assertTrue(problem.contains(socket.toString()) && problem.contains("GET_FEATURES got no answer"), problem);
        assertTrue(took >= VhostUserFrontend.DEFAULT_REPLY_TIMEOUT_MILLIS - 500, "refused after the reply timeout, not before: " + took);
        synchronized (held) {
            held.forEach(UnixSocket::close);
        }
    }

    @Test
    void aReconnectStormAgainstAListeningFrontEndLeaksNothingAndAGoodClientIsTakenAfter() throws Exception {
        Path socket = dir.resolve("vmm.sock");
        daemonAfter(socket);
        VhostUserNetBackend vmm = new VhostUserNetBackend(VhostUserNetBackend.Endpoint.server(socket), loop);
        cleanUp.add(vmm::close);
        assertTrue(vmm.connected());
        stopClients();
        await(() -> !vmm.connected(), 5_000, "the front-end never saw the client daemon go");

        int storm = 200;
        long fds = 0;
        int threads = 0;
        for (int i = 0; i < storm; i++) {
            UnixSocket s = UnixSocket.connect(socket);
            if (i % 2 == 0) {
                send(s, new byte[] {(byte) 0xde, (byte) 0xad}); // half of them a torn header first
            }
            s.close();
            if (i == 19) {
                await(() -> vmm.connectionStatus().refused() >= 15, 10_000, "the first connections were not refused: "
                        + vmm.connectionStatus());
                fds = openFds();
                threads = threads();
            }
        }
        await(() -> vmm.connectionStatus().refused() >= 190, 20_000, "the storm was not worked off: " + vmm.connectionStatus());
        assertTrue(openFds() <= fds + 1, "no fd kept per stormed connection: " + fds + " -> " + openFds());
        assertTrue(threads() <= threads, "no thread per stormed connection: " + threads + " -> " + threads());
        assertEquals(0, vmm.connectionStatus().reconnects(), vmm.connectionStatus().toString());

        daemon(socket, true);
        await(() -> vmm.connectionStatus().reconnects() == 1 && vmm.connected(), 10_000,
                "a good client after the storm was not taken: " + vmm.connectionStatus());
    }

    private VhostUserNetDaemon firstClient;

    /** The first client daemon, which connects once the front-end listens (it retries every second until then). */
    private void daemonAfter(Path socket) {
        firstClient = daemon(socket, true);
    }

    private void stopClients() {
        firstClient.close(5_000);
    }
}
