package io.vmm4j.core.kvm;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.event.EventFd;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.core.memory.MemoryRegion;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;

/**
 * One KVM virtual machine: its memory slots, the in-kernel interrupt controllers, the GSI routing
 * table for MSI routes, ioeventfds and irqfds (api.rst §4.35 KVM_SET_USER_MEMORY_REGION, §4.24
 * KVM_CREATE_IRQCHIP, §4.52 KVM_SET_GSI_ROUTING, §4.59 KVM_IOEVENTFD, §4.75 KVM_IRQFD, §4.71
 * KVM_SIGNAL_MSI). Thread-safe: routes and fds may change from any thread while vCPUs run.
 */
public final class KvmVm implements AutoCloseable {
    /**
     * Three pages Intel VMX needs for its real-mode TSS (KVM_SET_TSS_ADDR) and the identity-map
     * page before them (KVM_SET_IDENTITY_MAP_ADDR): just below the 4 GiB BIOS area, as QEMU and
     * Firecracker place them; guest RAM and device windows must stay clear of them.
     */
    public static final long TSS_ADDRESS = 0xFFFB_D000L;
    public static final long IDENTITY_MAP_ADDRESS = 0xFFFB_C000L;
    /** GSIs 0-23 are the IOAPIC pins (0-15 also the PICs); MSI routes are allocated above. */
    public static final int FIRST_MSI_GSI = 24;

