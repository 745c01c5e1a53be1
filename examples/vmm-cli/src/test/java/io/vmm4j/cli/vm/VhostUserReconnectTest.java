package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.tap.NetNamespace;
import io.vmm4j.vhost.BackendConnectionListener;
import io.vmm4j.vhost.user.VhostUserNetBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The vhost-user back-end dies ({@code kill -9}) and comes back while the guest runs: the VMM (in
 * this JVM) sets the link down, keeps the rings, gets a new back-end (retrying its socket as a
 * client with {@code --reconnect}, or accepting it again as a server with {@code --socket-listen}
 * and the daemon's {@code --client}), replays the setup, and sets the link up. The daemon is a real
 * process on a persistent tap in a network namespace, as an orchestrator would run it; the host
 * side echoes a numbered UDP stream from that namespace.
 */
class VhostUserReconnectTest {
    private static final int ECHO_PORT = 7777;
    /** Kill/restart cycles of the leak check; fewer with -Dvmm4j.reconnectCycles=N on a slow machine. */
    private static final int CYCLES = Integer.getInteger("vmm4j.reconnectCycles", 20);

    private Path dir;

    @BeforeEach
    void requirements() throws IOException {
        HostRequirements.requireRoot("network namespaces and taps");
        HostRequirements.requireFile("/dev/net/tun", "modprobe tun");
        HostRequirements.requireCommand("ip", "iproute2");
        HostRequirements.requireCommand("python3", "python3 (the host-side UDP echo)");
        dir = Files.createTempDirectory("vu-reconnect");
    }

    @AfterEach
    void cleanUp() throws IOException {
        try (var files = Files.list(dir)) {
            for (Path p : files.toList()) {
                Files.deleteIfExists(p);
            }
        }
        Files.deleteIfExists(dir);
    }

    private static List<String> in(NetNamespace ns) {
        return List.of("ip", "netns", "exec", ns.name());
    }

    /** A persistent tap with the host side's address: it outlives each daemon, as an orchestrator's tap does. */
    private static String persistentTap(NetNamespace ns) {
        String tap = ToyVmNetworkTest.unique("vr");
        ns.exec("ip", "tuntap", "add", "dev", tap, "mode", "tap", "vnet_hdr").orThrow("setting up the tap");
        ns.exec("ip", "addr", "add", "10.0.2.2/24", "dev", tap).orThrow("setting up the tap");
        ns.exec("ip", "link", "set", tap, "up").orThrow("setting up the tap");
        return tap;
    }

    private VmmProcess daemon(NetNamespace ns, Path socket, String tap, boolean client, boolean inflight) throws Exception {
        List<String> args = new ArrayList<>(List.of("vhost-user-backend", "--socket", socket.toString(), "--tap", tap));
        if (client) {
            args.add("--client");
        }
        if (!inflight) {
            args.add("--no-inflight");
        }
        VmmProcess d = VmmProcess.start(in(ns), args.toArray(String[]::new));
        d.awaitOutput(client ? ": connected to " + socket : "vhost-user-backend: listening on " + socket, 30);
        return d;
    }

    /** Echoes UDP on the host side of the tap and counts each number it saw; the counts go to a file when it is told to stop. */
    private Process echo(NetNamespace ns, Path counts) throws IOException {
        Path script = dir.resolve("echo.py");
        Files.writeString(script, """
                import json, signal, socket, sys
                seen = {}
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
                s.bind(("0.0.0.0", %d))
                s.settimeout(0.1)
                stop = []
                signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
                print("echo ready", flush=True)
                while not stop:
                    try:
                        data, peer = s.recvfrom(2048)
                    except socket.timeout:
                        continue
                    except InterruptedError:
                        continue
                    if len(data) >= 4:
                        n = int.from_bytes(data[:4], "big")
                        seen[n] = seen.get(n, 0) + 1
                    s.sendto(data, peer)
                json.dump(seen, open(sys.argv[1], "w"))
                """.formatted(ECHO_PORT));
        List<String> cmd = new ArrayList<>(in(ns));
        cmd.addAll(List.of("python3", script.toString(), counts.toString()));
        Path out = dir.resolve("echo.out");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
        long deadline = System.currentTimeMillis() + 10_000;
        while (!Files.readString(out).contains("echo ready")) {
            assertTrue(p.isAlive() && System.currentTimeMillis() < deadline, "the echo did not start: " + Files.readString(out));
            sleep(50);
        }
        return p;
    }

    private static JsonNode stopEcho(Process echo, Path counts) throws Exception {
        echo.destroy(); // SIGTERM: it writes its counts
        assertTrue(echo.waitFor(5, TimeUnit.SECONDS), "the echo did not stop");
        return new ObjectMapper().readTree(counts.toFile());
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    private static void await(BooleanSupplier condition, long millis, String what) {
        long deadline = System.currentTimeMillis() + millis;
        while (!condition.getAsBoolean()) {
            assertTrue(System.currentTimeMillis() < deadline, what);
            sleep(20);
        }
    }

    private static VmOptions options(Path socket, boolean listen) {
        VmOptions.Builder b = VmOptions.builder().dataPlane(DataPlane.VHOST_USER).count(0).intervalMs(20).socket(socket.toString());
        return (listen ? b.socketListen(true) : b.reconnectSeconds(1)).build();
    }

    /**
     * A numbered stream at 1000 datagrams/s; at number 1500 the daemon is killed and a new one is
     * started 2 s later. Restarting is the test's business, so it happens on its own thread while
     * the guest keeps sending.
     */
    private record Outage(GuestTraffic.StreamResult stream, JsonNode hostCounts, long killedAtNanos, long[] sentAtNanos, int killSeq,
                          long restartedAtNanos, long reconnectedAtNanos) {
        /** Milliseconds from starting the new daemon until the VMM had it serving the rings (link up). */
        long reconnectedAfterRestartMillis() {
            return TimeUnit.NANOSECONDS.toMillis(reconnectedAtNanos - restartedAtNanos);
        }

        /** Milliseconds from the kill until the VMM had the new daemon serving the rings. */
        long reconnectedAfterKillMillis() {
            return TimeUnit.NANOSECONDS.toMillis(reconnectedAtNanos - killedAtNanos);
        }

        /** Milliseconds from starting the new daemon until the first number the guest sent after the kill came back to it. */
        long resumedAfterRestartMillis() {
            for (int s = killSeq + 1; s < stream.echoes().length; s++) {
                if (stream.echoes()[s] > 0 && sentAtNanos[s] > killedAtNanos) {
                    return TimeUnit.NANOSECONDS.toMillis(sentAtNanos[s] - restartedAtNanos);
                }
            }
            return Long.MAX_VALUE;
        }

        int hostDuplicates() {
            int d = 0;
            for (var e : hostCounts.properties()) {
                d += Math.max(0, e.getValue().asInt() - 1);
            }
            return d;
        }

        int hostMissing() {
            return stream.sent() - hostCounts.size();
        }

        /** The numbers the host saw more than once that the guest sent after the kill (none can be the dead back-end's). */
        List<Integer> hostDuplicatesSentAfterTheKill() {
            List<Integer> late = new ArrayList<>();
            for (var e : hostCounts.properties()) {
                int seq = Integer.parseInt(e.getKey());
                if (e.getValue().asInt() > 1 && (seq >= sentAtNanos.length || sentAtNanos[seq] > killedAtNanos)) {
                    late.add(seq);
                }
            }
            return late;
        }
    }

    private static final Pattern RESUBMITTED = Pattern.compile("vring (\\d+): (\\d+) chain\\(s\\) were in flight when the last back-end stopped");

    /**
     * The transmit chains (odd vrings) a restarted daemon says it resubmitted from its inflight
     * record: those the dead one had taken and not returned. A chain it had already written to the
     * tap goes out again — the one window the spec's record cannot close (vhost-user.rst, "Inflight
     * I/O tracking": in-flight descriptors are resubmitted), so this bounds the host's duplicates.
     */
    static int resubmittedTransmitChains(String daemonLog) {
        int chains = 0;
        Matcher m = RESUBMITTED.matcher(daemonLog);
        while (m.find()) {
            if (Integer.parseInt(m.group(1)) % 2 == 1) {
                chains += Integer.parseInt(m.group(2));
            }
        }
        return chains;
    }

    private Outage streamAcrossAKill(ToyVm vm, NetNamespace ns, AtomicReference<VmmProcess> current, CheckedStart restart)
            throws Exception {
        int count = 9000;
        int killSeq = 1500;
        long[] sentAt = new long[count];
        AtomicLong killedAt = new AtomicLong();
        AtomicLong reconnectedAt = new AtomicLong();
        AtomicLong restartedAt = new AtomicLong();
        Path counts = dir.resolve("counts.json");
        Process echo = echo(ns, counts);
        CompletableFuture<Void> restarted = new CompletableFuture<>();
        GuestTraffic.StreamResult r;
        JsonNode host;
        try {
            r = vm.guest().traffic().udpStream(count, ECHO_PORT, 1000, seq -> {
                sentAt[seq] = System.nanoTime();
                if (seq == killSeq) {
                    Thread.ofPlatform().start(() -> {
                        try {
                            current.get().kill(); // SIGKILL, mid-stream
                            killedAt.set(System.nanoTime());
                            Thread.sleep(2_000);
                            restartedAt.set(System.nanoTime());
                            current.set(restart.start());
                            while (vm.backendConnection().reconnects() == 0 || !vm.net().linkUp()) {
                                Thread.sleep(5);
                            }
                            reconnectedAt.set(System.nanoTime());
                            restarted.complete(null);
                        } catch (Throwable t) {
                            restarted.completeExceptionally(t);
                        }
                    });
                }
            });
        } finally {
            host = stopEchoQuietly(echo, counts);
        }
        restarted.get(30, TimeUnit.SECONDS);
        assertTrue(host != null, "the echo wrote no counts");
        return new Outage(r, host, killedAt.get(), sentAt, killSeq, restartedAt.get(), reconnectedAt.get());
    }

    private static JsonNode stopEchoQuietly(Process echo, Path counts) {
        try {
            return stopEcho(echo, counts);
        } catch (Exception e) {
            echo.destroyForcibly();
            return null;
        }
    }

    @FunctionalInterface
    private interface CheckedStart {
        VmmProcess start() throws Exception;
    }

    private static long openFds() throws IOException {
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count();
        }
    }

    private static int javaThreads() {
        return Thread.getAllStackTraces().size();
    }

    private void killAndRestart(boolean listen, boolean inflight, int cycles) throws Exception {
        String label = (listen ? "server" : "client") + (inflight ? " with INFLIGHT_SHMFD" : " without inflight tracking");
        Path socket = dir.resolve("vu.sock");
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vrns"))) {
            String tap = persistentTap(ns);
            AtomicReference<VmmProcess> daemon = new AtomicReference<>();
            CheckedStart start = () -> daemon(ns, socket, tap, listen, inflight);
            try {
                ToyVm vm;
                if (listen) {
                    // the VMM listens first and waits for the daemon, which retries until the socket is there
                    CompletableFuture<ToyVm> made = CompletableFuture.supplyAsync(() -> new ToyVm(options(socket, true), quiet()));
                    daemon.set(start.start());
                    vm = made.get(30, TimeUnit.SECONDS);
                } else {
                    daemon.set(start.start());
                    vm = new ToyVm(options(socket, false), quiet());
                }
                try (vm) {
                    // what management hears (QMP NETDEV_VHOST_USER_CONNECTED / _DISCONNECTED come from these)
                    List<String> events = new CopyOnWriteArrayList<>();
                    vm.setBackendConnectionListener(new BackendConnectionListener() {
                        @Override
                        public void connected(String netdevId, String endpoint) {
                            events.add("connected " + netdevId + " " + endpoint);
                        }

                        @Override
                        public void disconnected(String netdevId, String reason) {
                            events.add("disconnected " + netdevId);
                        }
                    });
                    vm.run();
                    assertEquals(3, vm.guest().ping(3, "10.0.2.2", 1000), label + ": pings pass through the daemon");

                    // one outage under a numbered stream
                    long t0 = System.nanoTime();
                    Outage o = streamAcrossAKill(vm, ns, daemon, start);
                    VhostUserNetBackend.ConnectionStatus c = vm.backendConnection();
                    String facts = label + ": sent " + o.stream().sent() + ", echoed once " + o.stream().echoedOnce() + ", guest duplicates "
                            + o.stream().duplicates() + ", host duplicates " + o.hostDuplicates() + ", host missing " + o.hostMissing()
                            + ", VMM dropped with the link down " + vm.framesDroppedWhileBackendAway() + ", resumed within "
                            + o.resumedAfterRestartMillis() + " ms of the restart, serving again " + o.reconnectedAfterRestartMillis()
                            + " ms after the restart (" + o.reconnectedAfterKillMillis() + " ms after the kill), link changes " + vm.guest().nic().linkChanges() + ", " + c
                            + "\nthe daemon now: " + daemon.get().describe();
                    System.out.println(facts + " (" + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) + " ms)");
                    assertTrue(vm.guest().nic().linkChanges().containsAll(List.of("down", "up"))
                            && vm.guest().nic().linkChanges().indexOf("down") < vm.guest().nic().linkChanges().lastIndexOf("up"),
                            "the guest saw the link go down, then up: " + facts);
                    assertTrue(vm.guest().nic().linkUp(), facts);
                    assertEquals(0, o.stream().duplicates(), "no number came back to the guest twice: " + facts);
                    // a frame reaches the host twice only if the dead daemon had written it and not yet returned its chain
                    int resubmittedTx = resubmittedTransmitChains(daemon.get().stdout());
                    assertTrue(o.hostDuplicates() <= (inflight ? resubmittedTx : 0), "a number reached the host twice only if the dead "
                            + "daemon had it in flight (" + resubmittedTx + " transmit chain(s) resubmitted): " + facts);
                    assertEquals(List.of(), o.hostDuplicatesSentAfterTheKill(), "no number sent after the kill reached the host twice: " + facts);
                    assertTrue(o.reconnectedAfterRestartMillis() < 5_000, "the new daemon served the rings within 5 s of its start: " + facts);
                    assertTrue(o.stream().echoedOnce() > o.killSeq() + 1_000, "most of the stream after the outage came back: " + facts);
                    if (inflight) {
                        // the rings waited for the new back-end: what the guest sent meanwhile, and what the dead one had taken, go out once
                        assertEquals(0, o.hostMissing(), "with INFLIGHT_SHMFD no number sent is lost on the way to the host: " + facts);
                        assertEquals(0, vm.framesDroppedWhileBackendAway(), "nothing was dropped while the back-end was away: " + facts);
                    } else {
                        assertTrue(o.resumedAfterRestartMillis() < 5_000, "the stream resumed within 5 s of the restart: " + facts);
                        assertTrue(o.hostMissing() > 0 && vm.framesDroppedWhileBackendAway() > 0 && o.hostMissing()
                                <= vm.framesDroppedWhileBackendAway(), "without inflight tracking the outage loses frames, and the VMM "
                                + "counts every one it dropped: " + facts);
                    }
                    assertEquals(1, c.reconnects(), facts);
                    assertEquals(1, c.disconnects(), facts);
                    assertTrue(c.connected(), facts);
                    assertEquals(null, vm.netTransport().lastError(), "no ring error across the hand-overs: " + facts);
                    assertEquals(List.of("connected net0 " + socket, "disconnected net0", "connected net0 " + socket), events,
                            "management heard the back-end go and come back");

                    // many cycles: nothing accumulates in the VMM
                    long fds = 0;
                    int threads = 0;
                    long cyclesStarted = System.nanoTime();
                    for (int cycle = 1; cycle <= cycles; cycle++) {
                        daemon.get().kill();
                        long reconnectsBefore = vm.backendConnection().reconnects();
                        daemon.set(start.start());
                        await(() -> vm.backendConnection().reconnects() > reconnectsBefore && vm.guest().nic().linkUp(), 15_000,
                                label + " cycle " + cycle + ": the VMM never got the new daemon: " + vm.backendConnection());
                        assertTrue(vm.guest().ping(2, "10.0.2.2", 1000) >= 1, label + " cycle " + cycle + ": pings pass again");
                        if (cycle == 1) {
                            fds = openFds();
                            threads = javaThreads();
                        }
                    }
                    long cyclesMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - cyclesStarted);
                    System.out.println(label + ": " + cycles + " kill/restart cycles in " + cyclesMillis + " ms; fds " + fds + " -> "
                            + openFds() + ", threads " + threads + " -> " + javaThreads());
                    assertTrue(cycles == 0 || openFds() <= fds, label + ": no more fds after " + cycles + " cycles than after the first: " + fds
                            + " -> " + openFds());
                    assertTrue(cycles == 0 || javaThreads() <= threads, label + ": no more threads after " + cycles + " cycles than after the first: "
                            + threads + " -> " + javaThreads() + " " + Thread.getAllStackTraces().keySet());
                    assertEquals(cycles + 1, vm.backendConnection().reconnects(), vm.backendConnection().toString());
                    assertEquals(cycles + 2, events.stream().filter(e -> e.startsWith("connected")).count(), events.toString());
                    assertEquals(cycles + 1, events.stream().filter(e -> e.startsWith("disconnected")).count(), events.toString());
                }
            } finally {
                VmmProcess d = daemon.get();
                if (d != null) {
                    d.close();
                }
            }
            ns.exec("ip", "link", "del", tap);
        }
    }

    @Test
    void withoutInflightTrackingAClientLosesWhatTheLinkDownPlaneDroppedCountedAndNothingTwice() throws Exception {
        killAndRestart(false, false, 0);
    }

    @Test
    void withInflightTrackingAClientLosesNothingAndLeaksNothingOverManyRestarts() throws Exception {
        killAndRestart(false, true, CYCLES);
    }

    @Test
    void aServerAcceptsARestartedClientDaemonLosesNothingAndLeaksNothingOverManyRestarts() throws Exception {
        killAndRestart(true, true, CYCLES);
    }

    private static PrintStream quiet() {
        return new PrintStream(OutputStream.nullOutputStream());
    }
}
