package io.vmm4j.vhost.user;

import io.vmm4j.vhost.VringAddress;
import io.vmm4j.core.memory.MemoryRegion;
import io.vmm4j.vhost.engine.ThreadCpu;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.NetQueueCounters;
import io.vmm4j.virtio.queue.SplitRing;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static io.vmm4j.virtio.VirtioFeatures.bit;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A front-end that acks MRG_RXBUF and then posts receive buffers the daemon cannot use for the frame
 * that arrives: one 16-byte buffer (legal, but far too few), or a device-readable one (a driver
 * bug). The daemon's I/O thread must not spin, GET_VRING_BASE must answer, the next front-end must
 * be served, and the daemon must say what happened.
 */
class VhostUserHostileReceiveBufferTest {
    private static final long ACKED = bit(VirtioFeatures.VERSION_1) | bit(NetFeatures.MRG_RXBUF) | bit(VirtioFeatures.EVENT_IDX)
            | VhostUserProtocol.bit(VhostUserProtocol.F_PROTOCOL_FEATURES);
    private static final long GET_VRING_BASE_BOUND_MILLIS = 2_000;

    /** What QEMU sends before the rings move: features, memory table, both rings, enable. */
    private static void startRings(RawFrontend f, TestGuest guest) {
        f.get(VhostUserRequest.GET_FEATURES);
        long protocol = f.get(VhostUserRequest.GET_PROTOCOL_FEATURES);
        f.send(VhostUserRequest.SET_PROTOCOL_FEATURES, false, VhostUserMessage.u64(protocol));
        assertEquals(0, f.ack(VhostUserRequest.SET_OWNER, new byte[0]));
        assertEquals(0, f.ack(VhostUserRequest.SET_FEATURES, VhostUserMessage.u64(ACKED)));
        List<VhostUserMessage.Region> table = new ArrayList<>();
        List<MemoryRegion> regions = guest.memory.regions();
        int[] fds = new int[regions.size()];
        for (int i = 0; i < regions.size(); i++) {
            MemoryRegion r = regions.get(i);
            table.add(new VhostUserMessage.Region(r.guestAddress(), r.size(), r.hostAddress(), r.fdOffset()));
            fds[i] = r.fd();
        }
        assertEquals(0, f.ack(VhostUserRequest.SET_MEM_TABLE, VhostUserMessage.memoryTable(table), fds));
        startRing(f, guest, 0, guest.rx.descTable(), guest.rx.availRing(), guest.rx.usedRing(), guest.rxKick.fd(), guest.rxCall.fd());
        startRing(f, guest, 1, guest.tx.descTable(), guest.tx.availRing(), guest.tx.usedRing(), guest.txKick.fd(), guest.txCall.fd());
        assertEquals(0, f.ack(VhostUserRequest.SET_VRING_ENABLE, VhostUserMessage.vringState(0, 1)));
        assertEquals(0, f.ack(VhostUserRequest.SET_VRING_ENABLE, VhostUserMessage.vringState(1, 1)));
    }

    private static void startRing(RawFrontend f, TestGuest guest, int index, long desc, long avail, long used, int kick, int call) {
        int size = TestGuest.QUEUE_SIZE;
        assertEquals(0, f.ack(VhostUserRequest.SET_VRING_NUM, VhostUserMessage.vringState(index, size)));
        assertEquals(0, f.ack(VhostUserRequest.SET_VRING_BASE, VhostUserMessage.vringState(index, 0)));
        VringAddress address = new VringAddress(guest.memory.hostAddress(desc, SplitRing.descriptorTableBytes(size)),
                guest.memory.hostAddress(used, SplitRing.usedRingBytes(size)),
                guest.memory.hostAddress(avail, SplitRing.availRingBytes(size)));
        assertEquals(0, f.ack(VhostUserRequest.SET_VRING_ADDR,
                VhostUserMessage.vringAddress(new VhostUserMessage.VringAddressDescription(index, 0, address, 0))));
        assertEquals(0, f.ack(VhostUserRequest.SET_VRING_CALL, VhostUserMessage.u64(index), call));
        assertEquals(0, f.ack(VhostUserRequest.SET_VRING_KICK, VhostUserMessage.u64(index), kick));
    }

