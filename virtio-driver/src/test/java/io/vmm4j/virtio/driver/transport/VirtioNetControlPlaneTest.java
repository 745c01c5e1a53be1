package io.vmm4j.virtio.driver.transport;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.driver.VirtioNetDriver;
import io.vmm4j.virtio.driver.VirtioPciDriver;
import io.vmm4j.virtio.net.NetConfig;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.QueuePositions;
import io.vmm4j.virtio.net.VirtioNet;
import io.vmm4j.virtio.pci.VirtioPciTransport;
import io.vmm4j.virtio.queue.PackedRing;
import io.vmm4j.virtio.queue.RingLayout;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;

import static io.vmm4j.virtio.VirtioFeatures.bit;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The virtio-net control plane through the real transport, with a recording data plane. */
class VirtioNetControlPlaneTest {
    private static final byte[] MAC = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
    private final EventLoop control = new EventLoop("net-ctrl");
    private RecordingNetBackend backend;
    private VirtioNet net;
    private TransportFixture vm;

    private void boot(long backendFeatures, int pairs) {
        boot(backendFeatures, pairs, RingLayout.SPLIT);
    }

    private void boot(long backendFeatures, int pairs, RingLayout offeredRings) {
        backend = new RecordingNetBackend(backendFeatures, pairs);
        net = new VirtioNet(new NetConfig(MAC, 1500, pairs, 256, offeredRings), backend, control);
        vm = new TransportFixture(net, VirtioPciTransport.NotifyMode.IOEVENTFD, 2 + 2 * pairs);
    }

    @AfterEach
    void close() {
        if (vm != null) {
            vm.driver.reset(); // the device stops touching guest memory before it is unmapped
            vm.close();
        }
        control.close();
    }

    private VirtioNetDriver bringUp(long wanted, int pairs) {
        VirtioNetDriver d = new VirtioNetDriver(vm.driver, vm.memory, vm.allocator, vm.apic);
        d.bringUp(new VirtioNetDriver.Options(wanted, pairs, 2048, 8, 0x40));
        return d;
    }

    @Test
    void offerIsTheDeviceModelCutByTheBackendAndClosedOverDependencies() {
        boot(-1L & ~bit(NetFeatures.CSUM) & ~bit(NetFeatures.GUEST_CSUM), 1);
        long offered = net.offeredFeatures();
        assertTrue(VirtioFeatures.has(offered, VirtioFeatures.VERSION_1));
        assertTrue(VirtioFeatures.has(offered, NetFeatures.MRG_RXBUF));
        assertFalse(VirtioFeatures.has(offered, NetFeatures.HOST_TSO4), "HOST_TSO4 needs CSUM, which the backend lacks");
        assertFalse(VirtioFeatures.has(offered, NetFeatures.GUEST_TSO6), "GUEST_TSO6 needs GUEST_CSUM");
        assertFalse(VirtioFeatures.has(offered, NetFeatures.GUEST_ECN));
        assertFalse(VirtioFeatures.has(offered, NetFeatures.MQ), "one pair: no MQ");
        assertEquals(null, NetFeatures.dependencyProblem(offered));
    }

    @Test
    void brokenDependenciesAreRefusedAtFeaturesOk() {
        boot(-1L, 1);
        VirtioPciDriver d = vm.driver;
        assertThrows(VirtioPciDriver.DriverException.class,
                () -> d.negotiate(bit(VirtioFeatures.VERSION_1) | bit(NetFeatures.GUEST_TSO4)));
        assertThrows(VirtioPciDriver.DriverException.class,
                () -> d.negotiate(bit(VirtioFeatures.VERSION_1) | bit(NetFeatures.CTRL_RX)));
        d.negotiate(bit(VirtioFeatures.VERSION_1) | bit(NetFeatures.GUEST_TSO4) | bit(NetFeatures.GUEST_CSUM));
    }

    @Test
    void configSpaceShowsMacLinkPairsAndMtuAndLinkChangesInterrupt() throws Exception {
        boot(-1L, 2);
        VirtioNetDriver d = bringUp(net.offeredFeatures(), 2);
        assertArrayEquals(MAC, d.mac());
        assertTrue(d.linkUp());
        assertEquals(2, d.maxQueuePairs());
        assertEquals(1500, d.mtu());
        long configIrqs = vm.apic.count(0x40);
        net.setLinkUp(false);
        assertEquals(configIrqs + 1, vm.apic.awaitBeyond(0x40, configIrqs, 5_000), "config interrupt on vector 0");
        assertFalse(d.linkUp());
        net.setLinkUp(true);
        assertTrue(d.linkUp());
    }

