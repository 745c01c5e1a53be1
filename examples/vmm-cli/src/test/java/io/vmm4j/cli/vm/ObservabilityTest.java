package io.vmm4j.cli.vm;

import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.tap.CommandResult;
import io.vmm4j.tap.NetNamespace;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The observability of {@code ./vmm run}, each in a fresh network namespace: Prometheus scrapes
 * taken during traffic show the queue counters grow, and a pcap written with {@code --pcap} (or
 * started and stopped over QMP) is decoded by tshark down to the ICMP echo request and reply.
 */
class ObservabilityTest {
    @TempDir
    Path dir;

    @BeforeEach
    void requirements() {
        HostRequirements.requireTapsAndNamespaces("network namespaces and taps");
        HostRequirements.requireCommand("socat", "socat");
    }

    private static List<String> in(NetNamespace ns) {
        return List.of("ip", "netns", "exec", ns.name());
    }

    /** GET /metrics from inside the namespace (the endpoint listens on the namespace's loopback). */
    private static String scrape(NetNamespace ns, int port) throws Exception {
        CommandResult r = ns.exec("sh", "-c", "printf 'GET /metrics HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' | socat -t 5 - TCP:127.0.0.1:" + port);
        String out = r.stdout();
        assertTrue(out.startsWith("HTTP/1.1 200"), "scrape failed:\n" + out + r.stderr());
        assertTrue(out.toLowerCase().contains("content-type: text/plain; version=0.0.4"), out);
        return out;
    }

    private static final Pattern SAMPLE = Pattern.compile("^(vmm4j_net_(?:packets|bytes)_total)\\{[^}]*direction=\"(rx|tx)\"[^}]*} ([0-9.E]+)$",
            Pattern.MULTILINE);

    private static Map<String, Double> netCounters(String scrape) {
        Map<String, Double> m = new HashMap<>();
        Matcher x = SAMPLE.matcher(scrape);
        while (x.find()) {
            m.put(x.group(1) + "/" + x.group(2), Double.parseDouble(x.group(3)));
        }
        return m;
    }

