package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.tap.CommandResult;
import io.vmm4j.tap.LinuxBridge;
import io.vmm4j.tap.NetNamespace;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code ./vmm run} end to end, as separate processes inside fresh network namespaces: the Java
 * guest's frames go through the transport, virtio-net, the emulated data plane and a real tap to
 * the namespace's kernel, which answers.
 */
class ToyVmNetworkTest {
    @BeforeEach
    void requirements() {
        HostRequirements.requireTapsAndNamespaces("network namespaces and taps");
        HostRequirements.requireCommand("ping", "iputils-ping");
    }

    static String unique(String prefix) {
        return prefix + Integer.toHexString(ThreadLocalRandom.current().nextInt(0x100000, 0xFFFFFF));
    }

    private static List<String> in(NetNamespace ns) {
        return List.of("ip", "netns", "exec", ns.name());
    }

    /**
     * The run, and the namespace kernel's IP and ICMP counters: with the run's tap counters they say
     * on which side of the tap a missing reply was lost (InEchos, OutEchoReps against the pings sent).
     */
    private static String describe(VmmProcess vmm, NetNamespace ns) {
        return vmm.describe() + "\n/proc/net/snmp of the namespace:\n" + ns.exec("cat", "/proc/net/snmp").stdout();
    }

    @Test
    void runWithNoArgumentsPingsTheHostOverANewTap() throws Exception {
        try (NetNamespace ns = NetNamespace.create(unique("vtns"));
             VmmProcess vmm = VmmProcess.start(in(ns), "run")) {
            assertEquals(0, vmm.waitFor(60), () -> describe(vmm, ns));
            String out = vmm.stdout();
            assertTrue(out.contains("3 sent, 3 received, 0% loss"), out);
            assertTrue(out.contains("status ACKNOWLEDGE|DRIVER|FEATURES_OK -> ACKNOWLEDGE|DRIVER|DRIVER_OK|FEATURES_OK"), out);
            assertTrue(out.contains("features acked"), out);
            assertTrue(out.contains("virtio-rng gave 16 bytes"), out);
        }
    }

    @Test
    void jsonReportsFiveOfFiveRepliesAndQueueCounters() throws Exception {
        try (NetNamespace ns = NetNamespace.create(unique("vtns"));
             VmmProcess vmm = VmmProcess.start(in(ns), "run", "--count", "5", "--json")) {
            assertEquals(0, vmm.waitFor(60), () -> describe(vmm, ns));
            JsonNode j = vmm.json();
            assertEquals("emulated", j.get("backend").asText());
            assertEquals(5, j.get("ping").get("sent").asInt());
            assertEquals(5, j.get("ping").get("received").asInt(), () -> describe(vmm, ns));
            assertEquals(5, j.get("ping").get("rttMs").size());
            assertEquals(1, j.get("queuePairs").asInt());
            assertTrue(j.get("features").toString().contains("VERSION_1"));
            assertTrue(j.get("features").toString().contains("MRG_RXBUF"));
            for (JsonNode q : j.get("queues")) {
                assertTrue(q.get("packets").asLong() >= 5, "queue " + q);
                assertTrue(q.get("bytes").asLong() > 0, "queue " + q);
            }
            assertTrue(vmm.stderr().contains("firmware: 00:01.0 1af4:1041"), "the boot log goes to stderr with --json");
            // --ring split is the default: the NIC does not offer packed rings, so the Java guest runs split ones
            assertFalse(j.get("features").toString().contains("RING_PACKED"), j.get("features").toString());
            assertTrue(vmm.stderr().contains(", rings 256/256 split"), vmm.stderr());
        }
    }

    /** emulated-sync serves a notify on the notifying (guest) thread: the same packed engine, driven from there. */
    @Test
    void packedRingsOnTheEmulatedSyncDataPlane() throws Exception {
        try (NetNamespace ns = NetNamespace.create(unique("vtns"));
             VmmProcess vmm = VmmProcess.start(in(ns), "run", "--backend", "emulated-sync", "--ring", "packed", "--count", "5",
                     "--json")) {
            assertEquals(0, vmm.waitFor(60), () -> describe(vmm, ns));
            JsonNode j = vmm.json();
            assertEquals("emulated-sync", j.get("backend").asText());
            assertTrue(j.get("features").toString().contains("RING_PACKED"), j.get("features").toString());
            assertTrue(vmm.stderr().contains(", rings 256/256 packed"), vmm.stderr());
            assertEquals(5, j.get("ping").get("received").asInt(), () -> describe(vmm, ns));
        }
    }

