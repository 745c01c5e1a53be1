package io.vmm4j.virtio.pci;

import io.vmm4j.virtio.DeviceStatus;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The register file on its own: what the snapshot shows, and what goes to the status machine and the vector listener. */
class CommonConfigRegistersTest {
    private static final long OFFERED = 0x1_0000_0003L;
    private final List<Integer> statusWrites = new ArrayList<>();
    private final List<String> vectorChanges = new ArrayList<>();
    private final CommonConfigRegisters regs = new CommonConfigRegisters(new TwoQueueDevice(OFFERED), 4, statusWrites::add,
            (queue, vector) -> vectorChanges.add(queue + "=" + vector));

    @Test
    void theSnapshotShowsEachQueueAsTheDriverSetIt() {
        regs.write(CommonConfig.QUEUE_SELECT, 2, 1);
        regs.write(CommonConfig.QUEUE_SIZE, 2, 32);
        regs.write(CommonConfig.QUEUE_DESC, 8, 0x1_2345_6000L);
        regs.write(CommonConfig.QUEUE_DRIVER, 4, 0x7000);
        regs.write(CommonConfig.QUEUE_DRIVER + 4, 4, 0x2);
        regs.write(CommonConfig.QUEUE_DEVICE, 8, 0x8000);
        regs.write(CommonConfig.QUEUE_MSIX_VECTOR, 2, 2);
        regs.write(CommonConfig.QUEUE_ENABLE, 2, 1);
        regs.write(CommonConfig.CONFIG_MSIX_VECTOR, 2, 3);
        regs.write(CommonConfig.DRIVER_FEATURE_SELECT, 4, 1);
        regs.write(CommonConfig.DRIVER_FEATURE, 4, 1);

        CommonConfigSnapshot s = regs.snapshot();
        assertEquals(new QueueRegisters(1, 32, 2, true, 0x1_2345_6000L, 0x2_0000_7000L, 0x8000), s.queues().get(1));
        assertEquals(1, s.queues().get(1).notifyOffset());
        assertEquals(new QueueRegisters(0, 256, MsixTable.NO_VECTOR, false, 0, 0, 0), s.queues().get(0), "queue 0 untouched");
        assertEquals(OFFERED, s.deviceFeatures());
        assertEquals(1L << 32, s.driverFeatures());
        assertEquals(3, s.configMsixVector());
        assertEquals(List.of("1=2"), vectorChanges);
    }

    /** §4.1.4.3: a select past the feature words (64 bits here) shows 0 and takes no driver features, even 0xFFFFFFFF. */
    @Test
    void aFeatureSelectPastTheFeatureWordsReadsZeroAndIgnoresWrites() {
        for (long select : new long[] {2, 0x8000_0000L, 0xFFFF_FFFFL}) {
            regs.write(CommonConfig.DEVICE_FEATURE_SELECT, 4, select);
            assertEquals(0, regs.read(CommonConfig.DEVICE_FEATURE, 4), "device_feature with select 0x" + Long.toHexString(select));
            regs.write(CommonConfig.DRIVER_FEATURE_SELECT, 4, select);
            regs.write(CommonConfig.DRIVER_FEATURE, 4, 0xFFFF_FFFFL);
            assertEquals(0, regs.read(CommonConfig.DRIVER_FEATURE, 4), "driver_feature with select 0x" + Long.toHexString(select));
            assertEquals(0, regs.snapshot().driverFeatures(), "no driver feature taken with select 0x" + Long.toHexString(select));
        }
    }

    @Test
    void aSnapshotIsACopyThatLaterWritesLeaveAlone() {
        CommonConfigSnapshot before = regs.snapshot();
        regs.write(CommonConfig.QUEUE_SIZE, 2, 16);
        regs.configChanged();
        assertEquals(256, before.queues().get(0).size());
        assertEquals(16, regs.snapshot().queues().get(0).size());
        assertEquals(before.configGeneration() + 1, regs.snapshot().configGeneration());
        assertThrows(UnsupportedOperationException.class, () -> before.queues().clear());
    }

    @Test
    void deviceStatusWritesGoToTheStatusMachineAndResetRestoresEveryRegister() {
        regs.write(CommonConfig.DEVICE_STATUS, 1, DeviceStatus.ACKNOWLEDGE);
        assertEquals(List.of(DeviceStatus.ACKNOWLEDGE), statusWrites);
        assertEquals(0, regs.deviceStatus(), "the status machine decides what device_status holds");
        regs.setDeviceStatus(DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER);
        regs.write(CommonConfig.QUEUE_MSIX_VECTOR, 2, 1);
        regs.write(CommonConfig.QUEUE_ENABLE, 2, 1);
        regs.write(CommonConfig.QUEUE_SELECT, 2, 1);
        vectorChanges.clear();

        regs.reset();
        CommonConfigSnapshot s = regs.snapshot();
        assertEquals(0, s.deviceStatus());
        assertEquals(List.of(QueueRegisters.atReset(0, 256), QueueRegisters.atReset(1, 64)), s.queues());
        assertEquals(0, regs.read(CommonConfig.QUEUE_SELECT, 2));
        assertEquals(List.of("0=" + MsixTable.NO_VECTOR, "1=" + MsixTable.NO_VECTOR), vectorChanges);
    }

    @Test
    void theSnapshotDoesNotWaitForAStatusWriteInProgress() throws Exception {
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CommonConfigRegisters slow = new CommonConfigRegisters(new TwoQueueDevice(OFFERED), 4, value -> {
            inside.countDown();
            try {
                release.await(); // an activation that takes its time
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, (queue, vector) -> {
        });
        Thread vcpu = Thread.ofPlatform().name("vcpu0").start(() -> slow.write(CommonConfig.DEVICE_STATUS, 1, DeviceStatus.DRIVER_OK));
        try {
            assertTrue(inside.await(10, TimeUnit.SECONDS));
            CommonConfigSnapshot s = assertTimeoutPreemptively(Duration.ofSeconds(5), slow::snapshot, "the snapshot waited for the lock");
            assertEquals(2, s.queues().size());
        } finally {
            release.countDown();
            vcpu.join(10_000);
        }
    }
}
