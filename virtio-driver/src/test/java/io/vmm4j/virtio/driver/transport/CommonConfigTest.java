package io.vmm4j.virtio.driver.transport;

import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.driver.DriverQueue;
import io.vmm4j.virtio.driver.VirtioPciDriver;
import io.vmm4j.virtio.pci.CommonConfig;
import io.vmm4j.virtio.pci.MsixTable;
import io.vmm4j.virtio.pci.VirtioPciTransport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;

import static io.vmm4j.virtio.DeviceStatus.ACKNOWLEDGE;
import static io.vmm4j.virtio.DeviceStatus.DEVICE_NEEDS_RESET;
import static io.vmm4j.virtio.DeviceStatus.DRIVER;
import static io.vmm4j.virtio.DeviceStatus.DRIVER_OK;
import static io.vmm4j.virtio.DeviceStatus.FEATURES_OK;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every field of the common configuration and every status transition, through bus accesses only. */
class CommonConfigTest {
    private static final long VERSION_1 = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
    private final RecordingDevice device = new RecordingDevice();
    private final TransportFixture vm = new TransportFixture(device, VirtioPciTransport.NotifyMode.IOEVENTFD);
    private final VirtioPciDriver driver = vm.driver;

    @AfterEach
    void close() {
        vm.close();
    }

    private long read(int field, int size) {
        return driver.readCommon(field, size);
    }

    private void write(int field, int size, long value) {
        driver.writeCommon(field, size, value);
    }

    @Test
    void deviceFeatureWindowsShowTheOfferedBits() {
        write(CommonConfig.DEVICE_FEATURE_SELECT, 4, 0);
        assertEquals(device.offeredFeatures() & 0xFFFF_FFFFL, read(CommonConfig.DEVICE_FEATURE, 4));
        write(CommonConfig.DEVICE_FEATURE_SELECT, 4, 1);
        assertEquals(1, read(CommonConfig.DEVICE_FEATURE, 4), "VERSION_1 is bit 32");
        assertEquals(1, read(CommonConfig.DEVICE_FEATURE_SELECT, 4));
        write(CommonConfig.DEVICE_FEATURE_SELECT, 4, 2);
        assertEquals(0, read(CommonConfig.DEVICE_FEATURE, 4), "windows past bit 63 read 0");
        write(CommonConfig.DEVICE_FEATURE, 4, 0xFFFF_FFFFL);
        write(CommonConfig.DEVICE_FEATURE_SELECT, 4, 0);
        assertEquals(device.offeredFeatures() & 0xFFFF_FFFFL, read(CommonConfig.DEVICE_FEATURE, 4), "device_feature is read-only");
    }

