package io.vmm4j.vhost.user;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.vhost.DriverQueuePairs;
import io.vmm4j.vhost.NumberedFrames;
import io.vmm4j.vhost.emulated.EmulatedNetBackend;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetBackend;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.QueuePositions;
import io.vmm4j.virtio.queue.PackedRing;
import io.vmm4j.virtio.queue.RingLayout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;

import static io.vmm4j.virtio.VirtioFeatures.bit;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A backend switch across kinds, on the same host network and with no guest reset: the in-process
 * emulated plane, then our vhost-user daemon (a session over a real socket, the rings handed over by
 * SET_VRING_BASE and taken back by GET_VRING_BASE), then the emulated plane again. A numbered stream
 * each way keeps every number exactly once and in order, on split rings and on packed ones, whose
 * positions carry the wrap counters across both hand-overs (vhost-user.rst, "Vring descriptor
 * indices for packed virtqueues").
 */
class CrossPlaneSwitchTest {
    private static final long MOVE_MILLIS = 3_000;
    /** More than the 256-entry rings hold in all, so a packed ring wraps (its wrap counters flip) mid-stream. */
    private static final int FRAMES = 600;

    @ParameterizedTest(name = "{0} rings")
    @EnumSource(RingLayout.class)
    void emulatedToVhostUserToEmulatedMidStreamKeepsEveryNumberOnce(RingLayout layout) throws Exception {
        long acked = bit(VirtioFeatures.VERSION_1) | bit(NetFeatures.MRG_RXBUF) | bit(VirtioFeatures.EVENT_IDX)
                | (layout == RingLayout.PACKED ? bit(VirtioFeatures.RING_PACKED) : 0);
        List<NetBackend> opened = new ArrayList<>();
        try (DaemonOnThread daemon = new DaemonOnThread(new VhostUserNetDaemon.Options(1, false, 2_000));
             EventLoop watch = new EventLoop("vu-watch");
             DriverQueuePairs guest = new DriverQueuePairs(1, true, layout)) {
            List<Integer> onWire = new ArrayList<>();
            List<Integer> received = new ArrayList<>();
            List<String> path = new ArrayList<>();
            QueuePositions at = QueuePositions.start(2, layout);
            int third = FRAMES / 3;
            for (int leg = 0; leg < 3; leg++) {
                NetBackend b = leg == 1 ? new VhostUserNetBackend(daemon.socket(), watch) : new EmulatedNetBackend(daemon.port());
                opened.add(b);
                assertEquals(acked, b.supportedFeatures() & acked, b.name() + " serves " + NetFeatures.names(acked));
                b.start(guest.activation(acked, 1, at));
                path.add(b.name());
                for (int from = leg * third; from < (leg + 1) * third; from += 50) {
                    int to = Math.min(from + 50, (leg + 1) * third);
                    guest.postReceiveBuffers(0, to - from);
                    NumberedFrames.transmit(guest, 0, from, to);
                    NumberedFrames.send(daemon.wire(), 0, from, to);
                    onWire.addAll(NumberedFrames.receive(daemon.wire(), 0, to - from, MOVE_MILLIS));
                    received.addAll(NumberedFrames.receive(guest, 0, to - from, MOVE_MILLIS));
                    assertEquals(to - from, guest.awaitTransmitted(0, to - from, MOVE_MILLIS), "transmit chains returned");
                }
                at = b.stop(); // where the next plane resumes
            }
            List<Integer> all = IntStream.range(0, FRAMES).boxed().toList();
            assertEquals(List.of("emulated", "vhost-user", "emulated"), path);
            assertEquals(all, onWire, "guest -> host: every number once, in order, across both switches");
            assertEquals(all, received, "host -> guest: every number once, in order, across both switches");
            assertEquals(List.of(), NumberedFrames.receive(daemon.wire(), 0, 1, 300), "and none a second time");
            assertEquals(List.of(), guest.deviceErrors());
            int expectedTx = layout == RingLayout.PACKED ? PackedRing.position(FRAMES % 256, (FRAMES / 256) % 2 == 0) : FRAMES;
            assertEquals(expectedTx, at.nextAvail(1), "transmit ring position after " + FRAMES + " one-descriptor chains: " + at);
            assertEquals(expectedTx, at.nextUsed(1), at.toString());
            String log = daemon.log();
            assertTrue(log.contains("queue pair 0 started (" + layout.label() + " rings"), log);
        } finally {
            opened.forEach(NetBackend::close);
        }
    }
}
