package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The kernel vhost-net backend on a real vhost_net: boots the lab VM (QEMU + Debian's kernel) and
 * runs {@link VhostNetLabCases} there, from this test's class path over the read-only 9p root.
 * About a minute: it runs under CI (CI=true) or with VMM4J_LAB=1.
 */
class VhostNetLabTest {
    @Test
    void vhostNetCasesPassInTheLabVm() throws Exception {
        HostRequirements.requireLab("about a minute", "QEMU with 9p export of / and taps inside the lab VM");
        Path lab = findLab();
        Path out = Files.createTempDirectory("vmm4j-lab");
        List<String> cmd = new ArrayList<>(List.of(lab.toString(), "chroot", "--out", out.toString(), "--smp", "2", "--timeout", "280",
                "--", Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED",
                // a JVM crash inside the VM leaves its report where this test can show it
                "-XX:ErrorFile=" + out.resolve("hs_err_pid%p.log"), "-cp", System.getProperty("java.class.path"), VhostNetLabCases.class.getName(), out.toString()));
        // the lab shows the caller's working directory even under /tmp (which the guest covers with a
        // tmpfs), so run it from the repository root: every module's classes and jars are under it
        Path repository = lab.getParent().getParent().getParent();
        Process p = new ProcessBuilder(cmd).directory(repository.toFile()).redirectErrorStream(true).start();
        StringBuilder console = new StringBuilder();
        try (var lines = p.inputReader().lines()) {
            lines.forEach(line -> {
                console.append(line).append('\n');
                if (line.startsWith("lab:")) {
                    System.out.println(line); // progress in the test log
                }
            });
        }
        int exit = p.waitFor();
        Path report = out.resolve("report.json");
        assertTrue(Files.exists(report), "the lab wrote no report (exit " + exit + "):\n" + console + crashReports(out));
        JsonNode cases = new ObjectMapper().readTree(report.toFile());
        List<String> failed = new ArrayList<>();
        for (Map.Entry<String, JsonNode> c : cases.properties()) {
            if (!c.getValue().get("passed").asBoolean()) {
                failed.add(c.getKey() + ": " + c.getValue());
            }
        }
        assertEquals(List.of(), failed, "lab cases that failed");
        assertEquals(5, cases.size(), "every case ran");
        assertEquals(0, exit, console.toString() + crashReports(out));
    }

    /** The JVM crash reports (hs_err) the lab run left, whole, for the failure message; empty when there are none. */
    static String crashReports(Path out) throws java.io.IOException {
        StringBuilder s = new StringBuilder();
        try (var files = Files.list(out)) {
            for (Path p : files.filter(f -> f.getFileName().toString().startsWith("hs_err")).sorted().toList()) {
                s.append("\n==== ").append(p).append(" ====\n").append(Files.readString(p));
            }
        }
        return s.toString();
    }

    static Path findLab() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path lab = dir.resolve("scripts/lab/vmm4j-lab");
            if (Files.isExecutable(lab)) {
                return lab;
            }
        }
        throw new AssertionError("scripts/lab/vmm4j-lab not found above " + Path.of("").toAbsolutePath());
    }
}
