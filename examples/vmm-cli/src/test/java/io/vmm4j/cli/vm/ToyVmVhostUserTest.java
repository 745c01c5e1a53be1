package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.tap.CommandResult;
import io.vmm4j.cli.qmp.QmpTestClient;
import io.vmm4j.tap.NetNamespace;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code ./vmm run --backend vhost-user} against {@code ./vmm vhost-user-backend}, two processes in a
 * fresh network namespace: the VMM keeps the control plane, the daemon serves the rings over a tap.
 */
class ToyVmVhostUserTest {
    private Path dir;

    @BeforeEach
    void requirements() throws IOException {
        HostRequirements.requireRoot("network namespaces and taps");
        HostRequirements.requireFile("/dev/net/tun", "modprobe tun");
        HostRequirements.requireCommand("ip", "iproute2");
        HostRequirements.requireCommand("ping", "iputils-ping");
        dir = Files.createTempDirectory("vu-e2e");
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

    /** RX and TX packets of {@code tap} as {@code ip -s link} shows them (the kernel's view: RX is what the guest sent). */
    private static long[] tapPackets(NetNamespace ns, String tap) {
        CommandResult r = ns.exec("ip", "-s", "link", "show", "dev", tap);
        Matcher m = Pattern.compile("RX:[^\\n]*\\n\\s*\\d+\\s+(\\d+)[^\\n]*\\n\\s*TX:[^\\n]*\\n\\s*\\d+\\s+(\\d+)").matcher(r.stdout());
        assertTrue(m.find(), "cannot read the packet counters of " + tap + " from:\n" + r.stdout() + r.stderr());
        return new long[] {Long.parseLong(m.group(1)), Long.parseLong(m.group(2))};
    }

    /** The daemon's --stats-json once it covers {@code sessions} finished front-ends (written after each one goes). */
    private static JsonNode awaitStats(Path file, int sessions) throws Exception {
        long deadline = System.currentTimeMillis() + 10_000;
        while (true) {
            if (Files.exists(file)) {
                JsonNode s = new ObjectMapper().readTree(file.toFile());
                if (s.get("sessions").size() >= sessions) {
                    return s;
                }
            }
            assertTrue(System.currentTimeMillis() < deadline, "the daemon never wrote " + file + " for " + sessions + " front-end(s)");
            Thread.sleep(50);
        }
    }

    private VmmProcess startDaemon(NetNamespace ns, Path socket, String tap, Path stats) throws Exception {
        VmmProcess daemon = VmmProcess.start(in(ns), "vhost-user-backend", "--socket", socket.toString(), "--tap", tap,
                "--stats-json", stats.toString());
        daemon.awaitOutput("vhost-user-backend: listening on " + socket, 30);
        return daemon;
    }

    /** A --host-ip without a prefix is a /24 for the daemon as for ./vmm run: the tap it creates covers the guest's subnet. */
    @Test
    void aHostAddressWithoutPrefixGoesOnTheDaemonsNewTapAsASlash24() throws Exception {
        String tap = ToyVmNetworkTest.unique("vt");
        Path socket = dir.resolve("vu.sock");
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"));
             VmmProcess daemon = VmmProcess.start(in(ns), "vhost-user-backend", "--socket", socket.toString(), "--tap", tap,
                     "--host-ip", "10.0.2.2")) {
            daemon.awaitOutput("vhost-user-backend: listening on " + socket, 30);
            String addresses = ns.exec("ip", "-4", "-o", "addr", "show", "dev", tap).stdout();
            assertTrue(addresses.contains("inet 10.0.2.2/24 "), "the tap's address: " + addresses + "\n" + daemon.describe());
            assertTrue(daemon.stdout().contains("tap " + tap + " created, host side 10.0.2.2/24"), daemon.describe());
        }
    }

