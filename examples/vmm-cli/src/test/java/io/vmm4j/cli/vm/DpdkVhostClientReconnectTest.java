package io.vmm4j.cli.vm;

import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.vhost.user.VhostUserNetBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DPDK's vhost PMD in client mode ({@code --vdev net_vhost0,iface=PATH,client=1}) as the back-end
 * of our VMM in server mode ({@code --socket-listen}). The first testpmd answers ARP and pings
 * ({@code icmpecho}), so the guest learns the port's MAC; every later one runs {@code 5tswap}, which
 * sends each frame back with its MAC and IP addresses and UDP ports swapped: the guest's numbered
 * UDP datagrams return as echoes, and its pings come back as requests it answers and then as
 * replies. testpmd is killed with SIGKILL mid-stream and started again 2 s later: the guest sees
 * the link go down and up, the stream resumes within 5 s of the restart, no number comes back
 * twice, and what was lost is counted; 20 more kill/restart cycles leave the VMM with no more fds
 * or threads. testpmd runs without hugepages ({@code --no-huge}: its memory is a memfd), so this
 * needs only dpdk-testpmd.
 */
class DpdkVhostClientReconnectTest {
    private static final int CYCLES = Integer.getInteger("vmm4j.dpdkReconnectCycles", 20);
    private static final int STREAM = 6000;
    private static final int KILL_AT = 1500;

    private Path dir;
    private Process testpmd;

    @BeforeEach
    void requirements() throws IOException {
        HostRequirements.requireRoot("dpdk-testpmd");
        HostRequirements.requireCommand("dpdk-testpmd", "dpdk");
        dir = Files.createTempDirectory("vmm4j-dpdk-vhost");
    }

    @AfterEach
    void cleanUp() throws Exception {
        stopTestpmd();
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    private int started;

    /** testpmd with the vhost PMD as a client of {@code socket} in {@code mode} (icmpecho, 5tswap); its output goes to a file. */
    private Path startTestpmd(Path socket, String mode) throws IOException {
        started++;
        Path out = dir.resolve("testpmd" + started + ".txt");
        String prefix = "vmm4jvh" + ProcessHandle.current().pid();
        // without a terminal testpmd needs --stats-period (or it stops at the end of stdin)
        testpmd = new ProcessBuilder(List.of("dpdk-testpmd", "-l", "0-1", "--no-pci", "--file-prefix", prefix, "--no-huge", "-m", "256",
                "--vdev", "net_vhost0,iface=" + socket + ",client=1,queues=1", "--", "--forward-mode=" + mode, "--stats-period", "1",
                "--auto-start", "--total-num-mbufs=8192")).redirectErrorStream(true).redirectOutput(out.toFile()).start();
        return out;
    }

    private void killTestpmd() throws InterruptedException {
        testpmd.destroyForcibly(); // SIGKILL: no goodbye on the socket beyond the kernel closing it
        assertTrue(testpmd.waitFor(10, TimeUnit.SECONDS), "testpmd did not die");
    }

    private void stopTestpmd() throws InterruptedException {
        if (testpmd != null && testpmd.isAlive()) {
            testpmd.destroy();
            if (!testpmd.waitFor(10, TimeUnit.SECONDS)) {
                testpmd.destroyForcibly();
                testpmd.waitFor(5, TimeUnit.SECONDS);
            }
        }
    }

    private static void await(BooleanSupplier condition, long millis, String what) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        while (!condition.getAsBoolean()) {
            assertTrue(System.currentTimeMillis() < deadline, what);
            Thread.sleep(20);
        }
    }

