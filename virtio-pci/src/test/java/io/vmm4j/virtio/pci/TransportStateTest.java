package io.vmm4j.virtio.pci;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.irq.IntxLine;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.VirtioFeatures;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static io.vmm4j.virtio.DeviceStatus.ACKNOWLEDGE;
import static io.vmm4j.virtio.DeviceStatus.DRIVER;
import static io.vmm4j.virtio.DeviceStatus.DRIVER_OK;
import static io.vmm4j.virtio.DeviceStatus.FEATURES_OK;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What management reads from a transport (QMP x-vmm4j-query-virtio, metrics): the common config
 * snapshot, the reason of a refused FEATURES_OK and the NEEDS_RESET count. The driver's side is
 * plain BAR 0 writes, so the test needs nothing but the transport.
 */
class TransportStateTest {
    private static final long BAR0 = 0xC000_0000L;
    private static final long VERSION_1 = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
    private final GuestMemory memory = GuestMemory.builder().region(0, 1 << 20).build();
    private final Bus mmio = new Bus("mmio");
    private final TwoQueueDevice device = new TwoQueueDevice(VERSION_1 | 1);
    private final VirtioPciTransport transport = new VirtioPciTransport(device, memory, mmio, (address, data) -> {
    }, IntxLine.NONE, null, VirtioPciTransport.NotifyMode.IOEVENTFD, 3);
    private final List<QueueRegisters> activated = new ArrayList<>();

    TransportStateTest() {
        transport.writeConfig(PciConfigSpace.BAR0, 4, (int) BAR0);
        transport.writeConfig(PciConfigSpace.BAR0 + 4, 4, 0);
        transport.writeConfig(PciConfigSpace.COMMAND, 2, PciConfigSpace.COMMAND_MEMORY);
        transport.addObserver(new VirtioPciTransport.Observer() {
            @Override
            public void queueActivated(QueueRegisters queue) {
                activated.add(queue);
            }
        });
    }

    @AfterEach
    void close() {
        memory.close();
    }

    private void write(int field, int size, long value) {
        mmio.write(BAR0 + VirtioPciTransport.COMMON_OFFSET + field, size, value);
    }

    private void acceptFeatures(long features) {
        write(CommonConfig.DEVICE_STATUS, 1, ACKNOWLEDGE | DRIVER);
        write(CommonConfig.DRIVER_FEATURE_SELECT, 4, 0);
        write(CommonConfig.DRIVER_FEATURE, 4, features & 0xFFFF_FFFFL);
        write(CommonConfig.DRIVER_FEATURE_SELECT, 4, 1);
        write(CommonConfig.DRIVER_FEATURE, 4, features >>> 32);
        write(CommonConfig.DEVICE_STATUS, 1, ACKNOWLEDGE | DRIVER | FEATURES_OK);
    }

    @Test
    void theSnapshotAfterDriverOkShowsTheQueueTheDeviceRunsAndTheObserverSawIt() {
        acceptFeatures(VERSION_1 | 1);
        write(CommonConfig.QUEUE_SELECT, 2, 1);
        write(CommonConfig.QUEUE_SIZE, 2, 16);
        write(CommonConfig.QUEUE_MSIX_VECTOR, 2, 1);
        write(CommonConfig.QUEUE_DESC, 8, 0x1000);
        write(CommonConfig.QUEUE_DRIVER, 8, 0x2000);
        write(CommonConfig.QUEUE_DEVICE, 8, 0x3000);
        write(CommonConfig.QUEUE_ENABLE, 2, 1);
        write(CommonConfig.CONFIG_MSIX_VECTOR, 2, 0);
        write(CommonConfig.DEVICE_STATUS, 1, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);

        CommonConfigSnapshot s = transport.commonConfig();
        assertEquals(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK, s.deviceStatus());
        assertEquals(VERSION_1 | 1, s.driverFeatures());
        assertEquals(VERSION_1 | 1, s.deviceFeatures());
        assertEquals(0, s.configMsixVector());
        QueueRegisters q1 = new QueueRegisters(1, 16, 1, true, 0x1000, 0x2000, 0x3000);
        assertEquals(List.of(QueueRegisters.atReset(0, 256), q1), s.queues());
        assertEquals(List.of(q1), activated);
        assertEquals(1, device.activations.get());
        assertEquals(1, transport.queueVector(1));

        transport.resetDevice();
        s = transport.commonConfig();
        assertEquals(0, s.deviceStatus());
        assertEquals(List.of(QueueRegisters.atReset(0, 256), QueueRegisters.atReset(1, 64)), s.queues(), "a reset forgets the rings");
        assertEquals(MsixTable.NO_VECTOR, s.configMsixVector());
    }

    @Test
    void aRefusedFeaturesOkSaysWhyUntilTheNextAttemptOrReset() {
        assertNull(transport.featureRefusal());
        acceptFeatures(1);
        assertEquals(ACKNOWLEDGE | DRIVER, transport.status());
        assertTrue(transport.featureRefusal().contains("VERSION_1"), transport.featureRefusal());
        transport.resetDevice();
        assertNull(transport.featureRefusal(), "a reset forgets it");

        acceptFeatures(VERSION_1 | 2);
        assertTrue(transport.featureRefusal().contains("does not offer"), transport.featureRefusal());
        write(CommonConfig.DEVICE_STATUS, 1, 0);
        acceptFeatures(VERSION_1);
        assertEquals(ACKNOWLEDGE | DRIVER | FEATURES_OK, transport.status());
        assertNull(transport.featureRefusal(), "an accepted set has nothing to say");
    }

    @Test
    void theNeedsResetCountCountsEntriesNotErrors() {
        assertEquals(0, transport.needsResetCount());
        write(CommonConfig.DEVICE_STATUS, 1, ACKNOWLEDGE | DRIVER | DRIVER_OK); // DRIVER_OK without FEATURES_OK
        assertEquals(1, transport.needsResetCount());
        transport.deviceError("a second error while the device already needs a reset");
        assertEquals(1, transport.needsResetCount());
        assertTrue((transport.status() & DeviceStatus.DEVICE_NEEDS_RESET) != 0);

        transport.resetDevice();
        assertEquals(1, transport.needsResetCount(), "the count outlives a reset");
        assertNull(transport.lastError());
        acceptFeatures(VERSION_1);
        transport.deviceError("a ring error");
        assertEquals(2, transport.needsResetCount());
        assertEquals("a ring error", transport.lastError());
    }
}
