package io.vmm4j.virtio.pci;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.bus.BusDevice;
import io.vmm4j.core.event.EventFd;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.irq.IntxLine;
import io.vmm4j.core.irq.MsiSink;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.log.LogThrottle;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.ActivationContext;
import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.QueueBinding;
import io.vmm4j.virtio.VirtioDevice;
import io.vmm4j.virtio.VirtioDeviceHost;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.queue.RingLayout;
import io.vmm4j.virtio.queue.VirtqueueException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The virtio 1.x modern PCI transport (virtio 1.2 §4.1): a PCI function whose BAR 0 holds the
 * common configuration, ISR, device configuration and notification structures and whose BAR 2
 * holds the MSI-X table and PBA, all announced by vendor capabilities.
 *
 * <p>This is the control plane. The common configuration is a {@link CommonConfigRegisters};
 * feature negotiation and the status machine behind its device_status run here, synchronously on
 * the accessing (vCPU) thread. Notify writes signal the queue's kick eventfd (ioeventfd semantics)
 * or, in {@link NotifyMode#SYNCHRONOUS}, run the device's queue handler on the spot. A queue's call eventfd (irqfd) is routed to its MSI-X vector, or to INTx with MSI-X off.
 */
public final class VirtioPciTransport implements PciFunction, VirtioDeviceHost {
    private static final Logger LOG = LoggerFactory.getLogger(VirtioPciTransport.class);
    /** Lines the guest's mistakes cause (NEEDS_RESET, refused features): at most 5 per 10 s, the rest counted. */
    private final LogThrottle guestErrorLog = new LogThrottle(10_000_000_000L, 5);

    /** How a notify write reaches the device. */
    public enum NotifyMode {
        /** Signal the queue's kick eventfd (ioeventfd); the device's loop picks it up. */
        IOEVENTFD,
        /** Run the device's queue handler on the notifying thread (QEMU's ioeventfd=off). */
        SYNCHRONOUS
    }

    /** Observes what the driver does, for boot logs and tests. */
    public interface Observer {
        default void statusChanged(int oldStatus, int newStatus) {
        }

        default void featuresNegotiated(long offered, long acked, boolean accepted, String problem) {
        }

        /** A queue that passed validation at DRIVER_OK, with the registers the driver set. */
        default void queueActivated(QueueRegisters queue) {
        }

        default void deviceError(String reason) {
        }
    }

    /**
     * Told after a queue's MSI-X vector assignment changed (the driver's queue_msix_vector write,
     * or a reset back to NO_VECTOR), so something that routes the queue's call eventfd outside this
     * transport (KVM irqfd) can follow. Called on the accessing thread with the common config locked.
     */
    public interface QueueVectorListener {
        void queueVectorChanged(int queue, int vector);
    }

    public static final int VENDOR_ID = 0x1AF4;
    /** Modern device IDs are 0x1040 + the virtio device type (§4.1.2). */
    public static final int DEVICE_ID_BASE = 0x1040;
    public static final int SUBSYSTEM_ID = 0x1100;

    public static final int VIRTIO_BAR = 0;
    public static final int MSIX_BAR = 2;
    public static final int COMMON_OFFSET = 0x0000;
    public static final int ISR_OFFSET = 0x1000;
    public static final int DEVICE_OFFSET = 0x2000;
    public static final int NOTIFY_OFFSET = 0x3000;
    public static final int REGION_SIZE = 0x1000;
    public static final int NOTIFY_MULTIPLIER = 4;
    public static final int VIRTIO_BAR_SIZE = 0x4000;
    public static final int MSIX_TABLE_OFFSET = 0x0;
    public static final int MSIX_PBA_OFFSET = 0x800;
    public static final int MSIX_BAR_SIZE = 0x1000;
    public static final int ISR_QUEUE = 0x1;
    public static final int ISR_CONFIG = 0x2;

    private final VirtioDevice device;
    private final GuestMemory memory;
    private final NotifyMode notifyMode;
    private final PciConfigSpace config;
    private final MsixTable msix;
    private final IntxLine intx;
    private final int queueCount;
    private final List<Observer> observers = new ArrayList<>();
    private final List<QueueVectorListener> vectorListeners = new CopyOnWriteArrayList<>();
    private final int pciCfgCapOffset;
    private final VirtioRegisters registers = new VirtioRegisters();
    private final CommonConfigRegisters commonConfig;

    // device state beyond the common configuration (guarded by commonConfig, except the atomics and volatiles)
    private final AtomicInteger isr = new AtomicInteger();
    private final EventFd[] kick;
    private final EventFd[] call;
    private final QueueBinding[] bindings;
    private volatile boolean active;
    private volatile String lastError;
    private volatile String featureRefusal;

    // counters
    private final AtomicLongArray notifies;
    private final AtomicLongArray queueInterrupts;
    private final AtomicLong configInterrupts = new AtomicLong();
    private final AtomicLong needsResets = new AtomicLong();

    /**
     * @param interruptLoop the loop that turns call-eventfd signals into interrupts (the in-process
     *                      irqfd); null when something else (KVM irqfd) consumes the call fds
     * @param msixVectors   MSI-X table size; one per queue plus one for config is typical
     */
    public VirtioPciTransport(VirtioDevice device, GuestMemory memory, Bus mmio, MsiSink msiSink, IntxLine intx,
                              EventLoop interruptLoop, NotifyMode notifyMode, int msixVectors) {
        this.device = device;
        this.memory = memory;
        this.notifyMode = notifyMode;
        this.intx = intx;
        this.queueCount = device.queueCount();
        if (queueCount < 1 || queueCount * NOTIFY_MULTIPLIER > REGION_SIZE) {
            throw new IllegalArgumentException(device.name() + " has " + queueCount + " queues; the transport supports 1.." + REGION_SIZE / NOTIFY_MULTIPLIER);
        }
        if (device.configSize() > REGION_SIZE) {
            throw new IllegalArgumentException(device.name() + " config space of " + device.configSize() + " bytes exceeds " + REGION_SIZE);
        }
        this.kick = new EventFd[queueCount];
        this.call = new EventFd[queueCount];
        this.bindings = new QueueBinding[queueCount];
        this.notifies = new AtomicLongArray(queueCount);
        this.queueInterrupts = new AtomicLongArray(queueCount);

        int type = device.deviceType();
        this.config = new PciConfigSpace(device.name(), mmio, VENDOR_ID, DEVICE_ID_BASE + type, 1,
                device.pciClassCode(), VENDOR_ID, SUBSYSTEM_ID, 1);
        this.msix = new MsixTable(msixVectors, MSIX_BAR, MSIX_TABLE_OFFSET, MSIX_PBA_OFFSET, msiSink);
        this.commonConfig = new CommonConfigRegisters(device, msix.vectors(), this::writeStatus, this::fireQueueVectorChanged);
        config.addMemoryBar64(VIRTIO_BAR, VIRTIO_BAR_SIZE, false, registers);
        config.addMemoryBar64(MSIX_BAR, MSIX_BAR_SIZE, false, msix);
        addVirtioCapability(VirtioPciCapability.COMMON_CFG, COMMON_OFFSET, CommonConfig.SIZE, null);
        addVirtioCapability(VirtioPciCapability.NOTIFY_CFG, NOTIFY_OFFSET, queueCount * NOTIFY_MULTIPLIER, NOTIFY_MULTIPLIER);
        addVirtioCapability(VirtioPciCapability.ISR_CFG, ISR_OFFSET, 1, null);
        if (device.configSize() > 0) {
            addVirtioCapability(VirtioPciCapability.DEVICE_CFG, DEVICE_OFFSET, device.configSize(), null);
        }
        this.pciCfgCapOffset = addPciCfgCapability();
        config.addCapability(MsixTable.CAPABILITY_ID, msix.capabilityBody(), msix.capabilityWritable(), msix);

        for (int q = 0; q < queueCount; q++) {
            kick[q] = EventFd.create();
            call[q] = EventFd.create();
            if (interruptLoop != null) {
                int queue = q;
                EventFd fd = call[q];
                interruptLoop.register(fd.fd(), LibC.EPOLLIN, ready -> {
                    fd.drain();
                    signalQueue(queue);
                });
            }
        }
        device.bind(this);
    }

    private void addVirtioCapability(int cfgType, int offset, int length, Integer notifyMultiplier) {
        byte[] body = new byte[notifyMultiplier == null ? 14 : 18];
        body[0] = (byte) (body.length + 2); // cap_len
        body[1] = (byte) cfgType;
        body[2] = (byte) VIRTIO_BAR;
        PciConfigSpace.putLe32(body, 6, offset);
        PciConfigSpace.putLe32(body, 10, length);
        if (notifyMultiplier != null) {
            PciConfigSpace.putLe32(body, 14, notifyMultiplier);
        }
        config.addCapability(VirtioPciCapability.VENDOR_SPECIFIC_ID, body, new byte[body.length], null);
    }

    /** §4.1.4.9: bar, offset and length select a window; pci_cfg_data accesses the BAR through it. */
    private int addPciCfgCapability() {
        byte[] body = new byte[18];
        body[0] = 20;
        body[1] = (byte) VirtioPciCapability.PCI_CFG;
        byte[] writable = new byte[18];
        writable[VirtioPciCapability.BAR - 2] = (byte) 0xFF;
        Arrays.fill(writable, VirtioPciCapability.OFFSET - 2, VirtioPciCapability.PCI_CFG_DATA + 2, (byte) 0xFF);
        return config.addCapability(VirtioPciCapability.VENDOR_SPECIFIC_ID, body, writable, new PciCfgWindow());
    }

    public void addObserver(Observer observer) {
        observers.add(observer);
    }

    public void addQueueVectorListener(QueueVectorListener listener) {
        vectorListeners.add(listener);
    }

    public VirtioDevice device() {
        return device;
    }

    public int queueCount() {
        return queueCount;
    }

    /** The MSI-X vector queue {@code queue} interrupts on, or {@link MsixTable#NO_VECTOR}. */
    public int queueVector(int queue) {
        return commonConfig.queueMsixVector(queue);
    }

    /** The common configuration's registers as they are now, read without waiting for the vCPU thread. */
    public CommonConfigSnapshot commonConfig() {
        return commonConfig.snapshot();
    }

    public PciConfigSpace configSpace() {
        return config;
    }

    public MsixTable msix() {
        return msix;
    }

    public NotifyMode notifyMode() {
        return notifyMode;
    }

    public int status() {
        return commonConfig.deviceStatus();
    }

    /** The last error that set DEVICE_NEEDS_RESET, or null. */
    public String lastError() {
        return lastError;
    }

    /** Why the status machine refused the last FEATURES_OK, or null (also after an accepted one, and after a reset). */
    public String featureRefusal() {
        return featureRefusal;
    }

    /** The acked feature set (meaningful once FEATURES_OK is set). */
    public long driverFeatures() {
        return commonConfig.driverFeatures();
    }

    public EventFd kickFd(int queue) {
        return kick[queue];
    }

    public EventFd callFd(int queue) {
        return call[queue];
    }

    public long notifyCount(int queue) {
        return notifies.get(queue);
    }

    public long queueInterruptCount(int queue) {
        return queueInterrupts.get(queue);
    }

    public long configInterruptCount() {
        return configInterrupts.get();
    }

    /** How many times the device entered DEVICE_NEEDS_RESET (a ring, queue or activation error). */
    public long needsResetCount() {
        return needsResets.get();
    }

    // ---- PciFunction ----

    @Override
    public int readConfig(int offset, int size) {
        return config.read(offset, size);
    }

    @Override
    public void writeConfig(int offset, int size, int value) {
        config.write(offset, size, value);
    }

    // ---- interrupts ----

    /** Interrupts the driver for queue {@code q}: ISR bit 0, then its MSI-X vector, or INTx with MSI-X off. */
    public void signalQueue(int q) {
        queueInterrupts.incrementAndGet(q);
        isr.getAndUpdate(v -> v | ISR_QUEUE);
        raise(commonConfig.queueMsixVector(q));
    }

    private void signalConfig() {
        configInterrupts.incrementAndGet();
        isr.getAndUpdate(v -> v | ISR_CONFIG);
        raise(commonConfig.configMsixVector());
    }

    private void raise(int vector) {
        if (msix.enabled()) {
            msix.signal(vector); // NO_VECTOR: no interrupt at all (§4.1.5.1.2)
        } else if ((config.command() & PciConfigSpace.COMMAND_INTX_DISABLE) == 0) {
            config.setInterruptStatus(true);
            intx.assertLine();
        }
    }

    // ---- VirtioDeviceHost ----

    @Override
    public void configChanged() {
        commonConfig.configChanged();
        signalConfig();
    }

    @Override
    public void deviceError(String reason) {
        lastError = reason;
        int old = commonConfig.addDeviceStatus(DeviceStatus.DEVICE_NEEDS_RESET);
        long held = guestErrorLog.admit(); // a guest can break and reset the device in a loop
        if (held >= 0) {
            LOG.warn("{}: device needs reset: {}{}", device.name(), reason, LogThrottle.heldBackNote(held));
        }
        for (Observer o : observers) {
            o.deviceError(reason);
        }
        if ((old & DeviceStatus.DEVICE_NEEDS_RESET) == 0) {
            needsResets.incrementAndGet();
            notifyStatus(old, old | DeviceStatus.DEVICE_NEEDS_RESET);
            signalConfig();
        }
    }

    private void notifyStatus(int old, int next) {
        if (old != next) {
            for (Observer o : observers) {
                o.statusChanged(old, next);
            }
        }
    }

    /**
     * Resets the device as a platform reset does (QMP system_reset): the same as the driver
     * writing 0 to device_status, done by the VMM. The driver finds the device reset and starts over.
     */
    public void resetDevice() {
        commonConfig.write(CommonConfig.DEVICE_STATUS, 1, 0);
    }

    // ---- status machine (§2.1, §3.1.1) ----

    /** A device_status write, from the driver or {@link #resetDevice()}; runs with the common config locked. */
    private void writeStatus(int value) {
        value &= 0xFF;
        int old = commonConfig.deviceStatus();
        if (value == 0) {
            reset();
            notifyStatus(old, 0);
            return;
        }
        // the driver never clears DEVICE_NEEDS_RESET except by reset
        int next = value | (old & DeviceStatus.DEVICE_NEEDS_RESET);
        int added = next & ~old;
        if ((added & DeviceStatus.FEATURES_OK) != 0) {
            long driverFeatures = commonConfig.driverFeatures();
            String problem = featureProblem(driverFeatures);
            featureRefusal = problem;
            for (Observer o : observers) {
                o.featuresNegotiated(device.offeredFeatures(), driverFeatures, problem == null, problem);
            }
            if (problem != null) {
                long held = guestErrorLog.admit();
                if (held >= 0) {
                    LOG.info("{}: FEATURES_OK refused: {}{}", device.name(), problem, LogThrottle.heldBackNote(held));
                }
                next &= ~DeviceStatus.FEATURES_OK; // the driver reads it back and sees the refusal (§3.1.1)
            }
        }
        if ((added & DeviceStatus.DRIVER_OK) != 0 && (next & DeviceStatus.FEATURES_OK) == 0) {
            commonConfig.setDeviceStatus(next & ~DeviceStatus.DRIVER_OK);
            notifyStatus(old, next & ~DeviceStatus.DRIVER_OK);
            deviceError("the driver set DRIVER_OK without FEATURES_OK");
            return;
        }
        commonConfig.setDeviceStatus(next);
        notifyStatus(old, next);
        if ((added & DeviceStatus.DRIVER_OK) != 0) {
            activate();
        }
        if ((added & DeviceStatus.FAILED) != 0 && active) {
            deactivate();
        }
    }

    private String featureProblem(long acked) {
        long offered = device.offeredFeatures();
        if ((acked & ~offered) != 0) {
            return String.format("the driver accepted features the device does not offer: %s",
                    VirtioFeatures.names(acked & ~offered, Map.of()));
        }
        if (!VirtioFeatures.has(acked, VirtioFeatures.VERSION_1)) {
            return "the driver did not accept VERSION_1; this modern-only device has no legacy interface";
        }
        return device.validateFeatures(acked);
    }

    private void activate() {
        long driverFeatures = commonConfig.driverFeatures();
        boolean eventIdx = VirtioFeatures.has(driverFeatures, VirtioFeatures.EVENT_IDX);
        boolean inOrder = VirtioFeatures.has(driverFeatures, VirtioFeatures.IN_ORDER);
        RingLayout layout = RingLayout.of(driverFeatures);
        List<QueueBinding> enabled = new ArrayList<>();
        for (int q = 0; q < queueCount; q++) {
            QueueRegisters r = commonConfig.queue(q);
            if (!r.enabled()) {
                enabled.add(null);
                continue;
            }
            try {
                if (r.size() > device.maxQueueSize(q)) {
                    throw new VirtqueueException("size " + r.size() + " exceeds the maximum " + device.maxQueueSize(q));
                }
                layout.validateLayout(memory, r.size(), r.desc(), r.driver(), r.device());
            } catch (VirtqueueException e) {
                deviceError("queue " + q + " cannot be used: " + e.getMessage());
                return;
            }
            int queue = q;
            QueueBinding b = new QueueBinding(q, r.size(), layout, inOrder, r.desc(), r.driver(), r.device(), eventIdx, memory,
                    kick[q], call[q], notifyMode == NotifyMode.SYNCHRONOUS, () -> signalQueue(queue));
            bindings[q] = b;
            enabled.add(b);
            for (Observer o : observers) {
                o.queueActivated(r);
            }
        }
        try {
            device.activate(new ActivationContext(memory, driverFeatures, Collections.unmodifiableList(enabled), this));
            active = true;
        } catch (RuntimeException e) {
            LOG.warn("{}: activation failed", device.name(), e);
            closeBindings();
            deviceError("activation failed: " + e);
        }
    }

    private void deactivate() {
        closeBindings(); // no new kicks reach the device; it waits out a handler already running
        device.reset();
        active = false;
    }

    private void closeBindings() {
        for (int q = 0; q < queueCount; q++) {
            if (bindings[q] != null) {
                bindings[q].close();
                bindings[q] = null;
            }
        }
    }

    /** §2.4: writing 0 to device_status resets the device and every queue. */
    private void reset() {
        if (active) {
            deactivate();
        } else {
            closeBindings();
            device.reset();
        }
        for (int q = 0; q < queueCount; q++) {
            kick[q].drain();
            call[q].drain();
        }
        isr.set(0);
        config.setInterruptStatus(false);
        intx.deassertLine();
        lastError = null;
        featureRefusal = null;
        commonConfig.reset(); // device_status reads 0 only once all of the above is done (§2.4)
    }

    private void fireQueueVectorChanged(int queue, int vector) {
        for (QueueVectorListener l : vectorListeners) {
            l.queueVectorChanged(queue, vector);
        }
    }

    private void notifyQueue(int q) {
        if (q < 0 || q >= queueCount) {
            return;
        }
        notifies.incrementAndGet(q);
        QueueBinding b = bindings[q];
        if (b == null) {
            return; // not live: a notify before DRIVER_OK or after reset is dropped
        }
        if (notifyMode == NotifyMode.IOEVENTFD) {
            kick[q].signal();
            return;
        }
        try {
            b.runSyncHandler();
        } catch (RuntimeException e) {
            deviceError("queue " + q + " handler failed: " + e.getMessage());
        }
    }

    /** BAR 0: the virtio structures. */
    private final class VirtioRegisters implements BusDevice {
        @Override
        public long read(long offset, int size) {
            int off = (int) offset;
            if (off < ISR_OFFSET) {
                return commonConfig.read(off - COMMON_OFFSET, size);
            }
            if (off < DEVICE_OFFSET) {
                if (off != ISR_OFFSET) {
                    return 0;
                }
                // §4.1.4.5: reading ISR clears it and de-asserts INTx
                int v = isr.getAndSet(0);
                config.setInterruptStatus(false);
                intx.deassertLine();
                return v;
            }
            if (off < NOTIFY_OFFSET) {
                int rel = off - DEVICE_OFFSET;
                return rel + size <= device.configSize() ? device.readConfig(rel, size) : 0;
            }
            return 0;
        }

        @Override
        public void write(long offset, int size, long value) {
            int off = (int) offset;
            if (off < ISR_OFFSET) {
                commonConfig.write(off - COMMON_OFFSET, size, value);
            } else if (off >= DEVICE_OFFSET && off < NOTIFY_OFFSET) {
                int rel = off - DEVICE_OFFSET;
                if (rel + size <= device.configSize()) {
                    device.writeConfig(rel, size, value);
                }
            } else if (off >= NOTIFY_OFFSET) {
                int rel = off - NOTIFY_OFFSET;
                if (rel % NOTIFY_MULTIPLIER == 0) {
                    notifyQueue(rel / NOTIFY_MULTIPLIER);
                }
            }
        }
    }

    /** The PCI_CFG capability's window onto the BARs, for drivers that cannot map them (§4.1.4.9). */
    private final class PciCfgWindow implements CapabilityBehaviour {
        private BusDevice target(int bar) {
            return bar == VIRTIO_BAR ? registers : bar == MSIX_BAR ? msix : null;
        }

        private int window(int field, int size) {
            return config.read(pciCfgCapOffset + field, size);
        }

        @Override
        public int read(int offset, int size, int stored) {
            if (offset != VirtioPciCapability.PCI_CFG_DATA) {
                return stored;
            }
            int bar = window(VirtioPciCapability.BAR, 1) & 0xFF;
            long off = window(VirtioPciCapability.OFFSET, 4) & 0xFFFF_FFFFL;
            int len = window(VirtioPciCapability.LENGTH, 4);
            BusDevice t = target(bar);
            if (t == null || !validWindow(bar, off, len)) {
                return 0;
            }
            return (int) t.read(off, len);
        }

        @Override
        public void write(int offset, int size, int value) {
            if (offset != VirtioPciCapability.PCI_CFG_DATA) {
                return;
            }
            int bar = window(VirtioPciCapability.BAR, 1) & 0xFF;
            long off = window(VirtioPciCapability.OFFSET, 4) & 0xFFFF_FFFFL;
            int len = window(VirtioPciCapability.LENGTH, 4);
            BusDevice t = target(bar);
            if (t != null && validWindow(bar, off, len)) {
                t.write(off, len, value & (len == 4 ? 0xFFFF_FFFFL : (1L << (8 * len)) - 1));
            }
        }

        private boolean validWindow(int bar, long off, int len) {
            long barSize = bar == VIRTIO_BAR ? VIRTIO_BAR_SIZE : MSIX_BAR_SIZE;
            return (len == 1 || len == 2 || len == 4) && off % len == 0 && off + len <= barSize;
        }
    }
}
