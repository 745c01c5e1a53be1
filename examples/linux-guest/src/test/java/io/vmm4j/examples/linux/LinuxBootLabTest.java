package io.vmm4j.examples.linux;

import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A stock Debian kernel boots on vmm4j's KVM code: the lab VM (QEMU TCG with a nested SVM CPU and
 * kvm_amd loaded, so it has a real /dev/kvm) runs {@link LinuxBoot} from this test's class path,
 * which boots the lab's own kernel with the guest initramfs of scripts/linux-guest until the guest
 * reboots. This host's /dev/kvm (kvm_pvm) hangs stock kernels, hence the lab. About a minute:
 * it runs under CI (CI=true) or with VMM4J_LAB=1.
 */
class LinuxBootLabTest {
    /** QEMU options that give the lab VM's CPU SVM with nested paging (see /work/shared/DESIGN.md). */
    static final String NESTED_KVM_CPU = "-cpu qemu64,+svm,+npt";

    @Test
    void aStockKernelBootsToInitAndRebootsCleanly() throws Exception {
        String out = bootInTheLab();
        int banner = out.indexOf("] Linux version ");
        int bannerSeen = out.indexOf("vmm4j: banner: [");
        int init = out.indexOf("vmm4j-guest: init started");
        int modules = out.indexOf("vmm4j-guest: loaded 8 modules");
        int rebooted = out.indexOf("vmm4j: the guest rebooted");
        String context = "\n--- lab console ---\n" + out;
        assertTrue(banner >= 0 && bannerSeen >= 0, "the kernel's banner reached our UART" + context);
        assertTrue(init > banner, "the kernel ran /init from our initramfs" + context);
        assertTrue(modules > init, "/init loaded the virtio-net modules" + context);
        assertTrue(rebooted > modules, "the run ended as a guest reboot (i8042 reset)" + context);
        assertTrue(out.contains("vmm4j: run ended: REBOOTED"), context);
    }

    @Test
    void linuxsVirtioNetDriverBindsToOurTransport() throws Exception {
        String out = bootInTheLab("--net");
        String context = "\n--- lab console ---\n" + out;
        String acked = line(out, "vmm4j: virtio-net: features acked by the driver ");
        assertTrue(acked != null && acked.contains("VERSION_1") && acked.contains("EVENT_IDX") && acked.contains("MRG_RXBUF")
                && acked.contains("CTRL_VQ"), "features the driver acked: " + acked + context);
        assertTrue(out.contains("vmm4j: virtio-net: status ACKNOWLEDGE|DRIVER|DRIVER_OK|FEATURES_OK"), "DRIVER_OK" + context);
        assertTrue(out.contains("vmm4j: virtio-net: queue 0 size 256 msix vector ")
                && !out.contains("vmm4j: virtio-net: queue 0 size 256 msix vector none"), "an MSI-X vector for the RX queue" + context);
        assertTrue(out.contains("vmm4j-guest: virtio0: device 0x0001 vendor 0x1af4 driver virtio_net"), "virtio_net bound" + context);
        assertTrue(out.contains("vmm4j-guest: interface eth0 address " + VirtioNetSlot.MAC), "eth0 with our MAC" + context);
        assertTrue(out.indexOf("vmm4j: the guest rebooted") > out.indexOf("vmm4j-guest: interface eth0"), context);
    }

    /** Boots the lab with nested KVM, runs the harness with {@code extra} options there; checks it ended with status 0. */
    private static String bootInTheLab(String... extra) throws Exception {
        boolean wanted = HostRequirements.inCi() || "1".equals(System.getenv("VMM4J_LAB"));
        Assumptions.assumeTrue(wanted, "the lab VM takes about a minute: set VMM4J_LAB=1 to run it (CI always does)");
        HostRequirements.requireRoot("QEMU with a 9p export of / and /dev/kvm inside the lab VM");
        Path repository = repositoryRoot();
        Path lab = repository.resolve("scripts/lab/vmm4j-lab");
        Path builder = repository.resolve("scripts/linux-guest/build-initramfs");
        String kernel = runOnHost(List.of(builder.toString(), "--print-kernel"));
        String initrd = runOnHost(List.of(builder.toString()));

        List<String> cmd = new ArrayList<>(List.of(lab.toString(), "chroot", "--qemu-args", NESTED_KVM_CPU, "--modules", "kvm_amd",
                "--timeout", "170", "--",
                Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), LinuxBoot.class.getName(),
                "--kernel", kernel, "--initrd", initrd, "--memory", "256", "--timeout", "120"));
        cmd.addAll(List.of(extra));
        // run from the repository root: the lab shows the caller's working directory inside the VM
        Process p = new ProcessBuilder(cmd).directory(repository.toFile()).redirectErrorStream(true).start();
        StringBuilder console = new StringBuilder();
        Thread reader = Thread.ofPlatform().start(() -> {
            try (var lines = p.inputReader(StandardCharsets.ISO_8859_1).lines()) {
                lines.forEach(line -> {
                    synchronized (console) {
                        console.append(line).append('\n');
                    }
                    if (line.startsWith("lab:") || line.startsWith("vmm4j: run ended") || line.startsWith("vmm4j: exit status")) {
                        System.out.println(line); // progress in the test log
                    }
                });
            }
        });
        if (!p.waitFor(200, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            reader.join(5000);
            fail("the lab did not finish in 200 s; console:\n" + console);
        }
        reader.join(5000);
        String out;
        synchronized (console) {
            out = console.toString();
        }
        String context = "\n--- lab console ---\n" + out;
        assertTrue(!out.contains("Kernel panic"), "no panic" + context);
        assertTrue(out.contains("vmm4j: exit status 0"), context);
        assertEquals(0, p.exitValue(), "the lab returns the harness's status" + context);
        return out;
    }

    private static String line(String text, String prefix) {
        return text.lines().filter(l -> l.startsWith(prefix)).findFirst().orElse(null);
    }

    private static String runOnHost(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0 || out.isEmpty()) {
            fail(String.join(" ", cmd) + " failed (exit " + (p.isAlive() ? "timeout" : p.exitValue()) + "): " + out);
        }
        return out;
    }

    static Path repositoryRoot() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            if (Files.isExecutable(dir.resolve("scripts/lab/vmm4j-lab")) && Files.isExecutable(dir.resolve("scripts/linux-guest/build-initramfs"))) {
                return dir;
            }
        }
        throw new AssertionError("scripts/lab/vmm4j-lab not found above " + Path.of("").toAbsolutePath());
    }
}