    private static final ThreadLocal<MemorySegment> MSI_BUFFER =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(KvmLayouts.MSI));
    private static final ThreadLocal<MemorySegment> IRQ_LEVEL_BUFFER =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(KvmLayouts.IRQ_LEVEL));

    private static final VarHandle REGION_SLOT = KvmLayouts.handle(KvmLayouts.USERSPACE_MEMORY_REGION, "slot");
    private static final VarHandle REGION_FLAGS = KvmLayouts.handle(KvmLayouts.USERSPACE_MEMORY_REGION, "flags");
    private static final VarHandle REGION_GUEST_PHYS_ADDR = KvmLayouts.handle(KvmLayouts.USERSPACE_MEMORY_REGION, "guest_phys_addr");
    private static final VarHandle REGION_MEMORY_SIZE = KvmLayouts.handle(KvmLayouts.USERSPACE_MEMORY_REGION, "memory_size");
    private static final VarHandle REGION_USERSPACE_ADDR = KvmLayouts.handle(KvmLayouts.USERSPACE_MEMORY_REGION, "userspace_addr");
    private static final VarHandle PIT_FLAGS = KvmLayouts.handle(KvmLayouts.PIT_CONFIG, "flags");
    private static final VarHandle IRQ_LEVEL_IRQ = KvmLayouts.handle(KvmLayouts.IRQ_LEVEL, "irq");
    private static final VarHandle IRQ_LEVEL_LEVEL = KvmLayouts.handle(KvmLayouts.IRQ_LEVEL, "level");
    private static final VarHandle ROUTING_NR = KvmLayouts.handle(KvmLayouts.IRQ_ROUTING, "nr");
    private static final VarHandle ROUTE_GSI = KvmLayouts.handle(KvmLayouts.IRQ_ROUTING_ENTRY, "gsi");
    private static final VarHandle ROUTE_TYPE = KvmLayouts.handle(KvmLayouts.IRQ_ROUTING_ENTRY, "type");
    private static final VarHandle ROUTE_IRQCHIP = KvmLayouts.handle(KvmLayouts.IRQ_ROUTING_ENTRY, "u", "irqchip", "irqchip");
    private static final VarHandle ROUTE_IRQCHIP_PIN = KvmLayouts.handle(KvmLayouts.IRQ_ROUTING_ENTRY, "u", "irqchip", "pin");
    private static final VarHandle ROUTE_MSI_ADDRESS_LO = KvmLayouts.handle(KvmLayouts.IRQ_ROUTING_ENTRY, "u", "msi", "address_lo");
    private static final VarHandle ROUTE_MSI_ADDRESS_HI = KvmLayouts.handle(KvmLayouts.IRQ_ROUTING_ENTRY, "u", "msi", "address_hi");
    private static final VarHandle ROUTE_MSI_DATA = KvmLayouts.handle(KvmLayouts.IRQ_ROUTING_ENTRY, "u", "msi", "data");
    private static final VarHandle IRQFD_FD = KvmLayouts.handle(KvmLayouts.IRQFD, "fd");
    private static final VarHandle IRQFD_GSI = KvmLayouts.handle(KvmLayouts.IRQFD, "gsi");
    private static final VarHandle IRQFD_FLAGS = KvmLayouts.handle(KvmLayouts.IRQFD, "flags");
    private static final VarHandle IOEVENTFD_ADDR = KvmLayouts.handle(KvmLayouts.IOEVENTFD, "addr");
    private static final VarHandle IOEVENTFD_LEN = KvmLayouts.handle(KvmLayouts.IOEVENTFD, "len");
    private static final VarHandle IOEVENTFD_FD = KvmLayouts.handle(KvmLayouts.IOEVENTFD, "fd");
    private static final VarHandle IOEVENTFD_FLAGS = KvmLayouts.handle(KvmLayouts.IOEVENTFD, "flags");
    private static final VarHandle MSI_ADDRESS_LO = KvmLayouts.handle(KvmLayouts.MSI, "address_lo");
    private static final VarHandle MSI_ADDRESS_HI = KvmLayouts.handle(KvmLayouts.MSI, "address_hi");
    private static final VarHandle MSI_DATA = KvmLayouts.handle(KvmLayouts.MSI, "data");

    private record Route(int type, int a, int b, int c) {
        // IRQCHIP: a = irqchip, b = pin; MSI: a = address_lo, b = address_hi, c = data

        /** Fills the {@code kvm_irq_routing_entry} at offset {@code o} of {@code table} for {@code gsi}. */
        void write(MemorySegment table, long o, int gsi) {
            ROUTE_GSI.set(table, o, gsi);
            ROUTE_TYPE.set(table, o, type);
            if (type == KvmIoctls.IRQ_ROUTING_MSI) {
                ROUTE_MSI_ADDRESS_LO.set(table, o, a);
                ROUTE_MSI_ADDRESS_HI.set(table, o, b);
                ROUTE_MSI_DATA.set(table, o, c);
            } else {
                ROUTE_IRQCHIP.set(table, o, a);
                ROUTE_IRQCHIP_PIN.set(table, o, b);
            }
        }
    }

    private final int fd;
    private final int vcpuMmapSize;
    private final List<KvmVcpu> vcpus = new ArrayList<>();
    private final TreeMap<Integer, List<Route>> routes = new TreeMap<>();
    private final int maxGsi;
    private final boolean ioeventfdAnyLength;
    private volatile boolean irqchip;
    private int nextGsi = FIRST_MSI_GSI;
    private int slots;
    private volatile boolean closed;

    KvmVm(Kvm kvm, int fd) {
        this.fd = fd;
        this.vcpuMmapSize = kvm.vcpuMmapSize();
        try {
            // Harmless on AMD; on Intel without unrestricted guest, real mode needs them.
            LibC.ioctl(fd, KvmIoctls.SET_IDENTITY_MAP_ADDR, longArg(IDENTITY_MAP_ADDRESS), "KVM_SET_IDENTITY_MAP_ADDR");
            LibC.ioctl(fd, KvmIoctls.SET_TSS_ADDR, TSS_ADDRESS, "KVM_SET_TSS_ADDR");
        } catch (RuntimeException e) {
            LibC.closeQuietly(fd);
            throw e;
        }
        this.maxGsi = Math.max(vmExtension(KvmIoctls.CAP_IRQ_ROUTING), FIRST_MSI_GSI);
        this.ioeventfdAnyLength = vmExtension(KvmIoctls.CAP_IOEVENTFD_ANY_LENGTH) > 0;
    }

    private static MemorySegment longArg(long value) {
        MemorySegment s = Arena.ofAuto().allocate(ValueLayout.JAVA_LONG);
        s.set(ValueLayout.JAVA_LONG, 0, value);
        return s;
    }

    public int fd() {
        return fd;
    }

    /** KVM_CHECK_EXTENSION on the VM fd (some answers depend on the VM); 0 when absent. */
    public int vmExtension(int capability) {
        return Math.max(LibC.ioctlRaw(fd, KvmIoctls.CHECK_EXTENSION, capability), 0);
    }

    /** Whether an ioeventfd may match writes of any length (length 0); else it must name the guest's access size. */
    public boolean ioeventfdAnyLength() {
        return ioeventfdAnyLength;
    }

    /**
     * Gives the guest every region of {@code memory} as RAM, one memory slot each, backed by the
     * very host mapping the devices use (userspace_addr = the region's host address). The memory
     * must outlive this VM.
     */
    public synchronized void mapMemory(GuestMemory memory) {
        for (MemoryRegion r : memory.regions()) {
            if (r.guestAddress() < TSS_ADDRESS + 3 * GuestMemory.PAGE_SIZE && r.guestEnd() > IDENTITY_MAP_ADDRESS) {
                throw new KvmException(String.format("guest RAM %s overlaps KVM's TSS/identity-map pages at [0x%x, 0x%x): "
                        + "keep guest RAM below 0x%x or above 4 GiB", r, IDENTITY_MAP_ADDRESS, TSS_ADDRESS + 3 * GuestMemory.PAGE_SIZE,
                        IDENTITY_MAP_ADDRESS));
            }
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment m = arena.allocate(KvmLayouts.USERSPACE_MEMORY_REGION);
                REGION_SLOT.set(m, 0L, slots);
                REGION_FLAGS.set(m, 0L, 0);
                REGION_GUEST_PHYS_ADDR.set(m, 0L, r.guestAddress());
                REGION_MEMORY_SIZE.set(m, 0L, r.size());
                REGION_USERSPACE_ADDR.set(m, 0L, r.hostAddress());
                LibC.ioctl(fd, KvmIoctls.SET_USER_MEMORY_REGION, m, "KVM_SET_USER_MEMORY_REGION slot " + slots + " " + r);
            }
            slots++;
        }
    }

    /**
     * KVM_CREATE_IRQCHIP: an in-kernel PIC pair, IOAPIC and a local APIC per vCPU, so APIC
     * accesses, EOIs, timers and HLT are handled in the kernel. Call before creating vCPUs. The
     * routing table starts with KVM's default legacy routes (GSI 0-15 to PIC and IOAPIC, 16-23 to
     * the IOAPIC), which {@link #setMsiRoute} keeps.
     */
    public synchronized void createIrqchip() {
        if (!vcpus.isEmpty()) {
            throw new IllegalStateException("create the irqchip before the first vCPU (api.rst §4.24)");
        }
        if (vmExtension(KvmIoctls.CAP_IRQCHIP) <= 0) {
            throw new KvmException("this KVM lacks KVM_CAP_IRQCHIP, which an in-kernel local APIC for irqfd and MSI delivery needs");
        }
        LibC.ioctl(fd, KvmIoctls.CREATE_IRQCHIP, 0L, "KVM_CREATE_IRQCHIP");
        irqchip = true;
        // arch/x86/kvm/irq_comm.c default_routing[]
        for (int gsi = 0; gsi < 24; gsi++) {
            List<Route> r = new ArrayList<>();
            r.add(new Route(KvmIoctls.IRQ_ROUTING_IRQCHIP, KvmIoctls.IRQCHIP_IOAPIC, gsi, 0));
            if (gsi < 16) {
                r.add(new Route(KvmIoctls.IRQ_ROUTING_IRQCHIP, gsi < 8 ? KvmIoctls.IRQCHIP_PIC_MASTER : KvmIoctls.IRQCHIP_PIC_SLAVE,
                        gsi % 8, 0));
            }
            routes.put(gsi, r);
        }
    }

    /**
     * KVM_CREATE_PIT2: the in-kernel i8254 timer at ports 0x40-0x43, ticking on GSI 0, with a
     * dummy speaker port 0x61 (KVM_PIT_SPEAKER_DUMMY) so Linux's PIT calibration reads it without
     * an exit (api.rst §4.49). Needs the irqchip.
     */
    public synchronized void createPit2() {
        requireIrqchip("the in-kernel PIT");
        if (vmExtension(KvmIoctls.CAP_PIT2) <= 0) {
            throw new KvmException("this KVM lacks KVM_CAP_PIT2, the in-kernel timer a PC guest calibrates against");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment config = arena.allocate(KvmLayouts.PIT_CONFIG);
            PIT_FLAGS.set(config, 0L, KvmIoctls.PIT_SPEAKER_DUMMY);
            LibC.ioctl(fd, KvmIoctls.CREATE_PIT2, config, "KVM_CREATE_PIT2");
        }
    }

    /**
     * KVM_IRQ_LINE: drives GSI {@code irq} (an ISA IRQ 0-15 reaches both the PIC and the IOAPIC
     * pin of the same number) to {@code level}; an edge-triggered pin fires on a low-to-high
     * change (api.rst §4.25). Callable from any thread.
     */
    public void irqLine(int irq, boolean level) {
        requireIrqchip("KVM_IRQ_LINE");
        MemorySegment s = IRQ_LEVEL_BUFFER.get();
        IRQ_LEVEL_IRQ.set(s, 0L, irq);
        IRQ_LEVEL_LEVEL.set(s, 0L, level ? 1 : 0);
        int r = LibC.ioctlRaw(fd, KvmIoctls.IRQ_LINE, s);
        if (r < 0) {
            LibC.check(r, "ioctl", "fd=" + fd + ", KVM_IRQ_LINE irq " + irq + " level " + (level ? 1 : 0));
        }
    }

    public synchronized boolean hasIrqchip() {
        return irqchip;
    }

    /** A GSI for a new MSI route; throws when KVM's routing table (KVM_CAP_IRQ_ROUTING) is full. */
    public synchronized int allocateGsi() {
        if (nextGsi >= maxGsi) {
            throw new KvmException("all " + maxGsi + " GSIs of this VM are allocated; fewer MSI-X vectors would fit");
        }
        return nextGsi++;
    }

    /**
     * Routes {@code gsi} to the MSI message (address, data), replacing what it had, and installs
     * the table (KVM_SET_GSI_ROUTING replaces the whole table; irqfds on the GSI follow at once).
     */
    public synchronized void setMsiRoute(int gsi, long address, int data) {
        requireIrqchip("an MSI route");
        List<Route> next = List.of(new Route(KvmIoctls.IRQ_ROUTING_MSI, (int) address, (int) (address >>> 32), data));
        if (next.equals(routes.get(gsi))) {
            return;
        }
        routes.put(gsi, next);
        commitRoutes();
    }

    /** Removes the route of {@code gsi}; an irqfd on it then injects nothing. */
    public synchronized void removeRoute(int gsi) {
        if (routes.remove(gsi) != null) {
            commitRoutes();
        }
    }

    private void commitRoutes() {
        int n = routes.values().stream().mapToInt(List::size).sum();
        try (Arena arena = Arena.ofConfined()) {
            long entry = KvmLayouts.IRQ_ROUTING_ENTRY.byteSize();
            MemorySegment table = arena.allocate(KvmLayouts.IRQ_ROUTING.byteSize() + n * entry, KvmLayouts.IRQ_ROUTING_ENTRY.byteAlignment());
            ROUTING_NR.set(table, 0L, n);
            long o = KvmLayouts.IRQ_ROUTING.byteSize(); // the entries follow the header
            for (var e : routes.entrySet()) {
                for (Route r : e.getValue()) {
                    r.write(table, o, e.getKey());
                    o += entry;
                }
            }
            LibC.ioctl(fd, KvmIoctls.SET_GSI_ROUTING, table, "KVM_SET_GSI_ROUTING (" + n + " entries)");
        }
    }

    private void requireIrqchip(String what) {
        if (!irqchip) {
            throw new IllegalStateException(what + " needs the in-kernel irqchip: call createIrqchip() first");
        }
    }

    /** An attached irqfd; {@link #close()} detaches it (KVM_IRQFD_FLAG_DEASSIGN). */
    public final class IrqFd implements AutoCloseable {
        private final EventFd eventFd;
        private final int gsi;
        private boolean attached = true;

        private IrqFd(EventFd eventFd, int gsi) {
            this.eventFd = eventFd;
            this.gsi = gsi;
        }

        public int gsi() {
            return gsi;
        }

        public EventFd eventFd() {
            return eventFd;
        }

        @Override
        public void close() {
            synchronized (KvmVm.this) {
                if (attached && !closed) {
                    irqfdIoctl(eventFd, gsi, KvmIoctls.IRQFD_FLAG_DEASSIGN);
                }
                attached = false;
            }
        }

        @Override
        public String toString() {
            return "irqfd(" + eventFd + " -> gsi " + gsi + ")";
        }
    }

    /**
     * KVM_IRQFD: every signal of {@code eventFd} injects {@code gsi}'s route in the kernel, with no
     * VMM thread involved. KVM injects at once if the eventfd is already signalled.
     */
    public synchronized IrqFd irqfd(EventFd eventFd, int gsi) {
        requireIrqchip("an irqfd");
        irqfdIoctl(eventFd, gsi, 0);
        return new IrqFd(eventFd, gsi);
    }

    private void irqfdIoctl(EventFd eventFd, int gsi, int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(KvmLayouts.IRQFD);
            IRQFD_FD.set(s, 0L, eventFd.fd());
            IRQFD_GSI.set(s, 0L, gsi);
            IRQFD_FLAGS.set(s, 0L, flags);
            LibC.ioctl(fd, KvmIoctls.IRQFD, s, "KVM_IRQFD " + eventFd + " gsi " + gsi + (flags != 0 ? " DEASSIGN" : ""));
        }
    }

    /** A registered ioeventfd; {@link #close()} removes it (KVM_IOEVENTFD_FLAG_DEASSIGN). */
    public final class IoEventFd implements AutoCloseable {
        private final long address;
        private final int length;
        private final boolean pio;
        private final EventFd eventFd;
        private boolean assigned = true;

        private IoEventFd(long address, int length, boolean pio, EventFd eventFd) {
            this.address = address;
            this.length = length;
            this.pio = pio;
            this.eventFd = eventFd;
        }

        public long address() {
            return address;
        }

        @Override
        public void close() {
            synchronized (KvmVm.this) {
                if (assigned && !closed) {
                    ioeventfdIoctl(address, length, pio, eventFd, KvmIoctls.IOEVENTFD_FLAG_DEASSIGN);
                }
                assigned = false;
            }
        }

        @Override
        public String toString() {
            return String.format("ioeventfd(%s 0x%x/%d -> %s)", pio ? "pio" : "mmio", address, length, eventFd);
        }
    }

    /**
     * KVM_IOEVENTFD: a guest write of {@code length} bytes (0: any length, where the VM supports
     * it) to {@code address} signals {@code eventFd} inside the kernel instead of exiting to the
     * VMM. {@code pio} selects the I/O port space, else MMIO.
     */
    public synchronized IoEventFd addIoEventFd(long address, int length, boolean pio, EventFd eventFd) {
        if (length == 0 && !ioeventfdAnyLength) {
            throw new KvmException("this KVM lacks KVM_CAP_IOEVENTFD_ANY_LENGTH: register the ioeventfd with the guest's access size (1, 2, 4 or 8)");
        }
        if (length != 0 && length != 1 && length != 2 && length != 4 && length != 8) {
            throw new IllegalArgumentException("ioeventfd length must be 0 (any), 1, 2, 4 or 8, was " + length);
        }
        ioeventfdIoctl(address, length, pio, eventFd, 0);
        return new IoEventFd(address, length, pio, eventFd);
    }

    private void ioeventfdIoctl(long address, int length, boolean pio, EventFd eventFd, int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(KvmLayouts.IOEVENTFD); // zeroed: no datamatch
            IOEVENTFD_ADDR.set(s, 0L, address);
            IOEVENTFD_LEN.set(s, 0L, length);
            IOEVENTFD_FD.set(s, 0L, eventFd.fd());
            IOEVENTFD_FLAGS.set(s, 0L, flags | (pio ? KvmIoctls.IOEVENTFD_FLAG_PIO : 0));
            LibC.ioctl(fd, KvmIoctls.IOEVENTFD, s, String.format("KVM_IOEVENTFD %s 0x%x/%d %s%s", pio ? "pio" : "mmio", address,
                    length, eventFd, (flags & KvmIoctls.IOEVENTFD_FLAG_DEASSIGN) != 0 ? " DEASSIGN" : ""));
        }
    }

    /**
     * KVM_SIGNAL_MSI: injects one MSI (address, data) now, as a device's memory write would.
     * Returns false when the guest blocked it (e.g. its local APIC is still software-disabled).
     */
    public boolean signalMsi(long address, int data) {
        if (!irqchip) {
            throw new IllegalStateException("KVM_SIGNAL_MSI needs the in-kernel irqchip: call createIrqchip() first");
        }
        MemorySegment s = MSI_BUFFER.get(); // a buffer per thread, no allocation per interrupt
        MSI_ADDRESS_LO.set(s, 0L, (int) address);
        MSI_ADDRESS_HI.set(s, 0L, (int) (address >>> 32));
        MSI_DATA.set(s, 0L, data);
        int r = LibC.ioctlRaw(fd, KvmIoctls.SIGNAL_MSI, s);
        if (r < 0) {
            LibC.check(r, "ioctl", String.format("fd=%d, KVM_SIGNAL_MSI address=0x%x data=0x%x", fd, address, data));
        }
        return r > 0;
    }

    /**
     * A vCPU whose port I/O exits go to {@code pio} and MMIO exits to {@code mmio} (api.rst §4.7
     * KVM_CREATE_VCPU). Create the irqchip first if the guest needs one.
     */
    public synchronized KvmVcpu createVcpu(int id, Bus pio, Bus mmio) {
        int vcpuFd = LibC.ioctl(fd, KvmIoctls.CREATE_VCPU, id, "KVM_CREATE_VCPU");
        KvmVcpu v;
        try {
            v = new KvmVcpu(this, id, vcpuFd, vcpuMmapSize, pio, mmio);
        } catch (RuntimeException e) {
            LibC.closeQuietly(vcpuFd);
            throw e;
        }
        vcpus.add(v);
        return v;
    }

    /** Closes the vCPUs, then the VM (which drops its ioeventfds, irqfds and routes). */
    @Override
    public void close() {
        List<KvmVcpu> toClose;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            toClose = List.copyOf(vcpus);
        }
        for (KvmVcpu v : toClose) {
            v.close();
        }
        LibC.closeQuietly(fd);
    }
}