    /** Posts one receive buffer of {@code length} bytes on the guest's ring and kicks. */
    private static void postOne(TestGuest guest, int length, boolean writable) {
        long buf = guest.buffers.allocate(2048, 16);
        assertTrue(guest.rx.add(new long[] {buf}, new int[] {length}, writable ? 0 : 1) >= 0);
        guest.rx.publish();
        guest.rxKick.signal();
    }

    /**
     * Runs one hostile front-end: rings up, {@code post} buffers, a 1012-byte frame arrives. Checks that
     * the I/O thread sleeps, GET_VRING_BASE(0) answers in time with {@code expectedBase}, the next
     * front-end is served; returns the daemon's log.
     */
    private static String hostileSession(DaemonOnThread d, TestGuest guest, Runnable post, int expectedBase) throws Exception {
        ThreadCpu io = ThreadCpu.of(d.daemon().loop(0));
        try (RawFrontend f = new RawFrontend(d.socket())) {
            startRings(f, guest);
            post.run();
            d.wire().send(0, VhostUserRoundTripTest.withHeader(VhostUserRoundTripTest.frame(1000, 1)));
            Thread.sleep(200); // the daemon reads the frame and decides
            io.assertSleeps("the daemon's net-io-0 with an unusable receive buffer posted");

            long t0 = System.nanoTime();
            f.send(VhostUserRequest.GET_VRING_BASE, false, VhostUserMessage.vringState(0, 0));
            VhostUserMessage m = f.reply();
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(ms < GET_VRING_BASE_BOUND_MILLIS, "GET_VRING_BASE took " + ms + " ms; log:\n" + d.log());
            assertEquals(VhostUserRequest.GET_VRING_BASE.code(), m.request());
            assertEquals(expectedBase, m.vringState().num(), "where the receive ring stood");
        }
        d.awaitSessionsEnded(1, 3_000);
        try (RawFrontend next = new RawFrontend(d.socket())) {
            assertEquals(d.daemon().offeredFeatures(), next.get(VhostUserRequest.GET_FEATURES), "the next front-end is served");
        }
        d.awaitSessionsEnded(2, 3_000);
        assertTrue(d.alive(), "the daemon thread lives on");
        return d.log();
    }

    @Test
    void oneSixteenByteBufferForALargerFrameWaitsWithoutSpinningAndTheFrameIsCountedAsDroppedAtStop() throws Exception {
        try (DaemonOnThread d = new DaemonOnThread(1, 2_000); TestGuest guest = new TestGuest(true)) {
            // legal with MRG_RXBUF (at least the 12-byte header, virtio 1.2 §5.1.6.3.1), but 64 of them would be needed
            String log = hostileSession(d, guest, () -> postOne(guest, 16, true), 0);
            NetQueueCounters.Snapshot rx = d.daemon().stats().sessions().getFirst().queues().getFirst();
            assertEquals(0, rx.packets(), log);
            assertEquals(1, rx.dropsNoBuffer(), "the frame that waited for buffers is counted when GET_VRING_BASE stops the ring: " + log);
            assertTrue(log.contains("queue rx0: packets 0") && log.contains("no-buffer drops 1"), log);
            assertEquals(0, SplitRing.usedIdx(guest.memory, guest.rx.usedRing()),
                    "the buffer was not used");
        }
    }

    @Test
    void aDeviceReadableReceiveBufferIsARingErrorAndTheDaemonSaysSo() throws Exception {
        try (DaemonOnThread d = new DaemonOnThread(1, 2_000); TestGuest guest = new TestGuest(true)) {
            String log = hostileSession(d, guest, () -> postOne(guest, 2048, false), 1);
            assertTrue(log.contains("front-end 1: queue pair 0 stopped on a ring error: receiveq1: receive buffer (chain 0) has 1"
                    + " device-readable descriptor(s)"), log);
            assertTrue(log.contains("§2.7.5.1"), log);
            assertEquals(0, d.daemon().stats().sessions().getFirst().queues().getFirst().packets());
        }
    }
}
