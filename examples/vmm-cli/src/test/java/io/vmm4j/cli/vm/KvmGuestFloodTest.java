package io.vmm4j.cli.vm;

import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.guest.TapFlood;
import io.vmm4j.tap.LinkCounters;
import io.vmm4j.virtio.net.NetQueueCounters;
import io.vmm4j.virtio.queue.RingLayout;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.DatagramChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The C guest's flood workloads on a real KVM vCPU, in this JVM, each on a tap and subnet of its
 * own: every frame the guest says it sent is on the tap (or in the tap's drop counter), a host UDP
 * socket receives them (so their checksums are right), and what the host floods in is what the
 * guest and the VMM's queue counters count. Counts must agree; no rate is a pass criterion.
 */
class KvmGuestFloodTest {
    private static final PrintStream QUIET = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    private static final int PORT = 5001;

    @BeforeEach
    void requirements() {
        HostRequirements.requireTaps("taps");
        HostRequirements.requireCommand("gcc", "gcc"); // the guest image and tapflood are built with it
        HostRequirements.requireKvm();
    }

    private record Net(String host, String guest) {
        static Net random() {
            int subnet = ThreadLocalRandom.current().nextInt(10, 250);
            return new Net("10.204." + subnet + ".1", "10.204." + subnet + ".15");
        }
    }

    private static VmOptions.Builder kvm(Net net, RingLayout ring, FloodWorkload flood) {
        return VmOptions.builder().vcpu(VmOptions.Vcpu.KVM).port(VmOptions.Port.TAP).tap(ToyVmNetworkTest.unique("vf"))
                .guestIp(net.guest()).hostIp(net.host() + "/24").count(0).ring(ring).flood(flood);
    }

    /** A host UDP socket on the flood's port, counting what reaches it on a thread of its own. */
    private static final class Listener implements AutoCloseable {
        final DatagramChannel channel;
        final AtomicLong received = new AtomicLong();
        final Thread thread;

        Listener(String host) throws IOException {
            channel = DatagramChannel.open().setOption(StandardSocketOptions.SO_RCVBUF, 4 << 20).bind(new InetSocketAddress(host, PORT));
            thread = Thread.ofPlatform().daemon().start(() -> {
                ByteBuffer buffer = ByteBuffer.allocateDirect(2048);
                try {
                    while (true) {
                        buffer.clear();
                        channel.receive(buffer);
                        received.incrementAndGet();
                    }
                } catch (IOException closed) {
                    // the test is over
                }
            });
        }

        @Override
        public void close() throws IOException {
            channel.close(); // ends the thread's receive
        }
    }

    /** Every frame the guest sent in its flood, and each ARP it sent before, arrived at the tap or was dropped there. */
    private static void assertEveryFrameArrived(RunSummary s, long tapArrived, long tapDropped) {
        assertNull(s.error(), s.toString());
        RunSummary.Flood flood = s.kvm().flood();
        // more frames than two ring lengths: the ring went round (on packed rings both wrap counters flipped), and it was a flood
        assertTrue(flood.frames() > 2L * VmOptions.DEFAULT_QUEUE_SIZE, "a flood, not a trickle: " + flood);
        long transmitted = s.kvm().guest().framesTransmitted();
        assertTrue(transmitted > flood.frames(), "the flood's frames and the ARP request before it: " + s.kvm().guest());
        assertEquals(transmitted, tapArrived + tapDropped, "frames the guest sent = frames on the tap + the tap's drops (" + tapArrived
                + " + " + tapDropped + "): " + flood);
        assertEquals(flood.frames() * 64, flood.bytes(), flood.toString());
        assertTrue(flood.kicks() < flood.frames() / 4, "EVENT_IDX: a kick per batch at most, not per frame: " + flood);
        assertTrue(s.features().contains("EVENT_IDX"), s.features().toString());
    }

    @Test
    void theGuestsTxFloodArrivesAtTheTapOverTheEmulatedDataPlaneOnSplitAndPackedRings() throws Exception {
        for (RingLayout ring : List.of(RingLayout.SPLIT, RingLayout.PACKED)) {
            Net net = Net.random();
            FloodWorkload flood = new FloodWorkload(FloodWorkload.Kind.TX_FLOOD, 64, 500, PORT);
            try (ToyVm vm = new ToyVm(kvm(net, ring, flood).build(), QUIET)) {
                String tap = vm.portName();
                try (Listener listener = new Listener(net.host())) {
                    RunSummary s = vm.run();
                    LinkCounters at = LinkCounters.read(tap);
                    assertEveryFrameArrived(s, at.rxPackets(), at.rxDropped());
                    assertEquals(ring == RingLayout.PACKED, s.features().contains("RING_PACKED"), ring + ": " + s.features());
                    NetQueueCounters.Snapshot tx = s.queues().stream().map(RunSummary.Queue::counters)
                            .filter(c -> c.direction().equals("tx")).findFirst().orElseThrow();
                    assertEquals(s.kvm().guest().framesTransmitted(), tx.packets(), "the VMM's TX queue counted every frame: " + tx);
                    Thread.sleep(100);
                    long got = listener.received.get();
                    assertTrue(got > 0 && got <= s.kvm().flood().frames(), "the host's UDP socket received them (checksums "
                            + "right): " + got + " of " + s.kvm().flood().frames());
                    assertTrue(s.kvm().quietPhase().exitsPerPacket() < 0.01, "kicks by ioeventfd, no exits: " + s.kvm().quietPhase());
                }
            }
        }
    }

    @Test
    void theGuestsTxFloodArrivesAtTheDaemonsTapOverVhostUserOnSplitAndPackedRings() throws Exception {
        Net net = Net.random();
        Path dir = Files.createTempDirectory("vmm4j-flood-vu");
        Path socket = dir.resolve("vu.sock");
        String tap = ToyVmNetworkTest.unique("vf");
        try (VmmProcess daemon = VmmProcess.start(List.of(), "vhost-user-backend", "--socket", socket.toString(), "--tap", tap,
                "--host-ip", net.host() + "/24")) {
            daemon.awaitOutput("vhost-user-backend: listening on " + socket, 30);
            for (RingLayout ring : List.of(RingLayout.SPLIT, RingLayout.PACKED)) {
                FloodWorkload flood = new FloodWorkload(FloodWorkload.Kind.TX_FLOOD, 64, 500, PORT);
                VmOptions options = kvm(net, ring, flood).dataPlane(DataPlane.VHOST_USER).port(VmOptions.Port.AUTO).tap(null)
                        .socket(socket.toString()).build();
                LinkCounters before = LinkCounters.read(tap);
                try (ToyVm vm = new ToyVm(options, QUIET)) {
                    RunSummary s = vm.run();
                    LinkCounters after = LinkCounters.read(tap);
                    assertEveryFrameArrived(s, after.rxPackets() - before.rxPackets(), after.rxDropped() - before.rxDropped());
                    assertEquals(ring == RingLayout.PACKED, s.features().contains("RING_PACKED"), ring + ": " + s.features());
                    assertTrue(s.kvm().quietPhase().exitsPerPacket() < 0.01, "kicks go to the daemon by ioeventfd: " + s.kvm().quietPhase());
                }
            }
        } finally {
            Files.deleteIfExists(socket);
            Files.deleteIfExists(dir);
        }
    }

    @Test
    void theGuestCountsWhatTheHostFloodsInAndTheVmmsQueueCountersAgree() throws Exception {
        HostRequirements.require(TapFlood.built(), "the tapflood helper (built with gcc)");
        Net net = Net.random();
        long sent = 20_000;
        FloodWorkload count = new FloodWorkload(FloodWorkload.Kind.RX_COUNT, 64, 1500, PORT);
        try (ToyVm vm = new ToyVm(kvm(net, RingLayout.SPLIT, count).build(), QUIET)) {
            // the host knows the guest's MAC: no ARP in the way
            new ProcessBuilder("ip", "neigh", "replace", net.guest(), "lladdr", VmOptions.DEFAULT_MAC, "dev", vm.portName()).start().waitFor();
            var running = new java.util.concurrent.CompletableFuture<RunSummary>();
            Thread vcpu = Thread.ofPlatform().start(() -> {
                try {
                    running.complete(vm.run());
                } catch (Throwable t) {
                    running.completeExceptionally(t);
                }
            });
            assertTrue(vm.awaitGuestQuietPhase(Duration.ofSeconds(20)), "the guest began counting");
            TapFlood.Result host;
            try (TapFlood.Run sender = TapFlood.send(net.host(), net.guest(), PORT, 64 - 42, 1.0, sent)) {
                host = sender.await(Duration.ofSeconds(10));
            }
            assertEquals(sent, host.frames(), "the sender sent all it was asked to: " + host);
            RunSummary s = running.get(30, java.util.concurrent.TimeUnit.SECONDS);
            vcpu.join();
            assertNull(s.error(), s.toString());
            RunSummary.Flood flood = s.kvm().flood();
            assertTrue(flood.frames() > 0 && flood.frames() <= sent, "counted " + flood.frames() + " of " + sent + ": " + flood);
            assertEquals(flood.frames() * 64, flood.bytes(), flood.toString());
            NetQueueCounters.Snapshot rx = s.queues().stream().map(RunSummary.Queue::counters)
                    .filter(c -> c.direction().equals("rx")).findFirst().orElseThrow();
            assertEquals(rx.packets(), s.kvm().guest().framesReceived(), "the VMM's RX queue and the guest count the same frames: " + rx
                    + " / " + s.kvm().guest());
            assertTrue(s.kvm().guest().framesReceived() >= flood.frames() + flood.otherFrames(), s.kvm().guest() + " / " + flood);
        }
    }
}
