package io.vmm4j.virtio.driver;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.pci.CommonConfig;
import io.vmm4j.virtio.pci.MsixTable;
import io.vmm4j.virtio.pci.PciConfigSpace;
import io.vmm4j.virtio.pci.VirtioPciCapability;

/**
 * A guest-side virtio-pci modern driver for tests and the toy VMM's Java frontend. It touches the
 * device only through bus accesses (config space, BAR registers) and guest memory, in the order
 * Linux's virtio_pci_modern and virtio core use: find capabilities, reset, ACKNOWLEDGE, DRIVER,
 * negotiate features, FEATURES_OK (read back), MSI-X vectors, queues, DRIVER_OK.
 */
public final class VirtioPciDriver {
    /** Thrown when the device refuses something a driver asked for. */
    public static final class DriverException extends RuntimeException {
        public DriverException(String message) {
            super(message);
        }
    }

    private final ConfigAccess cfg;
    private final Bus mmio;
    private final GuestMemory memory;
    private final GuestAllocator allocator;
    private final PciFirmware.Device pci;
    private long common = -1;
    private long isr = -1;
    private long deviceCfg = -1;
    private long notifyBase = -1;
    private int notifyMultiplier;
    private int msixCapability = -1;
    private long msixTable = -1;
    private int msixVectors;
    private long acked;

    public VirtioPciDriver(ConfigAccess cfg, Bus mmio, GuestMemory memory, GuestAllocator allocator, PciFirmware.Device pci) {
        this.cfg = cfg;
        this.mmio = mmio;
        this.memory = memory;
        this.allocator = allocator;
        this.pci = pci;
        findCapabilities();
    }

    /** Walks the capability list and locates the virtio structures and MSI-X (§4.1.4). */
    private void findCapabilities() {
        int slot = pci.slot();
        if ((cfg.read(slot, PciConfigSpace.STATUS, 2) & PciConfigSpace.STATUS_CAPABILITIES) == 0) {
            throw new DriverException("slot " + slot + " has no capability list");
        }
        int pos = cfg.read(slot, PciConfigSpace.CAPABILITIES_POINTER, 1) & 0xFC;
        int guard = 0;
        while (pos != 0 && guard++ < 48) {
            int id = cfg.read(slot, pos, 1);
            if (id == VirtioPciCapability.VENDOR_SPECIFIC_ID) {
                int type = cfg.read(slot, pos + VirtioPciCapability.CFG_TYPE, 1);
                int bar = cfg.read(slot, pos + VirtioPciCapability.BAR, 1);
                long offset = cfg.read(slot, pos + VirtioPciCapability.OFFSET, 4) & 0xFFFF_FFFFL;
                long address = bar < 6 && pci.barAddress()[bar] != 0 ? pci.barAddress()[bar] + offset : -1;
                // the first capability of each type is the preferred one (§4.1.4.1)
                switch (type) {
                    case VirtioPciCapability.COMMON_CFG -> common = common < 0 ? address : common;
                    case VirtioPciCapability.ISR_CFG -> isr = isr < 0 ? address : isr;
                    case VirtioPciCapability.DEVICE_CFG -> deviceCfg = deviceCfg < 0 ? address : deviceCfg;
                    case VirtioPciCapability.NOTIFY_CFG -> {
                        if (notifyBase < 0) {
                            notifyBase = address;
                            notifyMultiplier = cfg.read(slot, pos + VirtioPciCapability.NOTIFY_OFF_MULTIPLIER, 4);
                        }
                    }
                    default -> {
                    }
                }
            } else if (id == MsixTable.CAPABILITY_ID) {
                msixCapability = pos;
                msixVectors = (cfg.read(slot, pos + 2, 2) & 0x7FF) + 1;
                int table = cfg.read(slot, pos + 4, 4);
                msixTable = pci.barAddress()[table & 7] + (table & ~7L & 0xFFFF_FFFFL);
            }
            pos = cfg.read(slot, pos + 1, 1) & 0xFC;
        }
        if (common < 0 || isr < 0 || notifyBase < 0) {
            throw new DriverException("slot " + slot + " lacks a virtio common/ISR/notify capability in an assigned BAR");
        }
    }

    public boolean hasMsix() {
        return msixCapability >= 0;
    }

    public int msixVectors() {
        return msixVectors;
    }

    public long deviceConfigAddress() {
        return deviceCfg;
    }

    public long acked() {
        return acked;
    }

    // ---- register access, all through the bus ----

