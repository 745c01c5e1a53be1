package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.core.testing.LabOutput;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static io.vmm4j.core.testing.LabOutput.line;
import static io.vmm4j.core.testing.LabOutput.runOnHost;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@code ./vmm run --vcpu kvm --kernel ...} boots a stock Debian kernel as the VMM's guest, over
 * every data plane. This host's /dev/kvm (kvm_pvm) hangs stock kernels, so the lab VM runs it: QEMU
 * TCG with a nested SVM CPU and kvm_amd gives it a real /dev/kvm, and it has /dev/vhost-net. One lab
 * boot runs {@link LinuxLabDriver} with every scenario in turn; each starts the VMM as its own process
 * with the lab's kernel and the initramfs of scripts/linux-guest, and Linux's own virtio_net drives
 * our transport: pings both ways, a link flap through QMP set_link, an unbind and rebind of the
 * driver (a device reset), two queue pairs with two vCPUs and MTU 9000, a line typed on the VMM's
 * stdin, reboot ending the VMM with status 0, a panic ending it non-zero. About five minutes: it runs
 * under CI (CI=true) or with VMM4J_LAB=1; each failure shows that scenario's log.
 */
class LinuxGuestLabTest {
    /** QEMU options that give the lab VM's CPU SVM with nested paging (see /work/shared/DESIGN.md). */
    static final String NESTED_KVM_CPU = "-cpu qemu64,+svm,+npt";
    static final List<String> SCENARIOS = List.of("emulated", "emulated-sync", "vhost-net", "vhost-user", "panic");

    private static Path out;
    private static String labConsole;

    /** One scenario's outcome: the VMM's log (with the driver's lines), its --json summary, its exit status. */
    record Run(String name, String log, JsonNode summary, int exit) {
        String context() {
            return "\n--- " + name + ".log ---\n" + log;
        }

        /** The guest's result lines for {@code workload}, in order (their JSON). */
        List<JsonNode> results(String workload) {
            List<JsonNode> r = new ArrayList<>();
            for (JsonNode n : summary.path("linux").path("results")) {
                if (n.path("workload").asText().equals(workload)) {
                    r.add(n);
                }
            }
            return r;
        }

        /** The driver's host-side results (lab-host-result lines) of {@code command}, in order. */
        List<JsonNode> hostResults(String command) throws IOException {
            List<JsonNode> r = new ArrayList<>();
            for (String l : log.lines().filter(l -> l.startsWith("lab-host-result: ")).toList()) {
                JsonNode n = new ObjectMapper().readTree(l.substring("lab-host-result: ".length()));
                if (n.path("command").asText().equals(command)) {
                    r.add(n);
                }
            }
            return r;
        }
    }

    @BeforeAll
    static void runTheLab() throws Exception {
        HostRequirements.requireLab("about five minutes", "QEMU with a 9p export of / and /dev/kvm and taps inside the lab VM");
        Path repository = repositoryRoot();
        Path lab = repository.resolve("scripts/lab/vmm4j-lab");
        Path builder = repository.resolve("scripts/linux-guest/build-initramfs");
        String kernel = runOnHost(List.of(builder.toString(), "--print-kernel"));
        String initrd = runOnHost(List.of(builder.toString()));
        out = Files.createTempDirectory("vmm4j-linux-lab");

        List<String> cmd = new ArrayList<>(List.of(lab.toString(), "chroot", "--out", out.toString(), "--qemu-args", NESTED_KVM_CPU,
                "--modules", "kvm_amd", "--timeout", "900", "--",
                Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED", "-Xmx128m", "-XX:TieredStopAtLevel=1",
                "-XX:+UseSerialGC",
                "-cp", System.getProperty("java.class.path"), LinuxLabDriver.class.getName(), out.toString(), kernel, initrd));
        cmd.addAll(SCENARIOS);
        // run from the repository root: the lab shows the caller's working directory inside the VM
        Process p = new ProcessBuilder(cmd).directory(repository.toFile()).redirectErrorStream(true).start();
        labConsole = LabOutput.console(p, 960, l -> l.startsWith("lab:") || l.startsWith("lab-host: scenario"));
        System.out.println("lab results in " + out);
    }

    private static Run run(String name) throws IOException {
        Path log = out.resolve(name + ".log");
        Path exit = out.resolve(name + ".exit");
        if (!Files.exists(exit)) {
            fail("scenario " + name + " did not finish\n--- lab console ---\n" + labConsole
                    + (Files.exists(log) ? "\n--- " + name + ".log ---\n" + Files.readString(log) : "") + VhostNetLabTest.crashReports(out));
        }
        String text = Files.readString(log);
        Path json = out.resolve(name + ".json");
        JsonNode summary = Files.size(json) == 0 ? new ObjectMapper().createObjectNode() : new ObjectMapper().readTree(json.toFile());
        return new Run(name, text + VhostNetLabTest.crashReports(out), summary, Integer.parseInt(Files.readString(exit).strip()));
    }

