package io.vmm4j.examples.linux;

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
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A stock Debian kernel boots on vmm4j's KVM code: the lab VM (QEMU TCG with a nested SVM CPU and
 * kvm_amd loaded, so it has a real /dev/kvm) runs {@link LinuxBoot} from this test's class path,
 * which boots the lab's own kernel with the guest initramfs of scripts/linux-guest until the guest
 * reboots. This host's /dev/kvm (kvm_pvm) hangs stock kernels, hence the lab. About a minute per
 * case: it runs under CI (CI=true) or with VMM4J_LAB=1.
 *
 * <p>The tap cases run the guest's workloads (scripts/linux-guest/init) over a real tap in the lab,
 * host side 10.0.2.2/24: the guest pings the host, the host pings the guest while it serves, and
 * the offloads Linux acked show on both sides.
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
        assertTrue(out.contains("virtio-pci 0000:00:01.0: PCI->APIC IRQ transform: INT A -> IRQ 17"),
                "the MP table routes the slot's INTA to IOAPIC pin 17" + context);
        assertTrue(!out.contains("can't find IRQ for PCI INT A"), context);
    }

    /** With MSI-X off (pci=nomsi) Linux's virtio_pci falls back to INTA, which the MP table routes: pings pass on it. */
    @Test
    void pingsOverIntxWhenLinuxTurnsMsiOff() throws Exception {
        String out = bootInTheLab("--port", "tap", "--append", LinuxBoot.DEFAULT_APPEND + " pci=nomsi", "--workload", "ping,serve",
                "--host-ping", "5");
        String context = "\n--- lab console ---\n" + out;
        assertTrue(out.contains("vmm4j: virtio-net: queue 0 size 256 msix vector none"), "no MSI-X vector: INTx" + context);
        assertPingsBothWays(out);
        assertTrue(out.matches("(?s).*queue interrupts [1-9][0-9]*/[1-9][0-9]*.*"), "interrupts went through the VMM's INTx line" + context);
    }

    /**
     * The emulated data plane (the VMM's net-io thread) between Linux's virtio_net and a tap: ping
     * both ways 5/5, a line typed into the UART reaches the guest's /init, pktgen's TX flood and a
     * host flood pass, and the checksum/TSO features Linux acked are what its ethtool and the tap show.
     */
    @Test
    void pingsBothWaysOverATapWithTheEmulatedDataPlane() throws Exception {
        String out = bootInTheLab("--port", "tap", "--backend", "emulated", "--workload", "console,ping,serve,ethtool,pktgen,count",
                "--console-input", "typed into the UART", "--host-ping", "5", "--host-flood", "100",
                "--param", "pktgen_count=2000", "--param", "count_seconds=4", "--param", "console_seconds=60");
        String context = "\n--- lab console ---\n" + out;
        assertTrue(out.contains("vmm4j: data plane emulated: frames moved by the VMM's own thread net-io-0 "), context);
        assertTrue(out.contains("vmm4j-result: {\"workload\":\"console\",\"line\":\"typed into the UART\",\"length\":19}"),
                "the guest read the line typed into the UART" + context);
        assertPingsBothWays(out);
        assertOffloadsAcked(out);
        String pktgen = result(out, "pktgen");
        assertTrue(pktgen.contains("{\"size\":64,\"packets\":2000,") && pktgen.contains("{\"size\":1500,\"packets\":2000,")
                && !pktgen.contains("\"error\":") && !pktgen.matches(".*\"errors\":[1-9].*"), "pktgen sent 2000 frames of each size: " + pktgen + context);
        String count = result(out, "count");
        assertTrue(count.matches(".*\"rx_packets\":[1-9][0-9]*,.*"), "the guest counted the host's flood: " + count + context);
    }

    /** The same link over vhost-net: the kernel's vhost worker moves the frames between the rings and the tap. */
    @Test
    void pingsBothWaysOverATapWithVhostNet() throws Exception {
        String out = bootInTheLab("--port", "tap", "--backend", "vhost-net", "--workload", "ping,serve,ethtool,pktgen",
                "--host-ping", "5", "--param", "pktgen_count=2000");
        String context = "\n--- lab console ---\n" + out;
        assertTrue(out.contains("data plane vhost-net over tap "), context);
        assertTrue(out.matches("(?s).*vmm4j: data plane vhost-net: frames moved by the kernel thread vhost-\\d+, pid \\d+ .*"),
                "the kernel's vhost worker served the rings" + context);
        assertPingsBothWays(out);
        assertOffloadsAcked(out);
        assertTrue(result(out, "pktgen").contains("{\"size\":64,\"packets\":2000,"), context);
    }

    private static void assertPingsBothWays(String out) {
        String context = "\n--- lab console ---\n" + out;
        String ping = result(out, "ping");
        assertTrue(ping.contains("\"sent\":5,\"received\":5,"), "the guest pinged the host 5/5: " + ping + context);
        String serve = result(out, "serve");
        assertTrue(serve.contains("\"in_echos\":5,\"out_echo_reps\":5,"), "the guest answered 5 echo requests: " + serve + context);
        String host = line(out, "vmm4j-host-result: {\"command\":\"ping\"");
        assertTrue(host != null && host.contains("\"target\":\"10.0.2.15\",\"sent\":5,\"received\":5,"),
                "the host pinged the guest 5/5: " + host + context);
    }

    /**
     * With a tap the device offers checksum and TSO; Linux's driver acks them, shows them on (not
     * fixed) in ethtool -k, and the tap's offloads follow the GUEST_* bits it acked.
     */
    private static void assertOffloadsAcked(String out) {
        String context = "\n--- lab console ---\n" + out;
        String acked = line(out, "vmm4j: virtio-net: features acked by the driver ");
        for (String f : List.of("CSUM", "GUEST_CSUM", "HOST_TSO4", "HOST_TSO6", "GUEST_TSO4", "GUEST_TSO6", "MRG_RXBUF", "EVENT_IDX", "VERSION_1")) {
            assertTrue(acked != null && acked.matches(".*[\\[ ]" + f + "[,\\]].*"), f + " acked: " + acked + context);
        }
        String ethtool = result(out, "ethtool");
        assertTrue(ethtool.contains("\"tx-checksumming\":\"on\"") && ethtool.contains("\"tcp-segmentation-offload\":\"on\"")
                && ethtool.contains("\"rx-checksumming\":\"on [fixed]\""), "Linux uses the offloads: " + ethtool + context);
        assertTrue(out.matches("(?s).*vmm4j: tap \\S+ offloads set from the driver's GUEST_\\* features \\(TUNSETOFFLOAD\\): "
                + "TUN_F_CSUM\\|TUN_F_TSO4\\|TUN_F_TSO6.*"), "the tap takes partial checksums and TSO for the guest" + context);
        assertTrue(out.matches("(?s).*vmm4j: host ethtool -k \\S+: tx-checksumming: on.*")
                && out.matches("(?s).*vmm4j: host ethtool -k \\S+: tcp-segmentation-offload: on.*"), "the host's ethtool agrees" + context);
    }

    /** The guest's result line for {@code workload} (its JSON), or fails showing the console. */
    private static String result(String out, String workload) {
        String l = line(out, "vmm4j-result: {\"workload\":\"" + workload + "\"");
        if (l == null) {
            fail("no result line for workload " + workload + "\n--- lab console ---\n" + out);
        }
        return l.substring("vmm4j-result: ".length());
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
                "--timeout", "200", "--",
                Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), LinuxBoot.class.getName(),
                "--kernel", kernel, "--initrd", initrd, "--memory", "256", "--timeout", "150"));
        cmd.addAll(List.of(extra));
        // run from the repository root: the lab shows the caller's working directory inside the VM
        Process p = new ProcessBuilder(cmd).directory(repository.toFile()).redirectErrorStream(true).start();
        String out = LabOutput.console(p, 230, line -> line.startsWith("lab:") || line.startsWith("vmm4j: run ended") ||
                line.startsWith("vmm4j: exit status") || line.contains("vmm4j-result: ") ||
                line.startsWith("vmm4j-host-result: ") || line.startsWith("vmm4j: data plane "));
        String context = "\n--- lab console ---\n" + out;
        assertTrue(!out.contains("Kernel panic"), "no panic" + context);
        assertTrue(out.contains("vmm4j: exit status 0"), context);
        assertEquals(0, p.exitValue(), "the lab returns the harness's status" + context);
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