    @Test
    void fiveOfFiveRepliesWithTheRingsServedByTheDaemonAndNoVmmThreadOnThem() throws Exception {
        String tap = ToyVmNetworkTest.unique("vt");
        Path socket = dir.resolve("vu.sock");
        Path stats = dir.resolve("stats.json");
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"));
             VmmProcess daemon = startDaemon(ns, socket, tap, stats)) {
            long[] before = tapPackets(ns, tap);
            try (VmmProcess vmm = VmmProcess.start(in(ns), "run", "--backend", "vhost-user", "--socket", socket.toString(),
                    "--count", "5", "--json", "--serve", "2")) {
                vmm.awaitOutput("guest: serving at", 60);
                List<String> vmmThreads = vmm.threadNames();
                List<String> daemonThreads = daemon.threadNames();
                assertTrue(vmmThreads.contains("vcpu0"), "the listing sees the VMM's own threads: " + vmmThreads);
                assertFalse(vmmThreads.stream().anyMatch(t -> t.startsWith("net-io")),
                        "no VMM thread serves a data ring (the emulated backend's would be net-io-N): " + vmmThreads);
                assertTrue(daemonThreads.contains("net-io-0"), "the daemon's engine thread serves them: " + daemonThreads);

                assertEquals(0, vmm.waitFor(60), vmm.describe());
                JsonNode j = vmm.json();
                assertEquals("vhost-user", j.get("backend").asText());
                assertEquals(5, j.get("ping").get("received").asInt(), vmm.describe());
                assertTrue(j.get("guestLink").get("up").asBoolean());
                for (JsonNode q : j.get("queues")) {
                    assertEquals(0, q.get("packets").asLong() + q.get("kicks").asLong() + q.get("interrupts").asLong(),
                            "the VMM's own counters stay zero, the data plane is the daemon: " + q);
                }
            }
            daemon.awaitOutput("front-end 1 disconnected", 10);
            String log = daemon.stdout();
            assertTrue(log.contains("front-end 1: features acked") && log.contains("VERSION_1"), log);
            JsonNode s = awaitStats(stats, 1);
            JsonNode rx = s.get("queues").get(0);
            JsonNode tx = s.get("queues").get(1);
            assertTrue(tx.get("packets").asLong() >= 5 && tx.get("kicks").asLong() >= 1, "daemon tx0 (guest -> tap): " + tx);
            assertTrue(rx.get("packets").asLong() >= 5 && rx.get("interrupts").asLong() >= 1, "daemon rx0 (tap -> guest): " + rx);
            assertTrue(s.get("lastAckedFeatureNames").toString().contains("MRG_RXBUF"), s.toString());
            long[] after = tapPackets(ns, tap);
            assertTrue(after[0] - before[0] >= 5, "the tap received the guest's frames: RX " + before[0] + " -> " + after[0]);
            assertTrue(after[1] - before[1] >= 5, "the tap sent the host's answers: TX " + before[1] + " -> " + after[1]);
            assertTrue(after[0] - before[0] <= tx.get("packets").asLong(), "every frame the tap got came through the daemon's tx0");

            int code = daemon.terminate(15);
            assertTrue(code == 0 || code == 143, "the daemon stops on SIGTERM: " + code + "\n" + daemon.describe());
            assertTrue(daemon.stdout().contains("stopped after 1 front-end(s)"), daemon.describe());
        }
    }

    @Test
    void withPackedRingsTheDaemonServesTheJavaGuestsPackedQueues() throws Exception {
        String tap = ToyVmNetworkTest.unique("vt");
        Path socket = dir.resolve("vu.sock");
        Path stats = dir.resolve("stats.json");
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"));
             VmmProcess daemon = startDaemon(ns, socket, tap, stats)) {
            try (VmmProcess vmm = VmmProcess.start(in(ns), "run", "--backend", "vhost-user", "--socket", socket.toString(),
                    "--ring", "packed", "--count", "5", "--json")) {
                assertEquals(0, vmm.waitFor(60), vmm.describe() + "\ndaemon:\n" + daemon.describe());
                JsonNode j = vmm.json();
                assertTrue(j.get("features").toString().contains("RING_PACKED"), j.get("features").toString());
                assertTrue(vmm.stderr().contains(", rings 256/256 packed"), vmm.stderr());
                assertEquals(5, j.get("ping").get("received").asInt(), vmm.describe() + "\ndaemon:\n" + daemon.describe());
            }
            daemon.awaitOutput("front-end 1 disconnected", 10);
            JsonNode s = awaitStats(stats, 1);
            assertTrue(s.get("lastAckedFeatureNames").toString().contains("RING_PACKED"), "the daemon served packed rings: " + s);
            assertTrue(s.get("queues").get(1).get("packets").asLong() >= 5, "daemon tx0 (guest -> tap): " + s.get("queues").get(1));
            assertTrue(s.get("queues").get(0).get("packets").asLong() >= 5, "daemon rx0 (tap -> guest): " + s.get("queues").get(0));
        }
    }

    @Test
    void withTheLinkDownTheDaemonsRingsAreStoppedNothingPassesAndTrafficResumesWhereItStopped() throws Exception {
        String tap = ToyVmNetworkTest.unique("vt");
        Path socket = dir.resolve("vu.sock");
        Path stats = dir.resolve("stats.json");
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"));
             VmmProcess daemon = startDaemon(ns, socket, tap, stats)) {
            // the VMM in this JVM: only the daemon's tap needs the namespace with the host side 10.0.2.2
            VmOptions o = VmOptions.builder().dataPlane(DataPlane.VHOST_USER).count(0).intervalMs(20).socket(socket.toString()).build();
            try (ToyVm vm = new ToyVm(o, new PrintStream(OutputStream.nullOutputStream()))) {
                vm.run();
                assertEquals(3, vm.guest().ping(3, "10.0.2.2", 1000), "link up: pings pass through the daemon");
                vm.net().setLinkUp(false); // what QMP set_link off does
                assertEquals(0, vm.guest().ping(3, "10.0.2.2", 500), "link down: nothing passes");
                long dropped = vm.net().counters().stream().mapToLong(c -> c.dropsLinkDown).sum();
                assertTrue(dropped >= 3, "the guest's echo requests were consumed and dropped in the VMM: " + vm.net().counters());
                vm.net().setLinkUp(true);
                assertEquals(3, vm.guest().ping(3, "10.0.2.2", 1000), "link up again: the daemon serves the rings from where they stopped");
                assertEquals(null, vm.netTransport().lastError(), "no ring error: positions were kept across both hand-overs");
            }
            daemon.awaitOutput("front-end 1 disconnected", 10);
            assertFalse(daemon.stdout().contains("ERROR"), "the daemon saw a clean stop and restart of its rings: " + daemon.describe());
        }
    }

    @Test
    void killingTheDaemonMidTrafficSetsTheLinkDownAndTheVmmRunsToTheEnd() throws Exception {
        String tap = ToyVmNetworkTest.unique("vt");
        Path socket = dir.resolve("vu.sock");
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"));
             VmmProcess daemon = startDaemon(ns, socket, tap, dir.resolve("stats.json"));
             VmmProcess vmm = VmmProcess.start(in(ns), "run", "--backend", "vhost-user", "--socket", socket.toString(),
                     "--count", "0", "--serve", "8", "--json", "--qmp", dir.resolve("vm.qmp").toString())) {
            vmm.awaitOutput("guest: serving at 10.0.2.15", 60);
            QmpTestClient qmp = QmpTestClient.connect(dir.resolve("vm.qmp"));
            qmp.next(); // the greeting
            qmp.execute("{\"execute\": \"qmp_capabilities\"}");
            JsonNode reply = qmp.execute("{\"execute\": \"x-vmm4j-query-backend\"}");
            JsonNode backend = reply.path("return");
            assertTrue(backend.isObject(), "x-vmm4j-query-backend answers with vhost-user: " + reply);
            assertEquals("vhost-user", backend.get("name").asText(), backend.toString());
            assertEquals(socket.toString(), backend.get("port-name").asText(), "no port in the VMM: the back-end's socket " + backend);
            Path pingLog = dir.resolve("ping.txt");
            Process ping = new ProcessBuilder("ip", "netns", "exec", ns.name(), "ping", "-i", "0.2", "-W", "1", "10.0.2.15")
                    .redirectErrorStream(true).redirectOutput(pingLog.toFile()).start();
            try {
                long deadline = System.currentTimeMillis() + 15_000;
                while (Files.readString(pingLog).split("bytes from", -1).length <= 3) {
                    assertTrue(System.currentTimeMillis() < deadline, "no pings answered: " + Files.readString(pingLog) + vmm.describe());
                    Thread.sleep(50);
                }
                daemon.kill(); // mid-traffic: the host pings every 200 ms
                vmm.awaitOutput("is gone", 5);
                vmm.awaitOutput("guest: link is down", 5);
                JsonNode gone = qmp.awaitEvent("NETDEV_VHOST_USER_DISCONNECTED");
                assertEquals("net0", gone.get("data").get("netdev-id").asText(), "management hears of it: " + gone);
                qmp.close();
            } finally {
                ping.destroy();
                ping.waitFor();
            }
            int code = vmm.waitFor(30);
            JsonNode j = vmm.json();
            assertEquals(1, code, "the run reports the lost back-end in its exit status\n" + vmm.describe());
            assertFalse(j.get("guestLink").get("up").asBoolean(), "the guest read LINK_UP clear after the config interrupt");
            assertTrue(j.get("error").asText().contains(socket.toString()) && j.get("error").asText().contains("gone"), j.toString());
            assertTrue(j.get("echoRequestsAnswered").asLong() >= 3, "pings were answered through the daemon before it died: " + j);
            assertTrue(vmm.stderr().contains("the VMM keeps running"), vmm.describe());
            assertFalse(vmm.stderr().contains("Exception"), "no stack trace: " + vmm.describe());
        }
    }
}
