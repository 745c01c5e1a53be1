package io.vmm4j.vhost.user;

import io.vmm4j.tap.MemoryPort;
import io.vmm4j.tap.TapDevice;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The back-end daemon serving on a thread of the test JVM, over an in-memory port whose other end
 * ({@link #wire()}) the test reads and writes like a host network.
 */
public final class DaemonOnThread implements AutoCloseable {
    private final Path dir;
    private final MemoryPort[] ports;
    private final ByteArrayOutputStream logBytes = new ByteArrayOutputStream();
    private final PrintStream log = new PrintStream(logBytes, true, StandardCharsets.UTF_8);
    private final VhostUserNetDaemon daemon;
    private final Thread thread;

    DaemonOnThread(int pairs, int messageTimeoutMillis) throws IOException {
        this(new VhostUserNetDaemon.Options(pairs, false, messageTimeoutMillis));
    }

    public DaemonOnThread(VhostUserNetDaemon.Options options) throws IOException {
        dir = Files.createTempDirectory("vu-test");
        ports = MemoryPort.pair(options.queuePairs(), TapDevice.VNET_HEADER_V1_SIZE);
        daemon = new VhostUserNetDaemon(dir.resolve("backend.sock"), ports[0], options, log);
        thread = Thread.ofPlatform().name("vhost-user-daemon").start(daemon::serve);
    }

    public Path socket() {
        return daemon.socketPath();
    }

    VhostUserNetDaemon daemon() {
        return daemon;
    }

    /** The far end of the daemon's port: what the daemon transmits arrives here, what is sent here the daemon receives. */
    public MemoryPort wire() {
        return ports[1];
    }

    /**
     * The daemon's own end of its port. Another data plane may serve it while no front-end's rings
     * run on the daemon (the engine polls the port only while a queue pair runs): a backend switch
     * between the daemon and an in-process plane on the same host network.
     */
    public MemoryPort port() {
        return ports[0];
    }

    boolean alive() {
        return thread.isAlive();
    }

    public synchronized String log() {
        return logBytes.toString(StandardCharsets.UTF_8);
    }

    /** Waits until the daemon has seen {@code n} front-ends go. */
    void awaitSessionsEnded(int n, long millis) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        while (daemon.stats().sessions().size() < n) {
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("the daemon saw " + daemon.stats().sessions().size() + " front-end(s) go, expected " + n
                        + "; log:\n" + log());
            }
            Thread.sleep(10);
        }
    }

    @Override
    public void close() {
        try {
            daemon.close(5_000);
            thread.join(5_000);
            ports[0].close();
            ports[1].close();
            Files.deleteIfExists(dir.resolve("backend.sock"));
            Files.deleteIfExists(dir);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while the daemon stopped", e);
        } catch (Exception e) {
            throw new IllegalStateException("stopping the daemon failed: " + e.getMessage(), e);
        }
    }
}
