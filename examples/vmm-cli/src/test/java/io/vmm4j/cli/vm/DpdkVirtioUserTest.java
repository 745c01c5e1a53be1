package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.tap.CommandResult;
import io.vmm4j.tap.NetNamespace;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Our back-end daemon against a front-end we did not write: DPDK's virtio_user PMD in
 * {@code dpdk-testpmd}, whose guest memory is an unsealed memfd ({@code --no-huge}) or a file on
 * hugetlbfs ({@code --single-file-segments}). One daemon, on a tap in a fresh network namespace,
 * serves one testpmd after another: txonly (testpmd floods, the tap receives), rxonly (a UDP flood
 * into the tap reaches testpmd) and macswap (the flood comes back out of the tap), each with and
 * without hugepages, a few seconds of traffic each. testpmd's port statistics, the daemon's
 * per-front-end counters and the tap's kernel counters must agree.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DpdkVirtioUserTest {
    private static final String TAP = "vtdpdk0";
    /** A neighbour that does not exist: the flood's frames carry its MAC and leave through the tap. */
    private static final String FLOOD_TARGET = "10.0.2.99";
    /** Frames testpmd has put in a ring but the daemon had not taken yet when testpmd stopped it (or vice versa). */
    private static final int RING_SIZE = 256;
    private static final int MIN_PACKETS = 1_000;
    private static final Pattern FORWARD_STATS = Pattern.compile("Forward statistics for port 0\\s+-+\\s+RX-packets:\\s+(\\d+)\\s+"
            + "RX-dropped:\\s+(\\d+)\\s+RX-total:\\s+(\\d+)\\s+TX-packets:\\s+(\\d+)\\s+TX-dropped:\\s+(\\d+)");
    private static final Pattern PPS = Pattern.compile("(Rx|Tx)-pps:\\s+(\\d+)");

    private Path dir;
    private NetNamespace ns;
    private VmmProcess daemon;
    private Path socket;
    private Path stats;
    private int sessions;
    private Hugepages huge;

    @BeforeAll
    void startDaemon() throws Exception {
        HostRequirements.requireTapsAndNamespaces("a tap in a network namespace, and hugepages for DPDK");
        HostRequirements.requireCommand("socat", "socat");
        HostRequirements.requireCommand("dpdk-testpmd", "dpdk");
        dir = Files.createTempDirectory("vmm4j-dpdk");
        socket = dir.resolve("vu.sock");
        stats = dir.resolve("stats.json");
        ns = NetNamespace.create(ToyVmNetworkTest.unique("vtdp"));
        daemon = VmmProcess.start(List.of("ip", "netns", "exec", ns.name()), "vhost-user-backend", "--socket", socket.toString(),
                "--tap", TAP, "--host-ip", "10.0.2.2/24", "--stats-json", stats.toString());
        daemon.awaitOutput("listening on " + socket, 30);
        ns.ip("add a neighbour for the flood", "neigh", "add", FLOOD_TARGET, "lladdr", "02:00:00:00:00:99", "dev", TAP, "nud",
                "permanent");
        huge = Hugepages.reserve(600, 128, "testpmd -m 256 needs 128");
    }

    @AfterAll
    void stopAll() throws Exception {
        try {
            if (daemon != null) {
                daemon.terminate(15);
            }
        } finally {
            if (daemon != null) {
                daemon.close();
            }
            if (ns != null) {
                ns.close();
            }
            if (huge != null) {
                huge.close();
            }
            if (dir != null) {
                try (Stream<Path> files = Files.walk(dir)) {
                    for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                        Files.deleteIfExists(p);
                    }
                }
            }
        }
    }

    private long tapCounter(String name) {
        CommandResult r = ns.exec("cat", "/sys/class/net/" + TAP + "/statistics/" + name);
        assertTrue(r.succeeded(), r.commandLine() + ": " + r.stderr());
        return Long.parseLong(r.stdout().strip());
    }

    /** The daemon's --stats-json once it covers {@code n} finished front-ends. */
    private JsonNode awaitSession(int n) throws Exception {
        long deadline = System.currentTimeMillis() + 15_000;
        while (true) {
            if (Files.exists(stats)) {
                JsonNode s = new ObjectMapper().readTree(stats.toFile());
                if (s.get("sessions").size() >= n) {
                    return s.get("sessions").get(n - 1);
                }
            }
            assertTrue(System.currentTimeMillis() < deadline, "the daemon never reported front-end " + n + ":\n" + daemon.describe());
            Thread.sleep(50);
        }
    }

    @ParameterizedTest(name = "{0}, hugepages {1}, {2} rings")
    @CsvSource({"txonly, false, split", "txonly, true, split", "rxonly, false, split", "rxonly, true, split", "macswap, false, split",
            "macswap, true, split", "txonly, false, packed", "rxonly, true, packed", "macswap, true, packed"})
    void testpmdVirtioUserPassesTrafficThroughTheDaemon(String mode, boolean hugepages, String ring) throws Exception {
        if (hugepages) {
            HostRequirements.require(huge.problem() == null, "2 MiB hugepages for DPDK: " + huge.problem());
        }
        String prefix = "vmm4j" + ProcessHandle.current().pid() + mode + (hugepages ? "h" : "n") + ring;
        // packed_vq=1: virtio_user asks for VIRTIO_F_RING_PACKED, which the daemon offers
        List<String> cmd = new ArrayList<>(List.of("dpdk-testpmd", "-l", "0-1", "--no-pci", "--file-prefix", prefix,
                "--vdev", "net_virtio_user0,path=" + socket + ",queues=1" + (ring.equals("packed") ? ",packed_vq=1" : ""), "-m", "256"));
        if (hugepages) {
            // one file per segment list, on our own mount: the fd virtio_user sends for each region
            cmd.addAll(List.of("--single-file-segments", "--huge-dir", huge.dir().toString()));
        } else {
            cmd.add("--no-huge"); // anonymous memory in one unsealed memfd
        }
        // without a terminal testpmd needs --stats-period (or it stops at the end of stdin)
        cmd.addAll(List.of("--", "--forward-mode=" + mode, "--stats-period", "1", "--auto-start", "--total-num-mbufs=8192"));
        System.out.println("running: " + String.join(" ", cmd));

        long tapRxBefore = tapCounter("rx_packets");
        long tapTxBefore = tapCounter("tx_packets");
        int session = ++sessions;
        Path out = dir.resolve(prefix + ".log");
        Process testpmd = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
        String log;
        try {
            try {
                daemon.awaitOutput("front-end " + session + ": queue pair 0 started (" + ring + " rings", 30);
            } catch (AssertionError e) {
                throw new AssertionError("testpmd said:\n" + Files.readString(out) + "\n" + e.getMessage(), e);
            }
            awaitText(testpmd, out, "Port statistics", 30); // forwarding runs
            if (mode.equals("txonly")) {
                Thread.sleep(2_000);
            } else {
                // 64-byte UDP datagrams as fast as socat writes them, for 2 s
                CommandResult flood = ns.exec("timeout", "2", "socat", "-u", "-b", "64", "/dev/zero", "UDP-SENDTO:" + FLOOD_TARGET + ":9");
                assertEquals(124, flood.exitCode(), "socat floods until timeout stops it: " + flood.stderr());
                Thread.sleep(300); // the last frames drain
            }
        } finally {
            testpmd.destroy(); // SIGTERM: testpmd stops forwarding, prints its totals and closes the port
            if (!testpmd.waitFor(15, TimeUnit.SECONDS)) {
                testpmd.destroyForcibly();
                testpmd.waitFor(5, TimeUnit.SECONDS);
            }
            log = Files.readString(out);
            removeDpdkFiles(prefix);
        }
        assertFalse(testpmd.isAlive(), "testpmd is gone");
        Matcher m = FORWARD_STATS.matcher(log);
        assertTrue(m.find(), "testpmd printed no forward statistics:\n" + log + "\ndaemon:\n" + daemon.describe());
        long pmdRx = Long.parseLong(m.group(1));
        long pmdTx = Long.parseLong(m.group(4));
        long pmdTxDropped = Long.parseLong(m.group(5));
        JsonNode s = awaitSession(session);
        long daemonRx = s.get("queues").get(0).get("packets").asLong();
        long daemonTx = s.get("queues").get(1).get("packets").asLong();
        long tapRx = tapCounter("rx_packets") - tapRxBefore; // frames the daemon wrote into the tap
        long tapTx = tapCounter("tx_packets") - tapTxBefore; // frames the daemon read from the tap
        System.out.printf("%s, hugepages %s: testpmd RX %d TX %d (TX dropped %d, ring full), daemon rx0 %d tx0 %d, tap rx %d tx %d, "
                + "last pps %s%n", mode, hugepages, pmdRx, pmdTx, pmdTxDropped, daemonRx, daemonTx, tapRx, tapTx, lastPps(log));

        String why = "testpmd:\n" + log.lines().filter(l -> l.contains("packets") || l.contains("virtio")).toList()
                + "\ndaemon:\n" + daemon.stdout();
        assertTrue(daemon.stdout().contains("front-end " + session + ": memory table"), "the daemon mapped testpmd's memory: " + why);
        assertFalse(daemon.stdout().contains("front-end " + session + ": refused"), why);
        assertEquals("the front-end closed the connection", s.get("end").asText(), why);
        if (mode.equals("txonly") || mode.equals("macswap")) {
            assertTrue(pmdTx >= MIN_PACKETS, "testpmd sent at least " + MIN_PACKETS + " frames: " + why);
            assertTrue(daemonTx <= pmdTx && daemonTx >= pmdTx - RING_SIZE, "the daemon's tx0 (" + daemonTx
                    + ") took every frame testpmd sent (" + pmdTx + ") but those left in the ring at the stop: " + why);
            assertEquals(daemonTx, tapRx, "every frame the daemon transmitted reached the tap: " + why);
        } else {
            assertEquals(0, pmdTx, why);
            assertEquals(0, daemonTx, why);
        }
        if (mode.equals("rxonly") || mode.equals("macswap")) {
            assertTrue(pmdRx >= MIN_PACKETS, "testpmd received at least " + MIN_PACKETS + " frames of the flood: " + why);
            assertTrue(pmdRx <= daemonRx && pmdRx >= daemonRx - RING_SIZE, "testpmd received (" + pmdRx + ") what the daemon's rx0 "
                    + "delivered (" + daemonRx + ") but those still in the ring at the stop: " + why);
            assertTrue(daemonRx <= tapTx, "the daemon delivered only frames the tap gave it: " + why);
        }
        if (mode.equals("macswap")) {
            assertEquals(pmdRx, pmdTx + pmdTxDropped, "macswap sends back (or drops on a full ring) every frame it receives: " + why);
        }
    }

    private static void awaitText(Process p, Path out, String text, long seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (!Files.readString(out).contains(text)) {
            if (!p.isAlive()) {
                throw new AssertionError("testpmd exited (" + p.exitValue() + ") before '" + text + "':\n" + Files.readString(out));
            }
            assertTrue(System.nanoTime() < deadline, "testpmd never printed '" + text + "':\n" + Files.readString(out));
            Thread.sleep(50);
        }
    }

    /** The last Rx-pps / Tx-pps testpmd showed. */
    private static String lastPps(String log) {
        String rx = "0";
        String tx = "0";
        Matcher m = PPS.matcher(log);
        while (m.find()) {
            if (m.group(1).equals("Rx")) {
                rx = m.group(2);
            } else {
                tx = m.group(2);
            }
        }
        return "rx " + rx + ", tx " + tx;
    }

    /** testpmd leaves its runtime directory and, with hugepages, its segment files behind: remove this run's. */
    private void removeDpdkFiles(String prefix) throws IOException {
        Path runtime = Path.of("/var/run/dpdk", prefix);
        if (Files.exists(runtime)) {
            try (Stream<Path> files = Files.walk(runtime)) {
                for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
        if (huge.dir() != null) {
            try (Stream<Path> files = Files.list(huge.dir())) {
                for (Path p : files.toList()) {
                    if (p.getFileName().toString().startsWith(prefix)) {
                        Files.deleteIfExists(p);
                    }
                }
            }
        }
    }
}
