package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vmm4j.cli.Main;
import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.vmm4j.core.testing.LabOutput;

import static io.vmm4j.core.testing.LabOutput.line;
import static io.vmm4j.core.testing.LabOutput.runOnHost;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code ./vmm run --vcpu kvm --kernel ...} boots a stock Debian kernel as the VMM's guest: the lab
 * VM (QEMU TCG with a nested SVM CPU and kvm_amd, so it has a real /dev/kvm; this host's kvm_pvm
 * hangs stock kernels) runs {@link Main} from this test's class path with the lab's kernel and the
 * initramfs of scripts/linux-guest. Linux's own virtio_net binds to our device on a tap, its /init
 * pings the host and reboots, and the VMM ends with status 0. About a minute and a half per case:
 * it runs under CI (CI=true) or with VMM4J_LAB=1; the console is in the failure message.
 */
class LinuxGuestLabTest {
    /** QEMU options that give the lab VM's CPU SVM with nested paging (see /work/shared/DESIGN.md). */
    static final String NESTED_KVM_CPU = "-cpu qemu64,+svm,+npt";
    static final String APPEND = VmOptions.DEFAULT_APPEND + " vmm4j.workload=ping";

    @Test
    void linuxPingsTheHostOverATapWithTheEmulatedDataPlaneAndRebootsCleanly() throws Exception {
        Run run = runInTheLab("--backend", "emulated");
        assertLinuxPingedAndRebooted(run);
        assertTrue(run.summary().path("queues").path(0).path("packets").asLong() > 0,
                "the VMM's own data plane moved the frames: " + run.summary());
    }

    /** The same boot over vhost-net: the kernel's vhost worker moves the frames between the rings and the tap. */
    @Test
    void linuxPingsTheHostOverATapWithVhostNetAndRebootsCleanly() throws Exception {
        Run run = runInTheLab("--backend", "vhost-net");
        assertLinuxPingedAndRebooted(run);
        assertEquals("vhost-net", run.summary().path("backend").asText(), run.summary().toString());
    }

    /** Linux's driver reached DRIVER_OK with the features acked, /init pinged the host 5/5, the guest rebooted, the VMM exited 0. */
    private static void assertLinuxPingedAndRebooted(Run run) {
        String out = run.console();
        String context = "\n--- lab console ---\n" + out;
        assertTrue(out.contains("virtio-net on tap "), "the NIC is on a tap" + context);
        assertTrue(out.matches("(?s).*\\nvirtio-net: status \\S+ -> ACKNOWLEDGE\\|DRIVER\\|DRIVER_OK\\|FEATURES_OK\\n.*"),
                "Linux's driver reached DRIVER_OK" + context);
        String acked = line(out, "virtio-net: features acked   ");
        for (String f : List.of("VERSION_1", "MRG_RXBUF", "CTRL_VQ", "EVENT_IDX")) {
            assertTrue(acked != null && acked.matches(".*[\\[ ]" + f + "[,\\]].*"), f + " acked: " + acked + context);
        }
        assertTrue(out.matches("(?s).*\\nvirtio-net: queue 0 size 256 .* msix \\d+\\n.*"), "an MSI-X vector for the RX queue" + context);
        String ping = line(out, "vmm4j-result: {\"workload\":\"ping\"");
        assertTrue(ping != null && ping.contains("\"sent\":5,\"received\":5,"), "the guest pinged the host 5/5: " + ping + context);
        assertTrue(out.contains("vmm4j: the guest reset the CPU through the i8042 (reboot)"), context);
        assertTrue(out.contains("vmm4j: run ended: REBOOTED"), context);

        JsonNode summary = run.summary();
        assertEquals("REBOOTED", summary.path("linux").path("ending").asText(), summary + context);
        JsonNode result = summary.path("linux").path("results").path(0);
        assertEquals("ping", result.path("workload").asText(), summary.toString());
        assertEquals(5, result.path("received").asInt(), summary.toString());
        assertTrue(summary.path("features").toString().contains("\"VERSION_1\""), "the features Linux acked: " + summary);
        assertTrue(summary.path("error").isMissingNode(), summary.toString());
        assertEquals(0, run.exit(), "a clean reboot ends the VMM with status 0" + context);
    }

    record Run(String console, JsonNode summary, int exit) {
    }

    /** Boots the lab with nested KVM and runs {@code vmm run --vcpu kvm --kernel ... --json} there with {@code extra} flags. */
    private static Run runInTheLab(String... extra) throws Exception {
        boolean wanted = HostRequirements.inCi() || "1".equals(System.getenv("VMM4J_LAB"));
        Assumptions.assumeTrue(wanted, "the lab VM takes about a minute and a half: set VMM4J_LAB=1 to run it (CI always does)");
        HostRequirements.requireRoot("QEMU with a 9p export of / and /dev/kvm and taps inside the lab VM");
        Path repository = repositoryRoot();
        Path lab = repository.resolve("scripts/lab/vmm4j-lab");
        Path builder = repository.resolve("scripts/linux-guest/build-initramfs");
        String kernel = runOnHost(List.of(builder.toString(), "--print-kernel"));
        String initrd = runOnHost(List.of(builder.toString()));
        Path out = Files.createTempDirectory("vmm4j-linux-lab");

        List<String> cmd = new ArrayList<>(List.of(lab.toString(), "chroot", "--out", out.toString(), "--qemu-args", NESTED_KVM_CPU,
                "--modules", "kvm_amd", "--timeout", "260", "--",
                // the JSON summary into the shared directory; the boot log and the guest's console (stderr) to the lab's console
                "/bin/sh", "-c", "summary=$1; shift; exec \"$@\" >\"$summary\"", "sh", out.resolve("summary.json").toString(),
                Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED",
                "-XX:ErrorFile=" + out.resolve("hs_err_pid%p.log"), "-cp", System.getProperty("java.class.path"), Main.class.getName(),
                "run", "--vcpu", "kvm", "--kernel", kernel, "--initrd", initrd, "--memory", "256", "--port", "tap", "--append", APPEND,
                "--json"));
        cmd.addAll(List.of(extra));
        // run from the repository root: the lab shows the caller's working directory inside the VM
        Process p = new ProcessBuilder(cmd).directory(repository.toFile()).redirectErrorStream(true).start();
        String text = LabOutput.console(p, 300, line -> line.startsWith("lab:") || line.startsWith("vmm4j:") ||
                line.startsWith("virtio-net:") || line.contains("vmm4j-result: "));
        String context = "\n--- lab console ---\n" + text + VhostNetLabTest.crashReports(out);
        assertTrue(!text.contains("Kernel panic"), "no panic" + context);
        Path summary = out.resolve("summary.json");
        assertTrue(Files.size(summary) > 0, "the VMM printed its JSON summary (exit " + p.exitValue() + ")" + context);
        JsonNode json = new ObjectMapper().readTree(summary.toFile());
        System.out.println("summary: " + json); // the run's --json, in the test log
        return new Run(text, json, p.exitValue());
    }

    static Path repositoryRoot() {
        Path lab = VhostNetLabTest.findLab();
        return lab.getParent().getParent().getParent();
    }
}