    public long readCommon(int offset, int size) {
        return mmio.read(common + offset, size);
    }

    public void writeCommon(int offset, int size, long value) {
        mmio.write(common + offset, size, value);
    }

    public int status() {
        return (int) readCommon(CommonConfig.DEVICE_STATUS, 1);
    }

    private void addStatus(int bits) {
        writeCommon(CommonConfig.DEVICE_STATUS, 1, status() | bits);
    }

    /** Reads (and so clears) the ISR. */
    public int readIsr() {
        return (int) mmio.read(isr, 1);
    }

    public long readDeviceConfig(int offset, int size) {
        if (deviceCfg < 0) {
            throw new DriverException("the device has no device-specific configuration");
        }
        return mmio.read(deviceCfg + offset, size);
    }

    public void writeDeviceConfig(int offset, int size, long value) {
        mmio.write(deviceCfg + offset, size, value);
    }

    /** Writes 0 to device_status and waits for it to read back 0 (§4.1.4.3.2). */
    public void reset() {
        writeCommon(CommonConfig.DEVICE_STATUS, 1, 0);
        for (int i = 0; i < 1000 && status() != 0; i++) {
            Thread.onSpinWait();
        }
        if (status() != 0) {
            throw new DriverException("device status did not read back 0 after reset");
        }
    }

    /** The 64-bit device feature set, read as two 32-bit windows. */
    public long deviceFeatures() {
        writeCommon(CommonConfig.DEVICE_FEATURE_SELECT, 4, 0);
        long low = readCommon(CommonConfig.DEVICE_FEATURE, 4);
        writeCommon(CommonConfig.DEVICE_FEATURE_SELECT, 4, 1);
        long high = readCommon(CommonConfig.DEVICE_FEATURE, 4);
        return low | (high << 32);
    }

    /**
     * §3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, accept {@code wanted} & offered, FEATURES_OK,
     * and check it stuck. Returns the accepted features.
     */
    public long negotiate(long wanted) {
        reset();
        addStatus(DeviceStatus.ACKNOWLEDGE);
        addStatus(DeviceStatus.DRIVER);
        long accepted = deviceFeatures() & wanted;
        writeFeatures(accepted);
        addStatus(DeviceStatus.FEATURES_OK);
        if ((status() & DeviceStatus.FEATURES_OK) == 0) {
            addStatus(DeviceStatus.FAILED);
            throw new DriverException("device refused features " + VirtioFeatures.names(accepted, java.util.Map.of()));
        }
        acked = accepted;
        return accepted;
    }

    /** Writes the driver feature windows as is (tests use it to offer bad sets). */
    public void writeFeatures(long features) {
        writeCommon(CommonConfig.DRIVER_FEATURE_SELECT, 4, 0);
        writeCommon(CommonConfig.DRIVER_FEATURE, 4, features & 0xFFFF_FFFFL);
        writeCommon(CommonConfig.DRIVER_FEATURE_SELECT, 4, 1);
        writeCommon(CommonConfig.DRIVER_FEATURE, 4, features >>> 32);
    }

    /**
     * Enables MSI-X and points {@code count} vectors at the local APIC, vector number {@code
     * firstVector + i} (what the PCI core does when the driver allocates vectors).
     */
    public void enableMsix(int count, int firstVector) {
        if (!hasMsix() || count > msixVectors) {
            throw new DriverException("device has " + msixVectors + " MSI-X vectors, wanted " + count);
        }
        int slot = pci.slot();
        int control = cfg.read(slot, msixCapability + 2, 2);
        cfg.write(slot, msixCapability + 2, 2, control | (1 << 15) | (1 << 14)); // enable, function-masked
        for (int v = 0; v < count; v++) {
            programVector(v, GuestLocalApic.MSI_ADDRESS, firstVector + v);
            maskVector(v, false);
        }
        cfg.write(slot, msixCapability + 2, 2, (control | (1 << 15)) & ~(1 << 14));
    }

    public void programVector(int vector, long address, int data) {
        long entry = msixTable + (long) vector * MsixTable.ENTRY_SIZE;
        mmio.write(entry, 4, address & 0xFFFF_FFFFL);
        mmio.write(entry + 4, 4, address >>> 32);
        mmio.write(entry + 8, 4, data & 0xFFFF_FFFFL);
    }

    public void maskVector(int vector, boolean masked) {
        long control = msixTable + (long) vector * MsixTable.ENTRY_SIZE + 12;
        mmio.write(control, 4, masked ? 1 : 0);
    }

