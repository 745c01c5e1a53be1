package io.vmm4j.cli.vm;

import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.tap.TunIoctls;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.NetQueueCounters;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.Stream;

import static io.vmm4j.virtio.VirtioFeatures.bit;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The emulated data path in one JVM, on a real tap (in this namespace, with a subnet of its own):
 * offloads programmed from acked features, multiqueue, mergeable receive buffers.
 */
class ToyVmDataPathTest {
    @BeforeEach
    void requirements() {
        HostRequirements.requireTapsAndNamespaces("taps");
    }

    private static int subnet() {
        return ThreadLocalRandom.current().nextInt(10, 250);
    }

    private static VmOptions options(int subnet, int pairs, int count, int mtu, int pingSize, int udpPort, long features) {
        return VmOptions.builder().port(VmOptions.Port.TAP).tap(ToyVmNetworkTest.unique("vt")).guestIp("10.201." + subnet + ".15")
                .hostIp("10.201." + subnet + ".1/24").pairs(pairs).count(count).pingSize(pingSize).intervalMs(50).udpPort(udpPort).mtu(mtu)
                .wantedFeatures(features).build();
    }

    private static final PrintStream QUIET = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);

    private static Map<String, String> ethtool(String ifname) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("ethtool", "-k", ifname).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor();
        Map<String, String> features = new LinkedHashMap<>();
        for (String line : out.lines().toList()) {
            int colon = line.indexOf(':');
            if (colon > 0 && line.length() > colon + 2) {
                features.put(line.substring(0, colon).strip(), line.substring(colon + 1).strip().split(" ")[0]);
            }
        }
        return features;
    }

    /** What ethtool -k must show for a set of TUN_F_* flags (mapping documented in tap-bridge's TapOffloadTest). */
    private static void assertOffloads(String ifname, int flags, String when) throws IOException, InterruptedException {
        Map<String, String> f = ethtool(ifname);
        boolean csum = (flags & TunIoctls.TUN_F_CSUM) != 0;
        assertEquals(csum ? "on" : "off", f.get("tx-checksumming"), when + ": tx-checksumming");
        assertEquals((flags & TunIoctls.TUN_F_TSO4) != 0 ? "on" : "off", f.get("tx-tcp-segmentation"), when + ": TSO4");
        assertEquals((flags & TunIoctls.TUN_F_TSO6) != 0 ? "on" : "off", f.get("tx-tcp6-segmentation"), when + ": TSO6");
        assertEquals((flags & TunIoctls.TUN_F_TSO_ECN) != 0 ? "on" : "off", f.get("tx-tcp-ecn-segmentation"), when + ": TSO_ECN");
    }

    private static long features(int... bits) {
        long f = GuestDefaults.features();
        for (int b : bits) {
            f |= bit(b);
        }
        return f;
    }

    @TestFactory
    Stream<DynamicTest> ackedGuestOffloadsBecomeExactlyTheTapOffloads() {
        HostRequirements.requireCommand("ethtool", "ethtool");
        record Row(String name, long wanted, int flags) {
        }
        List<Row> table = List.of(
                new Row("no offloads acked", features(), 0),
                new Row("HOST_* only: nothing for the tap", features(NetFeatures.CSUM, NetFeatures.HOST_TSO4, NetFeatures.HOST_TSO6), 0),
                new Row("GUEST_CSUM", features(NetFeatures.GUEST_CSUM), TunIoctls.TUN_F_CSUM),
                new Row("GUEST_CSUM + GUEST_TSO4", features(NetFeatures.GUEST_CSUM, NetFeatures.GUEST_TSO4),
                        TunIoctls.TUN_F_CSUM | TunIoctls.TUN_F_TSO4),
                new Row("GUEST_CSUM + TSO4 + TSO6", features(NetFeatures.GUEST_CSUM, NetFeatures.GUEST_TSO4, NetFeatures.GUEST_TSO6),
                        TunIoctls.TUN_F_CSUM | TunIoctls.TUN_F_TSO4 | TunIoctls.TUN_F_TSO6),
                new Row("GUEST_CSUM + TSO4 + TSO6 + ECN", features(NetFeatures.GUEST_CSUM, NetFeatures.GUEST_TSO4,
                        NetFeatures.GUEST_TSO6, NetFeatures.GUEST_ECN),
                        TunIoctls.TUN_F_CSUM | TunIoctls.TUN_F_TSO4 | TunIoctls.TUN_F_TSO6 | TunIoctls.TUN_F_TSO_ECN));
        return table.stream().map(row -> DynamicTest.dynamicTest(row.name(), () -> {
            try (ToyVm vm = new ToyVm(options(subnet(), 1, 0, 1500, 56, 0, row.wanted()), QUIET)) {
                vm.run();
                TapDevice tap = (TapDevice) vm.port();
                assertEquals(row.flags(), tap.offloads(), "TUNSETOFFLOAD flags applied");
                assertOffloads(tap.name(), row.flags(), row.name());
            }
        }));
    }

    @Test
    void controlGuestOffloadsChangesTheTapAtRunTime() throws Exception {
        HostRequirements.requireCommand("ethtool", "ethtool");
        long wanted = features(NetFeatures.GUEST_CSUM, NetFeatures.GUEST_TSO4, NetFeatures.GUEST_TSO6);
        try (ToyVm vm = new ToyVm(options(subnet(), 1, 0, 1500, 56, 0, wanted), QUIET)) {
            vm.run();
            TapDevice tap = (TapDevice) vm.port();
            int all = TunIoctls.TUN_F_CSUM | TunIoctls.TUN_F_TSO4 | TunIoctls.TUN_F_TSO6;
            assertOffloads(tap.name(), all, "after DRIVER_OK");
            assertEquals(0, vm.guest().nic().driver().setGuestOffloads(bit(NetFeatures.GUEST_CSUM)));
            assertOffloads(tap.name(), TunIoctls.TUN_F_CSUM, "CTRL_GUEST_OFFLOADS to GUEST_CSUM");
            assertEquals(0, vm.guest().nic().driver().setGuestOffloads(0));
            assertOffloads(tap.name(), 0, "CTRL_GUEST_OFFLOADS to none");
            assertEquals(1, vm.guest().nic().driver().setGuestOffloads(bit(NetFeatures.GUEST_UFO)), "not negotiated: refused");
            assertOffloads(tap.name(), 0, "after a refused change");
        }
    }

    @SuppressWarnings("try") // a resource closed early on purpose, to end the thread that serves it
    @Test
    void twoPairsCarryTwoFlowsAndOnePairDetachesTheSpareTapQueue() throws Exception {
        int s = subnet();
        int port = ThreadLocalRandom.current().nextInt(20000, 60000);
        VmOptions o = options(s, 2, 5, 1500, 56, port, GuestDefaults.features());
        try (ToyVm vm = new ToyVm(o, QUIET);
             DatagramSocket echo = new DatagramSocket(null)) {
            // a UDP echo server on the host side of the tap, bound once the tap has its address
            echo.bind(new java.net.InetSocketAddress(InetAddress.getByName("10.201." + s + ".1"), port));
            echo.setSoTimeout(50);
            Thread echoer = Thread.ofPlatform().daemon().start(() -> {
                byte[] buf = new byte[2048];
                while (!echo.isClosed()) {
                    try {
                        DatagramPacket p = new DatagramPacket(buf, buf.length);
                        echo.receive(p);
                        echo.send(new DatagramPacket(p.getData(), p.getLength(), p.getSocketAddress()));
                    } catch (SocketTimeoutException e) {
                        // look at the closed flag again
                    } catch (IOException e) {
                        return;
                    }
                }
            });
            vm.run();
            RunSummary first = vm.summary();
            assertEquals(2, first.queuePairs());
            assertEquals(5, first.ping().received());
            assertEquals(10, first.udp().received(), "5 echoes per flow, one flow per pair");
            for (NetQueueCounters c : vm.net().counters()) {
                assertTrue(c.packets > 0, "every data queue carried traffic: " + vm.net().counters());
            }
            TapDevice tap = (TapDevice) vm.port();
            assertTrue(tap.isQueueEnabled(1));

            assertEquals(0, vm.guest().setActivePairs(1));
            assertFalse(tap.isQueueEnabled(1), "the spare tap queue is detached");
            long rx0 = vm.net().counters().get(0).packets;
            long tx0 = vm.net().counters().get(1).packets;
            assertEquals(5, vm.guest().ping(5, o.hostAddress(), 56), "traffic continues on pair 0");
            assertTrue(vm.net().counters().get(0).packets >= rx0 + 5);
            assertTrue(vm.net().counters().get(1).packets >= tx0 + 5);
            echo.close();
            echoer.join(1000);
        }
    }

    @Test
    void withTheLinkDownNoFramePassesEitherWayAndTrafficResumesWhenItComesBack() throws Exception {
        int s = subnet();
        try (ToyVm vm = new ToyVm(options(s, 1, 0, 1500, 56, 0, GuestDefaults.features()), QUIET)) {
            vm.run();
            assertEquals(3, vm.guest().ping(3, "10.201." + s + ".1", 56), "link up: pings pass");
            vm.net().setLinkUp(false); // what QMP set_link off does
            assertEquals(0, vm.guest().ping(3, "10.201." + s + ".1", 56), "link down: nothing passes");
            long dropped = vm.net().counters().stream().mapToLong(c -> c.dropsLinkDown).sum();
            assertTrue(dropped >= 3, "the guest's echo requests were dropped, not sent: " + vm.net().counters());
            vm.net().setLinkUp(true);
            assertEquals(3, vm.guest().ping(3, "10.201." + s + ".1", 56), "link up again: pings pass");
        }
    }

    @Test
    void aJumboFrameArrivesThroughSeveralMergeableBuffersAndSplitTxChainsGoOut() throws Exception {
        try (ToyVm vm = new ToyVm(options(subnet(), 1, 3, 9000, 8000, 0, GuestDefaults.features()), QUIET)) {
            RunSummary s = vm.run();
            assertTrue(s.features().contains("MRG_RXBUF"));
            // every transmitted frame is a header descriptor followed by a payload descriptor
            assertEquals(3, s.ping().received(), "8000-byte pings out (split chains) and back (merged buffers)");
            assertTrue(s.maxRxBuffersPerFrame() >= 4, "an 8042-byte frame over 2048-byte buffers needs >= 4, saw "
                    + s.maxRxBuffersPerFrame());
        }
    }
    /** The comparison paces its receive window on {@code soFar()}: a new count starts at zero and counts from the first datagram. */
    @Test
    void aNewReceiveCountStartsAtZeroAndCountsTheFirstDatagramSentAfterIt() throws Exception {
        int s = subnet();
        try (ToyVm vm = new ToyVm(options(s, 1, 0, 1500, 56, 0, GuestDefaults.features()), QUIET);
             Workload guest = vm.workload();
             DatagramSocket host = new DatagramSocket(0, InetAddress.getByName("10.201." + s + ".1"))) {
            InetAddress guestIp = InetAddress.getByName("10.201." + s + ".15");
            byte[] payload = new byte[64];
            for (int round = 0; round < 3; round++) {
                Workload.Counting counting = guest.startCountingUdp();
                assertEquals(0, counting.soFar(), "round " + round + ": the count starts at zero, not at the last round's total");
                for (int i = 0; i < 20; i++) {
                    host.send(new DatagramPacket(payload, payload.length, guestIp, Workload.BENCH_PORT));
                }
                long deadline = System.nanoTime() + 10_000_000_000L;
                while (counting.soFar() < 20 && System.nanoTime() < deadline) {
                    Thread.sleep(5);
                }
                assertEquals(20, counting.stop(), "round " + round + ": every datagram sent after the count started is counted");
            }
        }
    }
}