    // ---- one data plane per boot: pings both ways, link flap, driver rebind, reboot ----

    /** The VMM's own net-io threads move the frames; two pairs on two vCPUs, jumbo frames with the MTU offer, console input. */
    @Test
    void emulatedDataPlane() throws Exception {
        Run r = run("emulated");
        assertPlaneScenario(r);
        assertOffloads(r);
        assertMultiQueue(r);
        assertTrue(acked(r).matches(".*[\\[ ]MTU[,\\]].*"), "the MTU offer was acked" + r.context());
        assertRings(r, false);
        String threads = line(r.log(), "lab-host: VMM threads: ");
        assertTrue(threads != null && threads.contains("net-io-0") && threads.contains("net-io-1"), "a VMM thread per pair: " + threads + r.context());
        JsonNode ping = r.hostResults("ping").get(0);
        assertTrue(ping.path("vmm_syscalls").asLong() >= 2L * ping.path("received").asLong(),
                "the VMM's threads read and write the tap for every frame of the host's pings: " + ping + r.context());
        for (JsonNode q : r.summary().path("queues")) {
            assertTrue(q.path("packets").asLong() > 0, "every queue of both pairs moved frames through the VMM: " + q + r.context());
        }
    }

    /** Notify on the vCPU thread, and with pci=nomsi the INTA line the MP table routes instead of MSI-X. */
    @Test
    void emulatedSyncDataPlaneOverIntx() throws Exception {
        Run r = run("emulated-sync");
        assertPlaneScenario(r);
        assertTrue(r.log().matches("(?s).*\\nvirtio-net: queue 0 size 256 .* msix none\\n.*"), "no MSI-X vector: INTx" + r.context());
        assertTrue(r.log().contains("PCI->APIC IRQ transform: INT A -> IRQ 17"), "Linux routed INTA through the MP table" + r.context());
        assertRings(r, true);
    }

    /**
     * The kernel's vhost worker moves the frames: no VMM thread on a ring and (nearly) no VMM syscall
     * while the host pings, the worker's CPU time grows; two pairs, jumbo frames without an MTU offer
     * (vhost-net does not report VIRTIO_NET_F_MTU; eth0's MTU is set anyway).
     */
    @Test
    void vhostNetDataPlane() throws Exception {
        Run r = run("vhost-net");
        assertPlaneScenario(r);
        assertOffloads(r);
        assertMultiQueue(r);
        assertFalse(acked(r).matches(".*[\\[ ]MTU[,\\]].*"), "no MTU offer over vhost-net" + r.context());
        assertRings(r, false); // asked for with --ring packed, but vhost-net does not serve packed rings
        assertTrue(r.log().contains("virtio-net: --ring packed: the vhost-net data plane does not serve packed rings"), r.context());
        assertEquals("vhost-net", r.summary().path("backend").asText(), r.summary().toString());
        assertNoVmmDataPlane(r);
        JsonNode ping = r.hostResults("ping").get(0);
        assertTrue(ping.path("vhost_workers").asInt() >= 1 && ping.path("vhost_cpu_ms").asDouble() > 0,
                "the vhost-PID worker ran while the host pinged: " + ping + r.context());
        for (JsonNode q : r.summary().path("queues")) {
            assertEquals(0, q.path("packets").asLong(), "the VMM moved no frame: " + q + r.context());
        }
    }

    /** Our back-end daemon, a second process, serves the rings. */
    @Test
    void vhostUserDataPlane() throws Exception {
        Run r = run("vhost-user");
        assertPlaneScenario(r);
        assertOffloads(r);
        assertEquals("vhost-user", r.summary().path("backend").asText(), r.summary().toString());
        assertNoVmmDataPlane(r);
        assertRings(r, true);
        String daemon = Files.readString(out.resolve("vhost-user.daemon.log"));
        assertTrue(daemon.contains("queue pair 0 started (packed rings"), "the daemon serves packed rings:\n" + daemon);
        assertTrue(daemon.matches("(?s).*queue rx0: packets [1-9]\\d*,.*") && daemon.matches("(?s).*queue tx0: packets [1-9]\\d*,.*"),
                "the daemon moved the frames:\n" + daemon);
    }

