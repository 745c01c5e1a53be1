package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.tap.CommandResult;
import io.vmm4j.tap.NetNamespace;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code ./vmm run --vcpu kvm} end to end, as a process in a fresh network namespace: the C guest
 * on a real KVM vCPU brings up virtio-net over PCI and pings the namespace's kernel through the
 * tap; kicks reach the data plane by KVM ioeventfd, interrupts reach the guest by KVM irqfd. The
 * guest marks its steady-traffic phases, and the VMM counts the vCPU's exits in them.
 */
class KvmGuestNetworkTest {
    @BeforeEach
    void requirements() {
        HostRequirements.requireTapsAndNamespaces("network namespaces and taps");
        HostRequirements.requireCommand("ping", "iputils-ping");
        HostRequirements.requireCommand("gcc", "gcc"); // the guest image is built with it
        HostRequirements.requireKvm();
    }

    private static List<String> in(NetNamespace ns) {
        return List.of("ip", "netns", "exec", ns.name());
    }

    private static JsonNode quiet(JsonNode summary) {
        return summary.get("kvm").get("quietPhase");
    }

    @Test
    void theKvmGuestGetsFiveOfFiveRepliesWithNoExitsInSteadyTraffic() throws Exception {
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"));
             VmmProcess vmm = VmmProcess.start(in(ns), "run", "--vcpu", "kvm", "--count", "5", "--json")) {
            assertEquals(0, vmm.waitFor(60), vmm.describe());
            JsonNode j = vmm.json();
            assertEquals("kvm", j.get("vcpu").asText());
            assertEquals("emulated", j.get("backend").asText());
            assertEquals(5, j.get("ping").get("sent").asInt(), vmm.describe());
            assertEquals(5, j.get("ping").get("received").asInt(), vmm.describe());
            assertEquals(5, j.get("ping").get("rttMs").size());
            assertTrue(j.get("features").toString().contains("VERSION_1"), j.get("features").toString());
            assertEquals(32, j.get("rng").asText().length(), "the guest read 16 bytes from virtio-rng too");
            assertTrue(j.get("vmExits").get("io").asLong() > 0 && j.get("vmExits").get("mmio").asLong() > 0,
                    "booting exits: PCI config on ports, virtio config on MMIO, the console: " + j.get("vmExits"));

            JsonNode quiet = quiet(j);
            long packets = quiet.get("packets").asLong();
            assertTrue(packets >= 10, "ARP and 5 pings each way moved through the device: " + quiet);
            assertTrue(quiet.get("kicks").asLong() >= 5, "each ping was a kick: " + quiet);
            // ioeventfd + irqfd: no kick, interrupt or halt of the steady phase came out to the VMM
            assertTrue(quiet.get("exitsPerPacket").asDouble() < 0.05, "exits per packet in steady traffic: " + quiet);
            assertTrue(quiet.get("exitsByReason").get("mmio") == null, "no kick exited: " + quiet);
            JsonNode guest = j.get("kvm").get("guest");
            assertTrue(guest.get("rxInterrupts").asLong() >= 5, "replies came as irqfd interrupts: " + guest);
            assertTrue(vmm.stderr().contains("guest: pci 00:01.0 1af4:1041"), vmm.stderr());
            assertTrue(vmm.stderr().contains("5 sent, 5 received, 0% loss"), vmm.stderr());
            // --ring split is the default: no RING_PACKED offered, so the C guest runs split rings
            assertFalse(j.get("features").toString().contains("RING_PACKED"), j.get("features").toString());
            assertTrue(vmm.stderr().contains(", rings 256/256 split,"), vmm.stderr());
        }
    }

    /** emulated-sync: each kick is a vCPU exit served on the vCPU thread, on packed rings as on split ones. */
    @Test
    void theKvmGuestRunsPackedRingsOnTheEmulatedSyncDataPlane() throws Exception {
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"));
             VmmProcess vmm = VmmProcess.start(in(ns), "run", "--vcpu", "kvm", "--backend", "emulated-sync", "--ring", "packed",
                     "--count", "5", "--json")) {
            assertEquals(0, vmm.waitFor(60), vmm.describe());
            JsonNode j = vmm.json();
            assertEquals("emulated-sync", j.get("backend").asText());
            assertTrue(j.get("features").toString().contains("RING_PACKED"), j.get("features").toString());
            assertTrue(vmm.stderr().contains(", rings 256/256 packed,"), vmm.stderr());
            assertEquals(5, j.get("ping").get("received").asInt(), vmm.describe());
        }
    }

    @Test
    void theKvmGuestRunsPackedRingsWhenOfferedWithNoExitsInSteadyTraffic() throws Exception {
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"));
             VmmProcess vmm = VmmProcess.start(in(ns), "run", "--vcpu", "kvm", "--ring", "packed", "--count", "20",
                     "--interval", "50", "--json")) {
            assertEquals(0, vmm.waitFor(60), vmm.describe());
            JsonNode j = vmm.json();
            assertEquals("emulated", j.get("backend").asText());
            assertTrue(j.get("features").toString().contains("RING_PACKED"), "the C guest acked what --ring packed offered: "
                    + j.get("features"));
            assertTrue(vmm.stderr().contains(", rings 256/256 packed,"), "the guest set up packed queues:\n" + vmm.stderr());
            assertEquals(20, j.get("ping").get("received").asInt(), vmm.describe());
            JsonNode quiet = quiet(j);
            assertTrue(quiet.get("packets").asLong() >= 40, "ARP and 20 pings each way moved through the device: " + quiet);
            // with EVENT_IDX the device's off_wrap says when to kick: each ping needs one, and no more than one per frame sent
            long kicks = quiet.get("kicks").asLong();
            assertTrue(kicks >= 20 && kicks <= quiet.get("packets").asLong(), "kicks in steady traffic: " + quiet);
            assertTrue(quiet.get("exitsPerPacket").asDouble() < 0.05, "exits per packet in steady traffic: " + quiet);
            assertTrue(j.get("kvm").get("guest").get("rxInterrupts").asLong() >= 20, "replies came as irqfd interrupts: " + j.get("kvm"));
            assertTrue(vmm.stderr().contains("20 sent, 20 received, 0% loss"), vmm.stderr());
        }
    }

    @Test
    void theHostPingsTheKvmGuestOnPackedRingsPastTheRingSize() throws Exception {
        // 300 requests in and 300 replies out go round the 256-slot rings more than once: both wrap counters flip
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"));
             VmmProcess vmm = VmmProcess.start(in(ns), "run", "--vcpu", "kvm", "--ring", "packed", "--count", "0", "--serve", "12",
                     "--json")) {
            vmm.awaitOutput("guest: serving at 10.0.2.15", 30);
            CommandResult ping = ns.exec("ping", "-c", "300", "-i", "0.01", "-W", "2", "10.0.2.15");
            assertTrue(ping.stdout().contains("300 packets transmitted, 300 received"), ping.stdout() + ping.stderr());
            assertEquals(0, vmm.waitFor(30), vmm.describe());
            JsonNode j = vmm.json();
            assertTrue(j.get("features").toString().contains("RING_PACKED"), j.get("features").toString());
            assertTrue(j.get("echoRequestsAnswered").asLong() >= 300, vmm.describe());
        }
    }

    @Test
    void theKvmGuestPingsThroughTheVhostUserDaemon() throws Exception {
        java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("vmm4j-kvm-vu");
        java.nio.file.Path socket = dir.resolve("vu.sock");
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"));
             VmmProcess daemon = VmmProcess.start(in(ns), "vhost-user-backend", "--socket", socket.toString(), "--tap",
                     ToyVmNetworkTest.unique("vt"))) {
            daemon.awaitOutput("vhost-user-backend: listening on " + socket, 30);
            try (VmmProcess vmm = VmmProcess.start(in(ns), "run", "--vcpu", "kvm", "--backend", "vhost-user", "--socket",
                    socket.toString(), "--count", "5", "--json")) {
                assertEquals(0, vmm.waitFor(60), vmm.describe() + "\ndaemon:\n" + daemon.describe());
                JsonNode j = vmm.json();
                assertEquals("kvm", j.get("vcpu").asText());
                assertEquals("vhost-user", j.get("backend").asText());
                assertEquals(5, j.get("ping").get("received").asInt(), vmm.describe());
                // kicks go from KVM's ioeventfd straight to the daemon, its calls straight to KVM's irqfd
                assertTrue(quiet(j).get("exitsPerPacket").asDouble() < 0.05, "exits per packet in steady traffic: " + quiet(j));
                for (JsonNode q : j.get("queues")) {
                    assertEquals(0, q.get("packets").asLong(), "the VMM moved no frames itself: " + q);
                }
            }
        }
    }

    @Test
    void theKvmGuestPingsThroughTheVhostUserDaemonOnPackedRings() throws Exception {
        java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("vmm4j-kvm-vu");
        java.nio.file.Path socket = dir.resolve("vu.sock");
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"));
             VmmProcess daemon = VmmProcess.start(in(ns), "vhost-user-backend", "--socket", socket.toString(), "--tap",
                     ToyVmNetworkTest.unique("vt"))) {
            daemon.awaitOutput("vhost-user-backend: listening on " + socket, 30);
            try (VmmProcess vmm = VmmProcess.start(in(ns), "run", "--vcpu", "kvm", "--backend", "vhost-user", "--socket",
                    socket.toString(), "--ring", "packed", "--count", "5", "--json")) {
                assertEquals(0, vmm.waitFor(60), vmm.describe() + "\ndaemon:\n" + daemon.describe());
                JsonNode j = vmm.json();
                assertTrue(j.get("features").toString().contains("RING_PACKED"), j.get("features").toString());
                assertTrue(vmm.stderr().contains(", rings 256/256 packed,"), vmm.stderr());
                assertEquals(5, j.get("ping").get("received").asInt(), vmm.describe() + "\ndaemon:\n" + daemon.describe());
                assertTrue(quiet(j).get("exitsPerPacket").asDouble() < 0.05, "exits per packet in steady traffic: " + quiet(j));
            }
        } finally {
            java.nio.file.Files.deleteIfExists(socket);
            java.nio.file.Files.deleteIfExists(dir);
        }
    }

    @Test
    void theHostPingsTheKvmGuestWhileItServes() throws Exception {
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"));
             VmmProcess vmm = VmmProcess.start(in(ns), "run", "--vcpu", "kvm", "--count", "0", "--serve", "6", "--json")) {
            vmm.awaitOutput("guest: serving at 10.0.2.15", 30);
            CommandResult ping = ns.exec("ping", "-c", "5", "-i", "0.2", "-W", "2", "10.0.2.15");
            assertTrue(ping.stdout().contains("5 packets transmitted, 5 received"), ping.stdout() + ping.stderr());
            assertEquals(0, vmm.waitFor(30), vmm.describe());
            JsonNode j = vmm.json();
            assertTrue(j.get("echoRequestsAnswered").asLong() >= 5, vmm.describe());
            JsonNode quiet = quiet(j);
            assertTrue(quiet.get("packets").asLong() >= 10, quiet.toString());
            assertTrue(quiet.get("exitsPerPacket").asDouble() < 0.05, "exits per packet while serving: " + quiet);
            assertTrue(vmm.stderr().contains("guest: answered 5 echo requests"), vmm.stderr());
        }
    }

    @Test
    void withoutIoeventfdsEveryKickExitsToTheVmm() throws Exception {
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"));
             VmmProcess vmm = VmmProcess.start(in(ns), "run", "--vcpu", "kvm", "--backend", "emulated-sync", "--count", "5",
                     "--interval", "50", "--json")) {
            assertEquals(0, vmm.waitFor(60), vmm.describe());
            JsonNode j = vmm.json();
            assertEquals("emulated-sync", j.get("backend").asText());
            assertEquals(5, j.get("ping").get("received").asInt(), vmm.describe());
            JsonNode quiet = quiet(j);
            long kicks = quiet.get("kicks").asLong();
            long mmioExits = quiet.get("exitsByReason").path("mmio").asLong();
            assertTrue(kicks >= 5, "each ping was a kick: " + quiet);
            assertTrue(mmioExits >= kicks, "at least one exit per kick: " + quiet);
            assertTrue(quiet.get("exitsPerPacket").asDouble() >= (double) kicks / quiet.get("packets").asLong(), quiet.toString());
        }
    }

    @Test
    void withoutDevKvmTheRunFailsWithOneClearLine() throws Exception {
        HostRequirements.requireCommand("unshare", "util-linux");
        // a private mount namespace whose /dev is a tmpfs with only what a JVM needs: no kvm
        String hideKvm = "set -e; d=$(mktemp -d); mount --bind /dev \"$d\"; mount -t tmpfs none /dev; "
                + "for n in null zero random urandom; do touch /dev/$n; mount --bind \"$d/$n\" /dev/$n; done; "
                + "umount -l \"$d\"; exec \"$@\"";
        List<String> prefix = List.of("unshare", "--mount", "--propagation", "private", "sh", "-c", hideKvm, "hide-kvm");
        try (VmmProcess vmm = VmmProcess.start(prefix, "run", "--vcpu", "kvm", "--port", "memory")) {
            assertEquals(1, vmm.waitFor(30), vmm.describe());
            List<String> lines = vmm.stderr().lines().filter(l -> !l.isBlank()).toList();
            assertEquals(1, lines.size(), "one line:\n" + vmm.stderr());
            assertTrue(lines.getFirst().contains("/dev/kvm does not exist"), lines.getFirst());
            assertTrue(lines.getFirst().contains("--vcpu kvm"), lines.getFirst());
        }
    }
}