    /** Sets config_msix_vector and returns what the device read back (NO_VECTOR if refused). */
    public int setConfigVector(int vector) {
        writeCommon(CommonConfig.CONFIG_MSIX_VECTOR, 2, vector);
        return (int) readCommon(CommonConfig.CONFIG_MSIX_VECTOR, 2);
    }

    public int numQueues() {
        return (int) readCommon(CommonConfig.NUM_QUEUES, 2);
    }

    /**
     * Sets up queue {@code index} as a split ring with {@code size} entries (0: the device's maximum)
     * and MSI-X {@code vector} (NO_VECTOR for none), and enables it (§4.1.5.1.3). For a driver that
     * negotiated VIRTIO_F_RING_PACKED, {@link #setupVirtqueue} sets up the packed ring instead.
     *
     * @throws DriverException if RING_PACKED was acked: the device then reads the areas as a packed ring
     */
    public DriverQueue setupQueue(int index, int size, int vector) {
        if (VirtioFeatures.has(acked, VirtioFeatures.RING_PACKED)) {
            throw new DriverException("queue " + index + ": VIRTIO_F_RING_PACKED was negotiated, so the device expects a packed"
                    + " ring (virtio 1.2 §2.8); use setupVirtqueue");
        }
        int chosen = chooseSize(index, size);
        DriverQueue queue = new DriverQueue(memory, allocator, chosen, VirtioFeatures.has(acked, VirtioFeatures.EVENT_IDX));
        program(index, chosen, vector, queue);
        return queue;
    }

    /**
     * Sets up queue {@code index} in the layout the features negotiated: a packed ring with
     * VIRTIO_F_RING_PACKED (any size up to the device's maximum, §2.8.10.1), a split one otherwise.
     * {@code size} 0 is the device's maximum.
     */
    public DriverVirtqueue setupVirtqueue(int index, int size, int vector) {
        if (!VirtioFeatures.has(acked, VirtioFeatures.RING_PACKED)) {
            return setupQueue(index, size, vector);
        }
        int chosen = chooseSize(index, size);
        PackedDriverQueue queue = new PackedDriverQueue(memory, allocator, chosen, VirtioFeatures.has(acked, VirtioFeatures.EVENT_IDX));
        program(index, chosen, vector, queue);
        return queue;
    }

    private int chooseSize(int index, int size) {
        writeCommon(CommonConfig.QUEUE_SELECT, 2, index);
        int max = (int) readCommon(CommonConfig.QUEUE_SIZE, 2);
        if (max == 0) {
            throw new DriverException("queue " + index + " is not available");
        }
        int chosen = size == 0 ? max : size;
        if (chosen > max) {
            throw new DriverException("queue " + index + " allows at most " + max + " entries, wanted " + chosen);
        }
        return chosen;
    }

    /** Writes the queue's size, its three areas (queue_desc, queue_driver, queue_device), the vector, and enables it. */
    private void program(int index, int size, int vector, DriverVirtqueue queue) {
        writeCommon(CommonConfig.QUEUE_SELECT, 2, index);
        writeCommon(CommonConfig.QUEUE_SIZE, 2, size);
        writeCommon(CommonConfig.QUEUE_DESC, 8, queue.descriptorArea());
        writeCommon(CommonConfig.QUEUE_DRIVER, 8, queue.driverArea());
        writeCommon(CommonConfig.QUEUE_DEVICE, 8, queue.deviceArea());
        if (vector != MsixTable.NO_VECTOR) {
            writeCommon(CommonConfig.QUEUE_MSIX_VECTOR, 2, vector);
            if (readCommon(CommonConfig.QUEUE_MSIX_VECTOR, 2) != vector) {
                throw new DriverException("queue " + index + " refused MSI-X vector " + vector);
            }
        }
        writeCommon(CommonConfig.QUEUE_ENABLE, 2, 1);
    }

    /** The notify address of queue {@code index}: notify base + queue_notify_off * multiplier (§4.1.4.4). */
    public long notifyAddress(int index) {
        writeCommon(CommonConfig.QUEUE_SELECT, 2, index);
        long off = readCommon(CommonConfig.QUEUE_NOTIFY_OFF, 2);
        return notifyBase + off * notifyMultiplier;
    }

    /** Kicks queue {@code index}: a 16-bit write of the queue index to its notify address. */
    public void kick(long notifyAddress, int index) {
        mmio.write(notifyAddress, 2, index);
    }

    public void driverOk() {
        addStatus(DeviceStatus.DRIVER_OK);
    }
}