    /**
     * The run's common part: DRIVER_OK; the guest pings the host 5/5 (three times), the host the guest
     * (twice); the QMP link flap reaches the guest's carrier; the driver's unbind resets the device
     * and its bind brings it back with traffic; the guest's reboot ends the VMM with status 0.
     */
    private static void assertPlaneScenario(Run r) throws IOException {
        String c = r.context();
        assertDriverOk(r);
        List<JsonNode> pings = r.results("ping");
        assertEquals(3, pings.size(), "three guest pings: before the link flap, after it, after the rebind" + c);
        for (JsonNode p : pings) {
            assertEquals(5, p.path("received").asInt(), "the guest pinged the host 5/5: " + p + c);
        }
        List<JsonNode> serves = r.results("serve");
        assertEquals(2, serves.size(), c);
        List<JsonNode> host = r.hostResults("ping");
        assertEquals(2, host.size(), "the host pinged the guest at each serve" + c);
        for (JsonNode h : host) {
            assertEquals(5, h.path("received").asInt(), "the host pinged the guest 5/5: " + h + c);
        }
        JsonNode link = r.results("linkwait").get(0);
        assertTrue(link.path("down").asBoolean() && link.path("up").asBoolean(), "QMP set_link off/on reached the guest's carrier: " + link + c);
        assertTrue(r.log().contains("\"up\":false}} -> {\"return\":{}}") && r.log().contains("\"up\":true}} -> {\"return\":{}}"),
                "QMP answered both set_link commands" + c);
        assertTrue(r.log().matches("(?s).*lab-host: qmp \\{\"execute\":\"system_reset\"} -> \\{\"error\":\\{\"class\":\"GenericError\","
                + "\"desc\":\"system_reset: a Linux guest booted with --kernel cannot be reset by the VMM: .*"), "system_reset refused with a reason" + c);
        JsonNode rebind = r.results("rebind").get(0);
        assertTrue(rebind.path("gone").asBoolean() && rebind.path("back").asBoolean(), "the driver unbound and bound again: " + rebind + c);
        int unbind = r.log().indexOf("vmm4j-guest: workload rebind");
        assertTrue(unbind > 0 && r.log().indexOf("virtio-net: status ACKNOWLEDGE|DRIVER|DRIVER_OK|FEATURES_OK -> RESET", unbind) > 0
                && r.log().indexOf("-> ACKNOWLEDGE|DRIVER|DRIVER_OK|FEATURES_OK\n", unbind) > 0, "the unbind reset the device, the bind set it up again" + c);
        assertRebooted(r);
    }

    /** No VMM thread serves a ring, and the VMM made (nearly) no read/write syscalls while the host pinged the guest. */
    private static void assertNoVmmDataPlane(Run r) throws IOException {
        String threads = line(r.log(), "lab-host: VMM threads: ");
        assertTrue(threads != null && !threads.contains("net-io"), "no VMM data-plane thread: " + threads + r.context());
        for (JsonNode ping : r.hostResults("ping")) {
            assertTrue(ping.path("vmm_syscalls").asLong() <= 2, "the VMM stayed out of the host's " + ping.path("received").asInt() * 2
                    + " frames: " + ping + r.context());
        }
    }

    /**
     * {@code ethtool -L eth0 combined 1} then {@code 2} in the guest reach the device through our
     * control queue, and with both pairs on two vCPUs traffic flows on both in each direction; the
     * jumbo pings pass both ways; the line typed on the VMM's stdin reaches /init.
     */
    private static void assertMultiQueue(Run r) throws IOException {
        String c = r.context();
        assertTrue(acked(r).matches(".*[\\[ ]MQ[,\\]].*"), "MQ acked" + c);
        assertEquals(2, r.summary().path("queuePairs").asInt(), "the summary has the pairs the driver set last: " + r.summary());
        int mqAt = r.log().indexOf("vmm4j-guest: workload mq");
        int one = r.log().indexOf("virtio-net: the driver set 1 active queue pair(s)", mqAt);
        assertTrue(mqAt > 0 && one > 0 && r.log().indexOf("virtio-net: the driver set 2 active queue pair(s)", one) > 0,
                "ethtool -L went through our control queue: 1 pair, then 2" + c);
        JsonNode mq = r.results("mq").get(0);
        assertEquals(2, mq.path("combined").asInt(), "ethtool -l shows 2 combined channels: " + mq + c);
        assertEquals(2, mq.path("cpus").asInt(), "two vCPUs: " + mq + c);
        for (JsonNode p : mq.path("pings")) {
            assertEquals(5, p.path("received").asInt(), "each CPU's pings answered: " + mq + c);
        }
        for (String dir : List.of("tx", "rx")) {
            for (int q = 0; q < 2; q++) {
                long before = mq.path(dir + "_before").path(q).asLong();
                long after = mq.path(dir + "_packets").path(q).asLong();
                assertTrue(after > before, dir + " queue " + q + " carried traffic: " + mq + c);
            }
        }
        assertTrue(r.log().contains("vmm4j-guest: eth0 up with 10.0.2.15/24, mtu 9000,"), "eth0 at MTU 9000" + c);
        for (JsonNode ping : r.results("ping")) {
            assertEquals(8000, ping.path("size").asInt(), "8000-byte pings guest -> host: " + ping + c);
        }
        for (JsonNode host : r.hostResults("ping")) {
            assertEquals(8000, host.path("size").asInt(), "8000-byte pings host -> guest: " + host + c);
        }
        JsonNode ethtool = r.results("ethtool").get(0);
        assertTrue(ethtool.path("features").path("tx-checksumming").asText().equals("on")
                && ethtool.path("features").path("tcp-segmentation-offload").asText().equals("on"), "Linux uses the offloads: " + ethtool + c);
        JsonNode console = r.results("console").get(0);
        assertEquals(LinuxLabDriver.CONSOLE_LINE, console.path("line").asText(), "the line typed on the VMM's stdin reached /init: " + console + c);
    }