    @Test
    void driverOkStartsTheBackendAndTheControlQueueStaysInTheVmm() {
        boot(-1L, 2);
        long wanted = net.offeredFeatures();
        VirtioNetDriver d = bringUp(wanted, 2);
        assertEquals("start pairs=2 active=1 resume=" + QueuePositions.zero(4), backend.log.getFirst());
        assertEquals("pairs 2", backend.log.get(1), "the driver's MQ command reached the data plane");
        assertEquals(2, net.activePairs());
        assertEquals(VirtioNet.CTRL_ERR, d.setQueuePairs(3), "more pairs than max_virtqueue_pairs");
        assertEquals(VirtioNet.CTRL_ERR, d.setQueuePairs(0));
        assertEquals(VirtioNet.CTRL_OK, d.setQueuePairs(1));
        assertEquals("pairs 1", backend.log.getLast());

        long offloads = bit(NetFeatures.GUEST_CSUM) | bit(NetFeatures.GUEST_TSO4);
        assertEquals(VirtioNet.CTRL_OK, d.setGuestOffloads(offloads));
        assertEquals("offloads " + List.of("GUEST_CSUM", "GUEST_TSO4"), backend.log.getLast());
        assertEquals(VirtioNet.CTRL_ERR, d.setGuestOffloads(bit(NetFeatures.GUEST_TSO4)), "TSO4 without CSUM");
        assertEquals(VirtioNet.CTRL_ERR, d.setGuestOffloads(bit(NetFeatures.MRG_RXBUF)), "not an offload");
        assertEquals(VirtioNet.CTRL_OK, d.setGuestOffloads(0));

        assertEquals(VirtioNet.CTRL_OK, d.setRxMode(VirtioNet.RX_PROMISC, true));
        assertTrue(net.rxFilter().promiscuous());
        assertEquals(VirtioNet.CTRL_ERR, d.controlCommand(9, 0, new byte[] {1}), "unknown class");
        assertEquals(VirtioNet.CTRL_ERR, d.controlCommand(VirtioNet.CLASS_RX, 7, new byte[] {1}), "unknown rx command");
        assertEquals(0, vm.transport.status() & DeviceStatus.DEVICE_NEEDS_RESET);
    }

    @Test
    void withPackedRingsTheDriverSetsThemUpAndTheBackendStartsAtOffsetZeroWrapOne() {
        boot(-1L, 2, RingLayout.PACKED);
        long offered = net.offeredFeatures();
        assertTrue(VirtioFeatures.has(offered, VirtioFeatures.RING_PACKED), "the NIC offers packed rings");
        VirtioNetDriver d = bringUp(offered, 2);
        assertTrue(d.packedRings(), "the driver acked RING_PACKED and set up packed queues");
        assertEquals(256, d.rxQueueSize(0));
        // §2.8.1: both wrap counters start at 1, so a fresh ring resumes at offset 0 with bit 15 set, not at 0
        int start = PackedRing.position(0, true);
        QueuePositions fresh = new QueuePositions(new int[] {start, start, start, start}, new int[] {start, start, start, start});
        assertEquals("start pairs=2 active=1 resume=" + fresh, backend.log.getFirst());
        // the control queue is packed too, served by the VMM: commands and their acks go through it
        assertEquals("pairs 2", backend.log.get(1), "the driver's MQ command reached the data plane");
        for (int i = 0; i < 300; i++) {
            assertEquals(VirtioNet.CTRL_OK, d.setRxMode(VirtioNet.RX_PROMISC, i % 2 == 0), "command " + i + ", past the ring's 64 slots");
        }
        assertEquals(VirtioNet.CTRL_ERR, d.controlCommand(9, 0, new byte[] {1}), "unknown class");
        assertEquals(0, vm.transport.status() & DeviceStatus.DEVICE_NEEDS_RESET);
    }

    @Test
    void withPackedRingsOfferedADriverMayStillChooseSplit() {
        boot(-1L, 1, RingLayout.PACKED);
        VirtioNetDriver d = bringUp(net.offeredFeatures() & ~bit(VirtioFeatures.RING_PACKED), 1);
        assertFalse(d.packedRings());
        assertEquals("start pairs=1 active=1 resume=" + QueuePositions.zero(2), backend.log.getFirst());
        assertEquals(VirtioNet.CTRL_OK, d.setRxMode(VirtioNet.RX_PROMISC, true));
        assertThrows(VirtioPciDriver.DriverException.class, () -> {
            vm.driver.negotiate(bit(VirtioFeatures.VERSION_1) | bit(VirtioFeatures.RING_PACKED));
            vm.driver.setupQueue(0, 0, io.vmm4j.virtio.pci.MsixTable.NO_VECTOR);
        }, "setupQueue builds split rings only; with RING_PACKED acked it refuses");
    }

    @Test
    void resetStopsTheBackendAndSwitchResumesAtThePositions() {
        boot(-1L, 1);
        bringUp(net.offeredFeatures(), 1);
        backend.stopAt = new QueuePositions(new int[] {7, 9}, new int[] {5, 9});
        RecordingNetBackend next = new RecordingNetBackend(-1L, 1);
        assertEquals(backend, net.switchBackend(next));
        assertEquals("stop", backend.log.getLast());
        assertEquals("start pairs=1 active=1 resume=" + backend.stopAt, next.log.getFirst());
        vm.driver.reset();
        assertEquals("stop", next.log.getLast());
        assertEquals(null, net.backend().stop(), "stopping twice is harmless");
    }
}
