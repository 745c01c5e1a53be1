package io.vmm4j.virtio.pci;

import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.VirtioDevice;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * The device side of {@code struct virtio_pci_common_cfg} (virtio 1.2 §4.1.4.3): the feature
 * windows, config_msix_vector, device_status, config_generation and, behind queue_select, one
 * {@link QueueRegisters} per queue. It decodes the driver's accesses (any width inside one field)
 * and applies each field's access rules; a device_status write goes to the transport's status
 * machine, which activates or resets the device and comes back here for the registers.
 *
 * <p>Driver accesses hold this object's monitor, and so does the status machine they run. What other
 * threads read (device_status, vectors, driver features, queue records) is atomic or volatile, so a
 * data plane reporting an error, the interrupt path and {@link #snapshot()} never wait for an activation.
 */
final class CommonConfigRegisters {
    private static final Logger LOG = LoggerFactory.getLogger(CommonConfigRegisters.class);

    /** Runs a device_status write (§2.1, §3.1.1); called with the register file locked. */
    interface DeviceStatusWriter {
        void writeDeviceStatus(int value);
    }

    private final VirtioDevice device;
    private final int msixVectors;
    private final DeviceStatusWriter statusWriter;
    private final VirtioPciTransport.QueueVectorListener vectorListener;

    private final AtomicInteger deviceStatus = new AtomicInteger();
    private final AtomicInteger configGeneration = new AtomicInteger();
    private final AtomicReferenceArray<QueueRegisters> queues;
    private volatile int configMsixVector = MsixTable.NO_VECTOR;
    private volatile long driverFeatures; // written with this locked
    // guarded by this
    private int deviceFeatureSelect;
    private int driverFeatureSelect;
    private int queueSelect;

    /**
     * @param msixVectors    the MSI-X table size: a vector past it reads back as NO_VECTOR
     * @param vectorListener told after a queue's vector changed, with this locked
     */
    CommonConfigRegisters(VirtioDevice device, int msixVectors, DeviceStatusWriter statusWriter,
                          VirtioPciTransport.QueueVectorListener vectorListener) {
        this.device = device;
        this.msixVectors = msixVectors;
        this.statusWriter = statusWriter;
        this.vectorListener = vectorListener;
        this.queues = new AtomicReferenceArray<>(device.queueCount());
        for (int q = 0; q < queues.length(); q++) {
            queues.set(q, QueueRegisters.atReset(q, device.maxQueueSize(q)));
        }
    }

    // ---- the driver's accesses ----

    /** A driver read of {@code size} bytes at {@code offset}; 0 outside a field or across two. */
    synchronized long read(int offset, int size) {
        int[] f = CommonConfig.fieldAt(offset);
        if (f == null || offset + size > f[0] + f[1]) {
            return 0;
        }
        long v = readField(f[0]) >>> (8 * (offset - f[0]));
        return size == 8 ? v : v & ((1L << (8 * size)) - 1);
    }

    /** A driver write; one narrower than its field (e.g. one 32-bit half of queue_desc) merges with the current value. */
    synchronized void write(int offset, int size, long value) {
        int[] f = CommonConfig.fieldAt(offset);
        if (f == null || offset + size > f[0] + f[1]) {
            return;
        }
        if (size == f[1]) {
            writeField(f[0], value);
            return;
        }
        int shift = 8 * (offset - f[0]);
        long mask = ((1L << (8 * size)) - 1) << shift;
        writeField(f[0], (readField(f[0]) & ~mask) | ((value << shift) & mask));
    }

    private long readField(int field) {
        QueueRegisters q = selectedQueue();
        return switch (field) {
            case CommonConfig.DEVICE_FEATURE_SELECT -> deviceFeatureSelect & 0xFFFF_FFFFL;
            case CommonConfig.DEVICE_FEATURE -> Integer.compareUnsigned(deviceFeatureSelect, 2) < 0
                    ? (device.offeredFeatures() >>> (32 * deviceFeatureSelect)) & 0xFFFF_FFFFL : 0;
            case CommonConfig.DRIVER_FEATURE_SELECT -> driverFeatureSelect & 0xFFFF_FFFFL;
            case CommonConfig.DRIVER_FEATURE -> Integer.compareUnsigned(driverFeatureSelect, 2) < 0
                    ? (driverFeatures >>> (32 * driverFeatureSelect)) & 0xFFFF_FFFFL : 0;
            case CommonConfig.CONFIG_MSIX_VECTOR -> configMsixVector;
            case CommonConfig.NUM_QUEUES -> queues.length();
            case CommonConfig.DEVICE_STATUS -> deviceStatus.get();
            case CommonConfig.CONFIG_GENERATION -> configGeneration.get() & 0xFF;
            case CommonConfig.QUEUE_SELECT -> queueSelect;
            // §4.1.4.3: a queue_select past num_queues reads size 0 (not available)
            case CommonConfig.QUEUE_SIZE -> q != null ? q.size() : 0;
            case CommonConfig.QUEUE_MSIX_VECTOR -> q != null ? q.msixVector() : MsixTable.NO_VECTOR;
            case CommonConfig.QUEUE_ENABLE -> q != null && q.enabled() ? 1 : 0;
            case CommonConfig.QUEUE_NOTIFY_OFF -> q != null ? q.notifyOffset() : 0;
            // §4.1.4.3: what the driver puts in a notification's virtqueue field under NOTIF_CONFIG_DATA
            case CommonConfig.QUEUE_NOTIFY_DATA -> q != null ? q.index() : 0;
            case CommonConfig.QUEUE_DESC -> q != null ? q.desc() : 0;
            case CommonConfig.QUEUE_DRIVER -> q != null ? q.driver() : 0;
            case CommonConfig.QUEUE_DEVICE -> q != null ? q.device() : 0;
            case CommonConfig.QUEUE_RESET -> 0; // RING_RESET is not offered: nothing is ever resetting
            default -> 0;
        };
    }

    private void writeField(int field, long value) {
        QueueRegisters q = selectedQueue();
        boolean featuresLocked = (deviceStatus.get() & DeviceStatus.FEATURES_OK) != 0;
        // the driver sets a queue's fields before it enables the queue (§4.1.4.3.2); from then on they stay until reset
        boolean queueLocked = q == null || q.enabled();
        switch (field) {
            case CommonConfig.DEVICE_FEATURE_SELECT -> deviceFeatureSelect = (int) value;
            case CommonConfig.DRIVER_FEATURE_SELECT -> driverFeatureSelect = (int) value;
            case CommonConfig.DRIVER_FEATURE -> {
                if (featuresLocked || Integer.compareUnsigned(driverFeatureSelect, 1) > 0) {
                    LOG.debug("{}: ignored driver_feature write (select {}, FEATURES_OK {})", device.name(), driverFeatureSelect, featuresLocked);
                    return;
                }
                int shift = 32 * driverFeatureSelect;
                driverFeatures = (driverFeatures & ~(0xFFFF_FFFFL << shift)) | ((value & 0xFFFF_FFFFL) << shift);
            }
            case CommonConfig.CONFIG_MSIX_VECTOR -> configMsixVector = acceptVector((int) value);
            case CommonConfig.DEVICE_STATUS -> statusWriter.writeDeviceStatus((int) value);
            case CommonConfig.QUEUE_SELECT -> queueSelect = (int) value & 0xFFFF;
            case CommonConfig.QUEUE_SIZE -> {
                if (!queueLocked) {
                    update(q.withSize((int) value & 0xFFFF));
                }
            }
            case CommonConfig.QUEUE_MSIX_VECTOR -> {
                if (q != null) {
                    update(q.withMsixVector(acceptVector((int) value)));
                    vectorListener.queueVectorChanged(q.index(), queueMsixVector(q.index()));
                }
            }
            case CommonConfig.QUEUE_ENABLE -> {
                // §4.1.4.3.2: the driver must not write 0; a queue is disabled only by reset
                if (q != null && value == 1 && (deviceStatus.get() & DeviceStatus.DRIVER_OK) == 0) {
                    update(q.enable());
                }
            }
            case CommonConfig.QUEUE_DESC -> {
                if (!queueLocked) {
                    update(q.withDesc(value));
                }
            }
            case CommonConfig.QUEUE_DRIVER -> {
                if (!queueLocked) {
                    update(q.withDriver(value));
                }
            }
            case CommonConfig.QUEUE_DEVICE -> {
                if (!queueLocked) {
                    update(q.withDevice(value));
                }
            }
            default -> LOG.debug("{}: ignored write to read-only common config field 0x{}", device.name(), Integer.toHexString(field));
        }
    }

    /** The queue queue_select names, or null for a select past num_queues. */
    private QueueRegisters selectedQueue() {
        return queueSelect < queues.length() ? queues.get(queueSelect) : null;
    }

    private void update(QueueRegisters q) {
        queues.set(q.index(), q);
    }

    /** §4.1.5.1.2: a vector the table does not have reads back as NO_VECTOR. */
    private int acceptVector(int vector) {
        vector &= 0xFFFF;
        return vector < msixVectors ? vector : MsixTable.NO_VECTOR;
    }

    // ---- for the transport ----

    /** §2.4: every register back to its reset value, device_status (0) last; tells the vector listener of each queue. */
    synchronized void reset() {
        for (int q = 0; q < queues.length(); q++) {
            queues.set(q, QueueRegisters.atReset(q, device.maxQueueSize(q)));
        }
        for (int q = 0; q < queues.length(); q++) {
            vectorListener.queueVectorChanged(q, queueMsixVector(q));
        }
        deviceFeatureSelect = 0;
        driverFeatureSelect = 0;
        driverFeatures = 0;
        queueSelect = 0;
        configMsixVector = MsixTable.NO_VECTOR;
        deviceStatus.set(0);
    }

    int deviceStatus() {
        return deviceStatus.get();
    }

    /** The status machine's verdict on a device_status write; called with this locked. */
    void setDeviceStatus(int status) {
        deviceStatus.set(status);
    }

    /** Sets {@code bits} in device_status from any thread (DEVICE_NEEDS_RESET); returns the status before. */
    int addDeviceStatus(int bits) {
        return deviceStatus.getAndUpdate(s -> s | bits);
    }

    /** The features the driver wrote (accepted once FEATURES_OK is set). */
    long driverFeatures() {
        return driverFeatures;
    }

    int configMsixVector() {
        return configMsixVector;
    }

    /** §4.1.4.3: the device changed its configuration, so a driver reading it twice sees config_generation move. */
    void configChanged() {
        configGeneration.incrementAndGet();
    }

    QueueRegisters queue(int q) {
        return queues.get(q);
    }

    int queueMsixVector(int q) {
        return queues.get(q).msixVector();
    }

    CommonConfigSnapshot snapshot() {
        List<QueueRegisters> all = new ArrayList<>(queues.length());
        for (int q = 0; q < queues.length(); q++) {
            all.add(queues.get(q));
        }
        return new CommonConfigSnapshot(deviceStatus.get(), device.offeredFeatures(), driverFeatures, configMsixVector,
                configGeneration.get() & 0xFF, all);
    }
}