    @Test
    void prometheusScrapesDuringTrafficShowTheCountersGrow() throws Exception {
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"))) {
            ns.exec("ip", "link", "set", "lo", "up");
            try (VmmProcess vmm = VmmProcess.start(in(ns), "run", "--count", "20", "--interval", "100", "--serve", "5", "--metrics",
                    "0")) {
                vmm.awaitOutput("guest: virtio-net up", 30);
                Matcher url = Pattern.compile("metrics at http://127\\.0\\.0\\.1:(\\d+)/metrics").matcher(vmm.stdout());
                assertTrue(url.find(), "the boot log names the endpoint:\n" + vmm.describe());
                int port = Integer.parseInt(url.group(1));
                vmm.awaitOutput("icmp_seq=2 ", 10);
                String first = scrape(ns, port);
                Thread.sleep(800); // ~8 more pings
                String second = scrape(ns, port);
                Map<String, Double> a = netCounters(first);
                Map<String, Double> b = netCounters(second);
                assertEquals(4, a.size(), "rx/tx packets and bytes:\n" + first);
                for (String k : List.of("vmm4j_net_packets_total/rx", "vmm4j_net_packets_total/tx", "vmm4j_net_bytes_total/rx",
                        "vmm4j_net_bytes_total/tx")) {
                    assertTrue(b.get(k) > a.get(k), k + " grew between the scrapes: " + a.get(k) + " -> " + b.get(k));
                }
                for (String family : List.of("vmm4j_net_kicks_total", "vmm4j_net_interrupts_total", "vmm4j_net_interrupts_suppressed_total",
                        "vmm4j_net_drops_no_buffer_total", "vmm4j_net_port_errors_total", "vmm4j_virtio_needs_reset_total",
                        "vmm4j_virtio_notifies_total", "vmm4j_virtio_config_interrupts_total", "vmm4j_net_link_up", "vmm4j_virtio_status")) {
                    assertTrue(second.contains("\n" + family + "{"), family + " is exported:\n" + second);
                }
                assertTrue(second.contains("vmm4j_virtio_needs_reset_total{device=\"virtio-net\",id=\"net0\"} 0.0"), second);
                assertEquals(0, vmm.waitFor(60), vmm.describe());
            }
        }
    }

    @Test
    void metricsOnLoopbackInANamespaceWhoseLoopbackIsDownSaySo() throws Exception {
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"))) {
            // lo stays down, as in a new namespace; the tap the VM gets is the namespace's only address
            try (VmmProcess vmm = VmmProcess.start(in(ns), "run", "--count", "0", "--metrics", "127.0.0.1:9464")) {
                assertEquals(1, vmm.waitFor(60), vmm.describe());
                assertTrue(vmm.stderr().contains("vmm run: --metrics 127.0.0.1:9464: cannot listen there: "), vmm.describe());
                assertTrue(vmm.stderr().contains("the loopback interface is down, so nothing can connect to 127.0.0.1 (ip link set lo up; "
                        + "a new network namespace starts with lo down)"),
                        vmm.describe());
                assertFalse(vmm.stderr().contains("port taken") || vmm.stderr().contains("Exception"), vmm.describe());
            }
            List<String> links = ns.exec("ip", "-o", "link", "show").stdout().lines().toList();
            assertEquals(1, links.size(), "the tap went away with the VM:\n" + links);
        }
    }

    @Test
    void aPrivilegedPortWithoutTheCapabilitySaysWhichPortsAreAllowed() throws Exception {
        HostRequirements.requireCommand("setpriv", "util-linux");
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"))) {
            ns.exec("ip", "link", "set", "lo", "up");
            List<String> prefix = new java.util.ArrayList<>(in(ns));
            prefix.addAll(List.of("setpriv", "--bounding-set=-net_bind_service", "--inh-caps=-net_bind_service", "--"));
            try (VmmProcess vmm = VmmProcess.start(prefix, "run", "--port", "memory", "--count", "0", "--metrics", "127.0.0.1:80")) {
                assertEquals(1, vmm.waitFor(60), vmm.describe());
                int first = Integer.parseInt(ns.exec("cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start").stdout().strip());
                assertTrue(vmm.stderr().contains("vmm run: --metrics 127.0.0.1:80: cannot listen there: port 80 is below " + first
                        + " (net.ipv4.ip_unprivileged_port_start), so listening on it needs CAP_NET_BIND_SERVICE, which this process "
                        + "lacks; choose a port from " + first + " up, or 0 for any free port"), vmm.describe());
            }
        }
    }

    private static String tshark(Path file) throws Exception {
        Process p = new ProcessBuilder("tshark", "-r", file.toString(), "-Y", "icmp", "-T", "fields", "-e", "ip.src", "-e", "ip.dst",
                "-e", "icmp.type", "-e", "icmp.seq").redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), "tshark -r " + file + " failed:\n" + out);
        return out;
    }

    @Test
    void pcapOfAPingIsDecodedByTshark() throws Exception {
        HostRequirements.requireCommand("tshark", "tshark");
        Path pcap = dir.resolve("ping.pcap");
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"));
             VmmProcess vmm = VmmProcess.start(in(ns), "run", "--count", "3", "--pcap", pcap.toString())) {
            assertEquals(0, vmm.waitFor(60), vmm.describe());
        }
        String icmp = tshark(pcap);
        // the guest (10.0.2.15) pings the host side of the tap (10.0.2.2): echo request out (type 8), reply in (type 0)
        for (int seq = 1; seq <= 3; seq++) {
            assertTrue(icmp.contains("10.0.2.15\t10.0.2.2\t8\t" + seq), "echo request " + seq + " captured:\n" + icmp);
            assertTrue(icmp.contains("10.0.2.2\t10.0.2.15\t0\t" + seq), "echo reply " + seq + " captured:\n" + icmp);
        }
        assertTrue(Files.size(pcap) > 24, "frames after the pcap header");
    }

    @Test
    void qmpStartsAndStopsACaptureWhileTheHostPings() throws Exception {
        HostRequirements.requireCommand("tshark", "tshark");
        HostRequirements.requireCommand("ping", "iputils-ping");
        Path socket = dir.resolve("vm.qmp");
        Path pcap = dir.resolve("live.pcap");
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"));
             VmmProcess vmm = VmmProcess.start(in(ns), "run", "--count", "0", "--serve", "30", "--qmp", socket.toString())) {
            vmm.awaitOutput("guest: serving at 10.0.2.15", 30);
            try (SocatQmpClient c = SocatQmpClient.connect(socket)) {
                c.next();
                c.execute("{\"execute\": \"qmp_capabilities\"}");
                var started = c.execute("{\"execute\": \"x-vmm4j-pcap\", \"arguments\": {\"action\": \"start\", \"file\": \"" + pcap + "\"}}");
                assertEquals(pcap.toString(), started.get("return").get("file").asText(), c.transcript());
                CommandResult ping = ns.exec("ping", "-c", "2", "-i", "0.2", "-W", "2", "10.0.2.15");
                assertTrue(ping.stdout().contains("2 received"), ping.stdout());
                var stopped = c.execute("{\"execute\": \"x-vmm4j-pcap\", \"arguments\": {\"action\": \"stop\"}}");
                assertTrue(stopped.get("return").get("frames").asLong() >= 4, c.transcript());
                var again = c.execute("{\"execute\": \"x-vmm4j-pcap\", \"arguments\": {\"action\": \"stop\"}}");
                assertTrue(again.get("error").get("desc").asText().contains("no capture is running"), c.transcript());
                var bad = c.execute("{\"execute\": \"x-vmm4j-pcap\", \"arguments\": {\"action\": \"pause\"}}");
                assertTrue(bad.get("error").get("desc").asText().contains("start or stop"), c.transcript());
                c.execute("{\"execute\": \"quit\"}");
            }
            assertEquals(0, vmm.waitFor(30), vmm.describe());
        }
        String icmp = tshark(pcap);
        // now the host pings the guest: requests come in (rx), replies go out (tx)
        assertTrue(icmp.contains("10.0.2.2\t10.0.2.15\t8\t1"), icmp);
        assertTrue(icmp.contains("10.0.2.15\t10.0.2.2\t0\t1"), icmp);
        assertTrue(icmp.contains("10.0.2.15\t10.0.2.2\t0\t2"), icmp);
    }
}