    @Test
    void withPackedRingsOfferedTheJavaGuestRunsThemAndGetsFiveOfFive() throws Exception {
        try (NetNamespace ns = NetNamespace.create(unique("vtns"));
             VmmProcess vmm = VmmProcess.start(in(ns), "run", "--ring", "packed", "--count", "5", "--json")) {
            assertEquals(0, vmm.waitFor(60), () -> describe(vmm, ns));
            JsonNode j = vmm.json();
            assertEquals("emulated", j.get("backend").asText());
            assertTrue(j.get("features").toString().contains("RING_PACKED"), "the driver acked what --ring packed offered: "
                    + j.get("features"));
            assertTrue(j.get("features").toString().contains("EVENT_IDX"), "event suppression in its off_wrap/DESC mode too: "
                    + j.get("features"));
            assertTrue(vmm.stderr().contains(", rings 256/256 packed"), "the guest set up packed queues:\n" + vmm.stderr());
            assertEquals(5, j.get("ping").get("sent").asInt());
            assertEquals(5, j.get("ping").get("received").asInt(), () -> describe(vmm, ns));
            for (JsonNode q : j.get("queues")) {
                assertTrue(q.get("packets").asLong() >= 5, "queue " + q);
            }
            assertTrue(vmm.stderr().contains("virtio-rng gave 16 bytes") || vmm.stdout().contains("virtio-rng gave 16 bytes"),
                    "the rng device, whose driver asks for split rings only, still works next to it");
        }
    }

    @Test
    void onPackedRingsTwoPairsComeUpAndJumboFramesSpanMergeableBuffers() throws Exception {
        try (NetNamespace ns = NetNamespace.create(unique("vtns"));
             VmmProcess vmm = VmmProcess.start(in(ns), "run", "--ring", "packed", "--queues", "2", "--mtu", "9000",
                     "--ping-size", "8000", "--count", "3", "--json")) {
            assertEquals(0, vmm.waitFor(60), () -> describe(vmm, ns));
            JsonNode j = vmm.json();
            assertTrue(j.get("features").toString().contains("RING_PACKED"), j.get("features").toString());
            assertEquals(2, j.get("queuePairs").asInt());
            assertTrue(vmm.stderr().contains("the driver set 2 active queue pair(s)"),
                    "the MQ command went through the packed control queue:\n" + vmm.stderr());
            assertEquals(3, j.get("ping").get("received").asInt(), "8000-byte pings out (two-descriptor chains) and back: "
                    + vmm.describe());
            assertTrue(j.get("maxRxBuffersPerFrame").asInt() >= 4, "an 8042-byte frame over 2048-byte buffers needs >= 4: "
                    + j.get("maxRxBuffersPerFrame"));
        }
    }

    @Test
    void hostPingsTheJavaGuestOnPackedRings() throws Exception {
        try (NetNamespace ns = NetNamespace.create(unique("vtns"));
             VmmProcess vmm = VmmProcess.start(in(ns), "run", "--ring", "packed", "--count", "0", "--serve", "8", "--json")) {
            vmm.awaitOutput("guest: serving at 10.0.2.15", 30);
            CommandResult ping = ns.exec("ping", "-c", "20", "-i", "0.05", "-W", "2", "10.0.2.15");
            assertTrue(ping.stdout().contains("20 packets transmitted, 20 received"), ping.stdout() + ping.stderr());
            assertEquals(0, vmm.waitFor(30), vmm.describe());
            assertTrue(vmm.json().get("features").toString().contains("RING_PACKED"), vmm.describe());
            assertTrue(vmm.json().get("echoRequestsAnswered").asLong() >= 20, vmm.describe());
        }
    }

    @Test
    void hostPingsTheGuestWhileItServes() throws Exception {
        try (NetNamespace ns = NetNamespace.create(unique("vtns"));
             VmmProcess vmm = VmmProcess.start(in(ns), "run", "--count", "0", "--serve", "8", "--json")) {
            vmm.awaitOutput("guest: serving at 10.0.2.15", 30);
            CommandResult ping = ns.exec("ping", "-c", "5", "-i", "0.2", "-W", "2", "10.0.2.15");
            assertTrue(ping.stdout().contains("5 packets transmitted, 5 received"), ping.stdout() + ping.stderr());
            assertEquals(0, vmm.waitFor(30), vmm.describe());
            assertTrue(vmm.json().get("echoRequestsAnswered").asLong() >= 5, vmm.describe());
        }
    }

    @SuppressWarnings("try") // a resource closed early on purpose, to end the thread that serves it
    @Test
    void twoVmsOnOneBridgePingEachOther() throws Exception {
        try (NetNamespace ns = NetNamespace.create(unique("vtns"));
             LinuxBridge bridge = LinuxBridge.create(unique("vtbr"), ns)) {
            bridge.up();
            try (VmmProcess second = VmmProcess.start(in(ns), "run", "--bridge", bridge.name(), "--guest-ip", "10.0.3.12",
                    "--mac", "52:54:00:00:03:12", "--count", "0", "--serve", "15", "--json")) {
                second.awaitOutput("guest: serving at 10.0.3.12", 30);
                try (VmmProcess first = VmmProcess.start(in(ns), "run", "--bridge", bridge.name(), "--guest-ip", "10.0.3.11",
                        "--mac", "52:54:00:00:03:11", "--ping", "10.0.3.12", "--count", "5", "--json")) {
                    assertEquals(0, first.waitFor(60), first.describe());
                    assertEquals(5, first.json().get("ping").get("received").asInt(), first.describe());
                }
                second.close();
            }
        }
    }
}
