package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vmm4j.cli.Main;
import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.core.testing.LabOutput;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static io.vmm4j.core.testing.LabOutput.runOnHost;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code ./vmm compare --guest linux} inside the lab VM (QEMU TCG with nested SVM and kvm_amd: a
 * real /dev/kvm, and /dev/vhost-net): a stock Debian kernel boots once per data plane — emulated,
 * vhost-net, vhost-user (the back-end daemon as its own process), and emulated-sync (no ioeventfd)
 * — runs pktgen at 64 and 1500 B, counts a host UDP flood and pings the host; every row has
 * measured values, the VMM's own threads make no syscalls per packet with vhost-net against some
 * with emulated, and kicks exit only without ioeventfd. About three minutes:
 * it runs under CI (CI=true) or with VMM4J_LAB=1; the lab console and each boot's log are in the
 * failure message.
 */
class LinuxCompareLabTest {
    @Test
    void compareRunsTheLinuxGuestOverEmulatedVhostNetAndVhostUser() throws Exception {
        HostRequirements.requireLab("about three minutes", "QEMU with a 9p export of / and /dev/kvm and taps inside the lab VM");
        Path repository = LinuxGuestLabTest.repositoryRoot();
        Path lab = repository.resolve("scripts/lab/vmm4j-lab");
        Path builder = repository.resolve("scripts/linux-guest/build-initramfs");
        String kernel = runOnHost(List.of(builder.toString(), "--print-kernel"));
        String initrd = runOnHost(List.of(builder.toString()));
        Path out = Files.createTempDirectory("vmm4j-linux-compare-lab");
        Path json = out.resolve("compare.json");
        Path table = out.resolve("table.md");

        List<String> cmd = new ArrayList<>(List.of(lab.toString(), "chroot", "--out", out.toString(), "--qemu-args",
                LinuxGuestLabTest.NESTED_KVM_CPU, "--modules", "kvm_amd", "--timeout", "420", "--",
                "/bin/sh", "-c", "table=$1; shift; exec \"$@\" >\"$table\"", "sh", table.toString(),
                Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED",
                "-XX:ErrorFile=" + out.resolve("hs_err_pid%p.log"), "-cp", System.getProperty("java.class.path"), Main.class.getName(),
                "compare", "--guest", "linux", "--kernel", kernel, "--initrd", initrd, "--modes",
                "emulated,vhost-net,vhost-user,emulated-sync",
                "--duration", "1", "--json", json.toString(), "--console-dir", out.toString()));
        long start = System.nanoTime();
        Process p = new ProcessBuilder(cmd).directory(repository.toFile()).redirectErrorStream(true).start();
        String console = LabOutput.console(p, 480, line -> line.startsWith("lab:") || line.contains("compare"));
        double seconds = (System.nanoTime() - start) / 1e9;
        String context = "\n--- lab console ---\n" + console + VhostNetLabTest.crashReports(out) + bootLogs(out);
        String markdown = Files.exists(table) ? Files.readString(table) : "";
        System.out.println("compare --guest linux in the lab (" + Math.round(seconds) + " s):\n" + markdown);
        assertTrue(Files.exists(json) && Files.size(json) > 0, "compare wrote its --json (lab exit " + p.exitValue() + ")" + context);
        JsonNode report = new ObjectMapper().readTree(json.toFile());
        System.out.println("json: " + report);
        assertTrue(report.path("nested").asBoolean(), "the lab VM is a virtual machine, and the table says so: " + report);
        assertTrue(markdown.contains("KVM here is nested, so absolute speeds are meaningless"), markdown);

        JsonNode rows = report.path("rows");
        assertEquals(4, rows.size(), rows.toString());
        for (JsonNode r : rows) {
            String mode = r.path("mode").asText();
            String where = mode + ": " + r + context;
            assertTrue(r.path("error").isNull(), where);
            for (int size : new int[] {64, 1500}) {
                JsonNode run = null;
                for (JsonNode g : r.path("pktgen")) {
                    if (g.path("size").asInt() == size) {
                        run = g;
                    }
                }
                assertNotNull(run, "a pktgen result at " + size + " B: " + where);
                assertTrue(run.path("pps").asLong() > 0, "pktgen " + size + " B sent: " + where);
            }
            assertTrue(r.path("flood").path("received").asLong() > 0, "the guest counted the host's flood: " + where);
            assertTrue(r.path("ping").path("received").asInt() > 0 && r.path("ping").path("rttP50Ms").asDouble() > 0, "RTT: " + where);
            assertTrue(r.path("steadyTx").path("packets").asLong() > 0 && r.path("steadyRx").path("packets").asLong() > 0,
                    "steady windows with traffic: " + where);
            assertTrue(markdown.contains("| " + mode + " |"), markdown);
        }
        JsonNode emulated = rows.get(0);
        JsonNode vhostNet = rows.get(1);
        assertEquals("vhost-net", vhostNet.path("mode").asText());
        // the article's claim: the kernel worker moves the frames, the VMM's threads do nothing per packet
        for (String dir : List.of("steadyTx", "steadyRx")) {
            assertTrue(vhostNet.path(dir).path("vmmSyscallsPerPacket").asDouble() < 0.05, "vhost-net " + dir + ": " + vhostNet + context);
            assertTrue(emulated.path(dir).path("vmmSyscallsPerPacket").asDouble() > 0.1, "emulated " + dir + ": " + emulated + context);
        }
        // and the exit counter does count: without ioeventfd (emulated-sync) the guest's kicks are exits
        JsonNode sync = rows.get(3);
        assertEquals("emulated-sync", sync.path("mode").asText());
        assertTrue(sync.path("steadyTx").path("exitsPerPacket").asDouble() > 0.01, "emulated-sync: kicks exit: " + sync + context);
        for (JsonNode r : List.of(emulated, vhostNet, rows.get(2))) {
            assertTrue(r.path("steadyTx").path("exitsPerPacket").asDouble() < 0.01, "kicks by ioeventfd: no exits: " + r + context);
        }
        assertTrue(seconds < 420, "the whole lab run took " + seconds + " s");
    }

    /** Each boot's VMM log and console (compare --console-dir), the last 60 lines of each. */
    private static String bootLogs(Path out) throws java.io.IOException {
        StringBuilder s = new StringBuilder();
        try (Stream<Path> files = Files.list(out)) {
            List<Path> logs = files.filter(f -> f.getFileName().toString().endsWith(".log") && !f.getFileName().toString().startsWith("hs_err"))
                    .sorted().toList();
            for (Path p : logs) {
                List<String> lines = Files.readAllLines(p, java.nio.charset.StandardCharsets.ISO_8859_1);
                s.append("\n==== ").append(p).append(" (last lines) ====\n")
                        .append(lines.subList(Math.max(0, lines.size() - 60), lines.size()).stream().collect(Collectors.joining("\n")));
            }
        }
        return s.toString();
    }
}
