package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.tap.NetNamespace;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Our vhost-user back-end against a front-end we did not write: QEMU with {@code -netdev
 * vhost-user}, shared guest memory, and a Debian kernel whose stock virtio_net driver brings the
 * NIC up, takes a static address and pings the host through our daemon and its tap, all in a fresh
 * network namespace. Guest RAM is a sealed memfd ({@code memory-backend-memfd}) or an unsealed file
 * on /dev/shm ({@code memory-backend-file ... share=on}, the libvirt / OVS-DPDK way). Runs under CI
 * (CI=true) or with VMM4J_LAB=1 (about 20 s each).
 */
class QemuVhostUserTest {
    private static final String GUEST_SCRIPT = """
            ip link set eth0 up
            ip addr add 10.0.2.15/24 dev eth0
            ping -c 3 -W 5 10.0.2.2
            rc=$?
            echo "guest: dmesg virtio_net:"
            dmesg | grep -i virtio_net
            exit $rc
            """;

    @ParameterizedTest(name = "guest RAM: memory-backend-{0}, {1} rings")
    @CsvSource({"memfd, split", "file, split", "memfd, packed"})
    void linuxGuestPingsTheHostThroughOurDaemon(String memoryBackend, String ring) throws Exception {
        HostRequirements.requireLab("about 20 s (QEMU with a Linux guest)", "a tap and a network namespace");
        Path lab = VhostNetLabTest.findLab();
        Path dir = Files.createTempDirectory("vmm4j-qemu-vu");
        Path socket = dir.resolve("vu.sock");
        Path stats = dir.resolve("stats.json");
        Path script = dir.resolve("guest.sh");
        Files.writeString(script, GUEST_SCRIPT);
        Path shm = Path.of("/dev/shm", dir.getFileName() + "-ram"); // QEMU creates it; we remove it
        String memory = memoryBackend.equals("memfd") ? "" : "-object memory-backend-file,id=ram,size=512M,mem-path=" + shm
                + ",share=on -numa node,memdev=ram ";
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtqv"));
             VmmProcess daemon = VmmProcess.start(List.of("ip", "netns", "exec", ns.name()), "vhost-user-backend",
                     "--socket", socket.toString(), "--tap", "vtqemu0", "--host-ip", "10.0.2.2/24", "--stats-json", stats.toString())) {
            daemon.awaitOutput("listening on", 60);
            List<String> cmd = new ArrayList<>(List.of("ip", "netns", "exec", ns.name(), lab.toString(), "guest"));
            if (memoryBackend.equals("memfd")) {
                cmd.add("--memfd");
            }
            cmd.addAll(List.of("--mem", "512", "--smp", "1", "--timeout", "180",
                    "--qemu-args", memory + "-chardev socket,id=c,path=" + socket + " -netdev vhost-user,id=n,chardev=c"
                            // packed=on: QEMU offers VIRTIO_F_RING_PACKED when the back-end does, and Linux takes it
                            + " -device virtio-net-pci,netdev=n,vectors=0" + (ring.equals("packed") ? ",packed=on" : ""),
                    "--script", script.toString()));
            Process qemu = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String console = new String(qemu.getInputStream().readAllBytes());
            assertTrue(qemu.waitFor(240, TimeUnit.SECONDS), "the lab VM did not finish");
            System.out.println(console.lines().filter(l -> l.startsWith("lab:") || l.contains("packets") || l.contains("virtio_net")
                    || l.startsWith("guest:")).reduce("", (a, b) -> a + b + "\n"));
            assertEquals(0, qemu.exitValue(), "guest script exit status (its ping):\n" + console + "\ndaemon:\n" + daemon.describe());
            assertTrue(console.contains("3 packets transmitted, 3 packets received"), console);
            assertTrue(console.contains("driver: 'virtio_net': driver_bound"), "the kernel log line of virtio_net binding:\n" + console);
            assertTrue(daemon.stdout().contains("front-end 1: memory table"), daemon.describe());
            assertTrue(daemon.stdout().contains("front-end 1: queue pair 0 started (" + ring + " rings"), daemon.describe());

            ProcessHandle.of(daemon.pid()).ifPresent(ProcessHandle::destroy); // SIGTERM: the daemon writes its stats
            daemon.waitFor(30);
            JsonNode j = new ObjectMapper().readTree(stats.toFile());
            String acked = j.toString();
            System.out.println("features the Linux guest negotiated through QEMU: " + j.get("lastAckedFeatureNames"));
            for (String f : List.of("VERSION_1", "MRG_RXBUF", "EVENT_IDX")) {
                assertTrue(j.get("lastAckedFeatureNames").toString().contains(f), f + " acked: " + acked);
            }
            assertEquals(ring.equals("packed"), j.get("lastAckedFeatureNames").toString().contains("RING_PACKED"), acked);
        } finally {
            Files.deleteIfExists(shm);
        }
    }
}