    private static long openFds() throws IOException {
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count();
        }
    }

    /** Pings until {@code n} in a row are answered (testpmd's port comes up a moment after the rings). */
    private static int pingUntilAnswered(ToyVm vm, int n, long millis) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        int got = 0;
        while (System.currentTimeMillis() < deadline && got < n) {
            got = vm.guest().ping(n, "10.0.2.2", 1000);
        }
        return got;
    }

    @Test
    void testpmdsVhostClientIsKilledMidStreamAndStartedAgainAndTheVmmInServerModeLosesNoNumberTwice() throws Exception {
        Path socket = dir.resolve("vmm.sock");
        VmOptions o = VmOptions.builder().dataPlane(DataPlane.VHOST_USER).count(0).intervalMs(20).socket(socket.toString())
                .socketListen(true).build();
        CompletableFuture<ToyVm> made = CompletableFuture.supplyAsync(() -> new ToyVm(o, new PrintStream(OutputStream.nullOutputStream())));
        Path log = startTestpmd(socket, "icmpecho");
        ToyVm vm;
        try {
            vm = made.get(60, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError("the VMM got no back-end from testpmd:\n" + Files.readString(log), e);
        }
        try (vm) {
            vm.run();
            assertEquals(3, pingUntilAnswered(vm, 3, 20_000), "testpmd's icmpecho answers ARP and pings:\n" + Files.readString(log));
            restart(vm, socket, "the first 5tswap testpmd");
            assertEquals(3, pingUntilAnswered(vm, 3, 20_000), "pings through 5tswap:\n" + read(current));

            // a numbered stream at 1000/s; at number KILL_AT testpmd is killed and a new one started 2 s later
            long[] sentAt = new long[STREAM];
            AtomicLong restartedAt = new AtomicLong();
            CompletableFuture<Void> restarted = new CompletableFuture<>();
            GuestTraffic.StreamResult r = vm.guest().traffic().udpStream(STREAM, 7, 1000, seq -> {
                sentAt[seq] = System.nanoTime();
                if (seq == KILL_AT) {
                    Thread.ofPlatform().start(() -> {
                        try {
                            killTestpmd();
                            Thread.sleep(2_000);
                            restartedAt.set(System.nanoTime());
                            restart(vm, socket, "testpmd started mid-stream");
                            restarted.complete(null);
                        } catch (Throwable t) {
                            restarted.completeExceptionally(t);
                        }
                    });
                }
            });
            restarted.get(60, TimeUnit.SECONDS);
            long resumedMillis = Long.MAX_VALUE;
            int resumedAt = STREAM;
            for (int seq = KILL_AT + 1; seq < STREAM; seq++) {
                if (r.echoes()[seq] > 0 && sentAt[seq] > restartedAt.get()) {
                    resumedMillis = TimeUnit.NANOSECONDS.toMillis(sentAt[seq] - restartedAt.get());
                    resumedAt = seq;
                    break;
                }
            }
            int lostAfterResume = 0;
            for (int seq = resumedAt; seq < STREAM; seq++) {
                lostAfterResume += r.echoes()[seq] == 0 ? 1 : 0;
            }
            String facts = "sent " + r.sent() + ", echoed once " + r.echoedOnce() + ", duplicates " + r.duplicates() + ", missing "
                    + r.missing() + ", VMM dropped while testpmd was away " + vm.framesDroppedWhileBackendAway() + ", resumed "
                    + resumedMillis + " ms after the restart, link changes " + vm.guest().nic().linkChanges() + ", " + vm.backendConnection()
                    + "\n" + read(current);
            System.out.println("testpmd vhost client, stream across a kill: " + facts);
            List<String> changes = vm.guest().nic().linkChanges();
            assertTrue(changes.contains("down") && changes.indexOf("down") < changes.lastIndexOf("up") && vm.guest().nic().linkUp(),
                    "the guest saw the link go down, then up: " + facts);
            assertEquals(0, r.duplicates(), "no number came back twice: " + facts);
            assertTrue(resumedMillis < 5_000, "the stream resumed within 5 s of the restart: " + facts);
            assertEquals(STREAM, r.sent(), facts);
            // how long the outage lasts depends on how fast testpmd starts on a loaded machine; once it serves, nothing is lost
            assertEquals(0, lostAfterResume, "every number sent after the stream resumed (at " + resumedAt + ") came back: " + facts);
            assertTrue(STREAM - resumedAt >= 500, "the stream resumed with at least 500 numbers to go: " + facts);
            long dropped = vm.framesDroppedWhileBackendAway();
            assertTrue(r.missing() >= dropped && r.missing() - dropped <= 256, "the numbers lost are the frames the VMM counted as "
                    + "dropped while testpmd was away, plus at most a ring's worth testpmd held when it was killed: " + facts);

            // many cycles: nothing accumulates in the VMM
            long fds = 0;
            int threads = 0;
            long t0 = System.nanoTime();
            for (int cycle = 1; cycle <= CYCLES; cycle++) {
                killTestpmd();
                restart(vm, socket, "cycle " + cycle);
                assertEquals(3, pingUntilAnswered(vm, 3, 20_000), "cycle " + cycle + ": pings through the restarted testpmd:\n"
                        + read(current));
                if (cycle == 1) {
                    fds = openFds();
                    threads = Thread.getAllStackTraces().size();
                }
            }
            VhostUserNetBackend.ConnectionStatus c = vm.backendConnection();
            System.out.println("testpmd vhost client: " + CYCLES + " kill/restart cycles in " + TimeUnit.NANOSECONDS.toMillis(System.nanoTime()
                    - t0) + " ms; fds " + fds + " -> " + openFds() + ", threads " + threads + " -> " + Thread.getAllStackTraces().size()
                    + "; " + c);
            assertEquals(CYCLES + 2, c.reconnects(), c.toString());
            assertEquals(0, c.refused(), "testpmd offers what the device was built on every time: " + c);
            assertTrue(openFds() <= fds, "no more fds after " + CYCLES + " cycles than after the first: " + fds + " -> " + openFds());
            assertTrue(Thread.getAllStackTraces().size() <= threads, "no more threads: " + threads + " -> "
                    + Thread.getAllStackTraces().size());
            assertEquals(null, vm.netTransport().lastError(), "no ring error across the restarts");
        }
    }

    private volatile Path current;

    /** Starts a 5tswap testpmd (killing a live one first) and waits until the VMM has it serving the rings with the link up. */
    private void restart(ToyVm vm, Path socket, String what) throws Exception {
        if (testpmd != null && testpmd.isAlive()) {
            killTestpmd();
        }
        await(() -> !vm.backendConnection().connected(), 10_000, what + ": the VMM never saw the last testpmd go");
        long before = vm.backendConnection().reconnects();
        Path log = startTestpmd(socket, "5tswap");
        current = log;
        await(() -> vm.backendConnection().reconnects() > before && vm.net().linkUp(), 30_000,
                what + ": testpmd did not come back: " + vm.backendConnection() + "\n" + read(log));
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (IOException e) {
            return "<" + e.getMessage() + ">";
        }
    }
}