    @Test
    void driverFeaturesAreWritableUntilFeaturesOk() {
        write(CommonConfig.DEVICE_STATUS, 1, ACKNOWLEDGE | DRIVER);
        driver.writeFeatures(VERSION_1 | 1);
        write(CommonConfig.DRIVER_FEATURE_SELECT, 4, 1);
        assertEquals(1, read(CommonConfig.DRIVER_FEATURE, 4));
        write(CommonConfig.DEVICE_STATUS, 1, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        assertEquals(ACKNOWLEDGE | DRIVER | FEATURES_OK, driver.status());
        driver.writeFeatures(VERSION_1 | 3);
        assertEquals(VERSION_1 | 1, vm.transport.driverFeatures(), "changes after FEATURES_OK are ignored");
    }

    @Test
    void featuresOkIsRefusedForUnacceptableSetsAndTheDriverSeesIt() {
        record Case(String why, long features) {
        }
        for (Case c : List.of(new Case("no VERSION_1", 1), new Case("a bit the device does not offer", VERSION_1 | (1L << 5)),
                new Case("a dependency the device rejects", VERSION_1 | (1L << RecordingDevice.FEATURE_NEEDS_A)))) {
            driver.reset();
            write(CommonConfig.DEVICE_STATUS, 1, ACKNOWLEDGE | DRIVER);
            driver.writeFeatures(c.features());
            write(CommonConfig.DEVICE_STATUS, 1, ACKNOWLEDGE | DRIVER | FEATURES_OK);
            assertEquals(ACKNOWLEDGE | DRIVER, driver.status(), c.why() + ": FEATURES_OK must not stick");
        }
        assertThrows(VirtioPciDriver.DriverException.class, () -> driver.negotiate(1));
        assertEquals(VERSION_1 | 3, driver.negotiate(VERSION_1 | 3), "the dependency satisfied is accepted");
    }

    @Test
    void driverOkWithoutFeaturesOkNeedsReset() {
        write(CommonConfig.DEVICE_STATUS, 1, ACKNOWLEDGE | DRIVER);
        long configIrqs = vm.transport.configInterruptCount();
        write(CommonConfig.DEVICE_STATUS, 1, ACKNOWLEDGE | DRIVER | DRIVER_OK);
        assertEquals(ACKNOWLEDGE | DRIVER | DEVICE_NEEDS_RESET, driver.status());
        assertEquals(configIrqs + 1, vm.transport.configInterruptCount(), "NEEDS_RESET raises the config interrupt");
        assertTrue(vm.transport.lastError().contains("FEATURES_OK"));
        assertTrue(!device.log.contains("activate"));
        write(CommonConfig.DEVICE_STATUS, 1, ACKNOWLEDGE);
        assertEquals(ACKNOWLEDGE | DEVICE_NEEDS_RESET, driver.status(), "only a reset clears NEEDS_RESET");
        driver.reset();
        assertEquals(0, driver.status());
        assertNull(vm.transport.lastError());
    }

    @Test
    void configVectorAcceptsTableVectorsOnly() {
        assertEquals(MsixTable.NO_VECTOR, read(CommonConfig.CONFIG_MSIX_VECTOR, 2), "reset value");
        assertEquals(3, driver.setConfigVector(3));
        assertEquals(MsixTable.NO_VECTOR, driver.setConfigVector(4), "the table has 4 vectors");
        assertEquals(2, read(CommonConfig.NUM_QUEUES, 2));
        write(CommonConfig.NUM_QUEUES, 2, 9);
        assertEquals(2, read(CommonConfig.NUM_QUEUES, 2), "num_queues is read-only");
    }

    @Test
    void configGenerationBumpsOnConfigChangeAndDeviceConfigIsReachable() {
        long gen = read(CommonConfig.CONFIG_GENERATION, 1);
        device.host.configChanged();
        assertEquals((gen + 1) & 0xFF, read(CommonConfig.CONFIG_GENERATION, 1));
        assertEquals(0x0807060504030201L, driver.readDeviceConfig(0, 8));
        assertEquals(0x0403, driver.readDeviceConfig(2, 2));
        driver.writeDeviceConfig(4, 4, 0xAABBCCDDL);
        assertEquals(0xAABBCCDDL, driver.readDeviceConfig(4, 4));
        assertEquals(0, driver.readDeviceConfig(6, 4), "an access past the device's config reads 0");
    }

    @Test
    void queueRegistersPerSelectedQueue() {
        write(CommonConfig.QUEUE_SELECT, 2, 1);
        assertEquals(64, read(CommonConfig.QUEUE_SIZE, 2), "max size of queue 1");
        assertEquals(1, read(CommonConfig.QUEUE_NOTIFY_OFF, 2));
        assertEquals(1, read(CommonConfig.QUEUE_NOTIFY_DATA, 2));
        assertEquals(0, read(CommonConfig.QUEUE_ENABLE, 2));
        assertEquals(MsixTable.NO_VECTOR, read(CommonConfig.QUEUE_MSIX_VECTOR, 2));
        assertEquals(0, read(CommonConfig.QUEUE_RESET, 2));
        write(CommonConfig.QUEUE_SIZE, 2, 32);
        assertEquals(32, read(CommonConfig.QUEUE_SIZE, 2), "the driver may choose a smaller size");
        write(CommonConfig.QUEUE_DESC, 8, 0x1_2345_6000L);
        assertEquals(0x1_2345_6000L, read(CommonConfig.QUEUE_DESC, 8));
        write(CommonConfig.QUEUE_DRIVER, 4, 0x7000);
        write(CommonConfig.QUEUE_DRIVER + 4, 4, 0x2);
        assertEquals(0x2_0000_7000L, read(CommonConfig.QUEUE_DRIVER, 8), "64-bit fields take two 32-bit halves");
        assertEquals(0x2, read(CommonConfig.QUEUE_DRIVER + 4, 4));
        write(CommonConfig.QUEUE_DEVICE, 8, 0x8000);
        assertEquals(0x8000, read(CommonConfig.QUEUE_DEVICE, 8));
        write(CommonConfig.QUEUE_MSIX_VECTOR, 2, 2);
        assertEquals(2, read(CommonConfig.QUEUE_MSIX_VECTOR, 2));
        write(CommonConfig.QUEUE_MSIX_VECTOR, 2, 100);
        assertEquals(MsixTable.NO_VECTOR, read(CommonConfig.QUEUE_MSIX_VECTOR, 2));

        write(CommonConfig.QUEUE_ENABLE, 2, 1);
        assertEquals(1, read(CommonConfig.QUEUE_ENABLE, 2));
        write(CommonConfig.QUEUE_SIZE, 2, 16);
        write(CommonConfig.QUEUE_DESC, 8, 0x9000);
        assertEquals(32, read(CommonConfig.QUEUE_SIZE, 2), "an enabled queue's layout is fixed");
        assertEquals(0x1_2345_6000L, read(CommonConfig.QUEUE_DESC, 8));
        write(CommonConfig.QUEUE_ENABLE, 2, 0);
        assertEquals(1, read(CommonConfig.QUEUE_ENABLE, 2), "writing 0 to queue_enable does not disable");

        write(CommonConfig.QUEUE_SELECT, 2, 0);
        assertEquals(256, read(CommonConfig.QUEUE_SIZE, 2), "queue 0 is untouched");
        write(CommonConfig.QUEUE_SELECT, 2, 7);
        assertEquals(0, read(CommonConfig.QUEUE_SIZE, 2), "a queue past num_queues reads size 0");
        write(CommonConfig.QUEUE_ENABLE, 2, 1);
        assertEquals(0, read(CommonConfig.QUEUE_ENABLE, 2));
    }

    @Test
    void driverOkActivatesTheEnabledQueues() {
        driver.negotiate(VERSION_1 | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX));
        driver.enableMsix(3, 0x40);
        DriverQueue q0 = driver.setupQueue(0, 128, 1);
        driver.driverOk();
        assertEquals(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK, driver.status());
        assertNotNull(device.context);
        assertEquals(128, device.context.queue(0).size());
        assertEquals(q0.descTable(), device.context.queue(0).descTable());
        assertNull(device.context.queue(1), "queue 1 was not enabled");
        assertTrue(device.context.queue(0).eventIdx());
        assertEquals(VERSION_1 | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX), device.context.ackedFeatures());
    }

    @Test
    void resetWhileQueuesAreLiveStopsTheDeviceAndRestoresDefaults() throws Exception {
        driver.negotiate(VERSION_1);
        driver.setupQueue(0, 64, MsixTable.NO_VECTOR);
        driver.setupQueue(1, 0, MsixTable.NO_VECTOR);
        driver.setConfigVector(0);
        driver.driverOk();
        assertNotNull(device.context);
        driver.reset();
        assertEquals("reset", device.log.getLast());
        assertTrue(device.log.lastIndexOf("activate") < device.log.lastIndexOf("reset"));
        assertNull(device.context);
        write(CommonConfig.QUEUE_SELECT, 2, 0);
        assertEquals(256, read(CommonConfig.QUEUE_SIZE, 2));
        assertEquals(0, read(CommonConfig.QUEUE_ENABLE, 2));
        assertEquals(0, read(CommonConfig.QUEUE_DESC, 8));
        assertEquals(MsixTable.NO_VECTOR, read(CommonConfig.CONFIG_MSIX_VECTOR, 2));
        assertEquals(0, vm.transport.driverFeatures());
        driver.kick(driver.notifyAddress(0), 0);
        assertEquals(0, vm.transport.kickFd(0).drain(), "a kick after reset goes nowhere");
    }

    @Test
    void aRingOutsideGuestMemoryAtDriverOkNeedsReset() {
        driver.negotiate(VERSION_1);
        write(CommonConfig.QUEUE_SELECT, 2, 0);
        write(CommonConfig.QUEUE_DESC, 8, 0x7FFF_0000_0000L);
        write(CommonConfig.QUEUE_DRIVER, 8, 0x2000);
        write(CommonConfig.QUEUE_DEVICE, 8, 0x3000);
        write(CommonConfig.QUEUE_ENABLE, 2, 1);
        long configIrqs = vm.transport.configInterruptCount();
        driver.driverOk();
        assertTrue((driver.status() & DEVICE_NEEDS_RESET) != 0);
        assertEquals(configIrqs + 1, vm.transport.configInterruptCount());
        assertNull(device.context, "the device was not activated on a bad ring");
        assertTrue(vm.transport.lastError().contains("queue 0"), vm.transport.lastError());
    }

    @Test
    void notifyWritesSignalTheKickEventfd() {
        driver.negotiate(VERSION_1);
        driver.setupQueue(0, 0, MsixTable.NO_VECTOR);
        driver.driverOk();
        long notify = driver.notifyAddress(0);
        driver.kick(notify, 0);
        driver.kick(notify, 0);
        assertEquals(2, vm.transport.kickFd(0).drain());
        assertEquals(2, vm.transport.notifyCount(0));
        driver.kick(driver.notifyAddress(1), 1);
        assertEquals(0, vm.transport.kickFd(1).drain(), "queue 1 is not enabled");
    }

    @Test
    void isrIsReadToClearAndDrivesIntxWithoutMsix() {
        driver.negotiate(VERSION_1);
        assertEquals(0, vm.intxLevel.get());
        vm.transport.signalQueue(0);
        assertEquals(1, vm.intxLevel.get(), "MSI-X off: INTx asserted");
        device.host.configChanged();
        assertEquals(VirtioPciTransport.ISR_QUEUE | VirtioPciTransport.ISR_CONFIG, driver.readIsr());
        assertEquals(0, vm.intxLevel.get(), "reading ISR de-asserts");
        assertEquals(0, driver.readIsr(), "and clears it");
        assertEquals(DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK, driver.status());
    }
}