    // ---- endings ----

    /** /init exits at once: the kernel panics, panic=-1 resets, and the VMM ends non-zero with the last console lines. */
    @Test
    void aKernelPanicEndsTheVmmWithAnErrorAndTheLastConsoleLines() throws Exception {
        Run r = run("panic");
        String c = r.context();
        assertTrue(r.exit() != 0, "a panic is a failed run (exit " + r.exit() + ")" + c);
        assertTrue(r.log().contains("vmm4j: the guest panicked: Kernel panic - not syncing: "), c);
        assertTrue(r.log().matches("(?s).*vmm4j: last console lines:\\n(  \\| .*\\n)*  \\| .*Kernel panic.*"), "the last console lines" + c);
        assertTrue(r.summary().path("error").asText().contains("panicked"), r.summary().toString());
    }

    private static void assertDriverOk(Run r) {
        String c = r.context();
        assertTrue(r.log().matches("(?s).*\\nvirtio-net: status \\S+ -> ACKNOWLEDGE\\|DRIVER\\|DRIVER_OK\\|FEATURES_OK\\n.*"),
                "Linux's driver reached DRIVER_OK" + c);
        for (String f : List.of("VERSION_1", "MRG_RXBUF", "CTRL_VQ", "EVENT_IDX")) {
            assertTrue(acked(r).matches(".*[\\[ ]" + f + "[,\\]].*"), f + " acked: " + acked(r) + c);
        }
        assertTrue(r.log().contains("vmm4j-guest: virtio0: device 0x0001 vendor 0x1af4 driver virtio_net"), "virtio_net bound to our device" + c);
    }

    /** The tap's offloads (the host's ethtool -k) follow the GUEST_* bits Linux acked, and Linux uses checksum and TSO offload. */
    private static void assertOffloads(Run r) {
        String c = r.context();
        for (String f : List.of("CSUM", "GUEST_CSUM", "HOST_TSO4", "HOST_TSO6", "GUEST_TSO4", "GUEST_TSO6")) {
            assertTrue(acked(r).matches(".*[\\[ ]" + f + "[,\\]].*"), f + " acked: " + acked(r) + c);
        }
        assertFalse(acked(r).contains("UFO"), "no UFO offered over a tap" + c);
        assertTrue(r.log().matches("(?s).*lab-host: host ethtool -k \\S+: tx-checksumming: on.*"), "the tap takes partial checksums" + c);
        assertTrue(r.log().matches("(?s).*lab-host: host ethtool -k \\S+: tcp-segmentation-offload: on.*"), "the tap takes TSO" + c);
    }

    private static void assertRebooted(Run r) {
        String c = r.context();
        assertTrue(r.log().contains("vmm4j: the guest reset the CPU through the i8042 (reboot)"), c);
        assertEquals("REBOOTED", r.summary().path("linux").path("ending").asText(), r.summary() + c);
        assertTrue(r.summary().path("error").isMissingNode(), r.summary().toString());
        assertEquals(0, r.exit(), "a clean reboot ends the VMM with status 0" + c);
    }

    /** Whether the driver took packed rings (VIRTIO_F_RING_PACKED in the features-acked boot log line). */
    private static void assertRings(Run r, boolean packed) {
        assertEquals(packed, acked(r).matches(".*[\\[ ]RING_PACKED[,\\]].*"), (packed ? "packed" : "split") + " rings: " + acked(r)
                + r.context());
    }

    private static String acked(Run r) {
        String l = line(r.log(), "virtio-net: features acked   ");
        return l == null ? "(no features-acked line)" : l;
    }

    static Path repositoryRoot() {
        Path lab = VhostNetLabTest.findLab();
        return lab.getParent().getParent().getParent();
    }
}
