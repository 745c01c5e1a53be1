package io.vmm4j.examples.linux;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.x86.LinuxVm;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.tap.PacketPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.emulated.EmulatedNetBackend;
import io.vmm4j.vhost.kernel.VhostNetBackend;
import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.driver.ConfigAccess;
import io.vmm4j.virtio.driver.PciFirmware;
import io.vmm4j.virtio.net.NetActivation;
import io.vmm4j.virtio.net.NetBackend;
import io.vmm4j.virtio.net.NetConfig;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.QueuePositions;
import io.vmm4j.virtio.net.VirtioNet;
import io.vmm4j.virtio.pci.MsixTable;
import io.vmm4j.virtio.pci.PciHost;
import io.vmm4j.virtio.pci.QueueRegisters;
import io.vmm4j.virtio.pci.VirtioPciTransport;
import io.vmm4j.virtio.pci.kvm.KvmDoorbells;

import java.io.IOException;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Our PCI host on the guest's CF8/CFC ports with one virtio-net device: the virtio-pci transport,
 * a data plane ({@link Plane}) over a port ({@link Port}), kicks as KVM ioeventfds and interrupts
 * as KVM irqfds on the MSI-X vectors (KvmDoorbells), or, with MSI-X off (Linux's pci=nomsi), INTA
 * on the IOAPIC pin the MP table gives the slot. Like firmware, it places the BARs in the PCI window and enables
 * decoding before the kernel starts, so Linux keeps them. What the guest's driver does is printed
 * as it happens ("vmm4j: virtio-net: ...").
 */
final class VirtioNetSlot implements AutoCloseable {
    /** ECAM (unused by a guest without ACPI MCFG, which uses CF8/CFC) and the BAR window, inside [3 GiB, 4 GiB). */
    static final long ECAM_BASE = 0xE000_0000L;
    static final long BAR_WINDOW = LinuxVm.LOW_RAM_LIMIT;
    static final long BAR_WINDOW_SIZE = 0x1000_0000L;
    static final int SLOT = 1;
    static final String MAC = "52:54:00:12:34:56";
    /** The host side of the guest's link on a tap, as the guest's /init expects it (vmm4j.host). */
    static final String DEFAULT_HOST_IP = "10.0.2.2/24";

    /** Where the device's frames go: an in-memory port with nothing on the other end, or a real tap. */
    enum Port { MEMORY, TAP }

    /** Who moves the frames: the VMM's own I/O thread, or the kernel's vhost worker (tap only). */
    enum Plane {
        EMULATED("emulated"), VHOST_NET("vhost-net");

        final String option;

        Plane(String option) {
            this.option = option;
        }

        static Plane parse(String value) {
            for (Plane p : values()) {
                if (p.option.equals(value)) {
                    return p;
                }
            }
            throw new IllegalArgumentException("--backend must be emulated or vhost-net, not '" + value + "'");
        }
    }

    /** What to build: {@code tapName} empty lets the kernel name the tap; {@code hostIp} goes on the tap. */
    record Setup(Port port, String tapName, String hostIp, Plane plane) {
        static final Setup IN_MEMORY = new Setup(Port.MEMORY, "", DEFAULT_HOST_IP, Plane.EMULATED);

        Setup {
            if (plane == Plane.VHOST_NET && port != Port.TAP) {
                throw new IllegalArgumentException("--backend vhost-net moves frames between the rings and a tap: add --port tap");
            }
        }
    }

    private final List<AutoCloseable> owned = new ArrayList<>();
    private final VirtioPciTransport transport;
    private final TapDevice tap;
    private final NetBackend backend;

    VirtioNetSlot(LinuxVm vm, PrintStream log) {
        this(vm, Setup.IN_MEMORY, log);
    }

    VirtioNetSlot(LinuxVm vm, Setup setup, PrintStream log) {
        try {
            PciHost host = new PciHost(vm.pio(), vm.mmio(), ECAM_BASE);
            EventLoop control = own(new EventLoop("vmm-control"));
            PacketPort port;
            if (setup.port() == Port.TAP) {
                tap = own(TapDevice.open(setup.tapName(), 1, TapDevice.VNET_HEADER_V1_SIZE));
                tap.addAddress(setup.hostIp());
                tap.setUp();
                port = tap;
                log.printf("vmm4j: tap %s created, host side %s%n", tap.name(), setup.hostIp());
            } else {
                MemoryPort[] ports = MemoryPort.pair(1, TapDevice.VNET_HEADER_V1_SIZE);
                own(ports[0]);
                own(ports[1]);
                tap = null;
                port = ports[0];
            }
            backend = setup.plane() == Plane.VHOST_NET ? own(new VhostNetBackend(tap)) : own(new EmulatedNetBackend(port));
            VirtioNet net = new VirtioNet(new NetConfig(NetConfig.parseMac(MAC), 1500, 1, 256), new Sampled(backend), control);
            transport = new VirtioPciTransport(net, vm.memory(), vm.mmio(), vm.kvmVm()::signalMsi, vm.pciIntx(SLOT), null,
                    VirtioPciTransport.NotifyMode.IOEVENTFD, 2 + 2);
            transport.addObserver(new Report(log));
            host.attach(SLOT, transport);
            own(new KvmDoorbells(vm.kvmVm(), transport, control));
            for (PciFirmware.Device d : PciFirmware.enumerateAndAssign(ConfigAccess.ports(vm.pio()), BAR_WINDOW, BAR_WINDOW_SIZE)) {
                if (d.slot() == SLOT) {
                    log.printf("vmm4j: PCI 00:%02x.0 %04x:%04x virtio-net %s, BAR0 0x%x (common/notify/isr/device cfg), BAR2 0x%x (MSI-X), "
                                    + "data plane %s over %s%n", d.slot(), d.vendorId(), d.deviceId(), MAC, d.barAddress()[0],
                            d.barAddress()[2], backend.name(), tap == null ? "an in-memory port" : "tap " + tap.name());
                }
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private <T extends AutoCloseable> T own(T resource) {
        owned.add(resource);
        return resource;
    }

    VirtioPciTransport transport() {
        return transport;
    }

    /** The tap, or null on the in-memory port. */
    TapDevice tap() {
        return tap;
    }

    NetBackend backend() {
        return backend;
    }

    private volatile String lastSample;
    private volatile boolean running;

    /**
     * Who moved the frames, and the CPU time it took: the VMM's own net-io thread (emulated), or
     * the kernel's vhost worker thread (vhost-net; Linux 6.1 names it vhost-TID after the owner thread).
     * The kernel thread ends with its vhost fd, at the device reset Linux does on its way down, so
     * the report is taken then: the last one taken, or a fresh one while the plane still runs.
     */
    String dataPlaneReport() {
        String last = lastSample;
        return running || last == null ? sample() : last + ", measured when the data plane stopped";
    }

    /** Samples the data plane's thread just before it stops (a device reset, or close). */
    private final class Sampled implements NetBackend {
        private final NetBackend plane;

        Sampled(NetBackend plane) {
            this.plane = plane;
        }

        @Override
        public String name() {
            return plane.name();
        }

        @Override
        public long supportedFeatures() {
            return plane.supportedFeatures();
        }

        @Override
        public int maxQueuePairs() {
            return plane.maxQueuePairs();
        }

        @Override
        public void start(NetActivation activation) {
            plane.start(activation);
            running = true;
        }

        @Override
        public QueuePositions stop() {
            if (running) {
                lastSample = sample();
                running = false;
            }
            return plane.stop();
        }

        @Override
        public void setActivePairs(int pairs) {
            plane.setActivePairs(pairs);
        }

        @Override
        public void setLinkUp(boolean up) {
            plane.setLinkUp(up);
        }

        @Override
        public void setGuestOffloads(long guestOffloads) {
            plane.setGuestOffloads(guestOffloads);
        }

        @Override
        public void close() {
            plane.close();
        }
    }

    private String sample() {
        if (backend instanceof EmulatedNetBackend emulated) {
            var threads = ManagementFactory.getThreadMXBean();
            StringBuilder b = new StringBuilder("the VMM's own thread");
            for (Thread t : emulated.threads()) {
                long ns = threads.getThreadCpuTime(t.threadId());
                b.append(String.format(" %s (cpu %.2f s)", t.getName(), ns / 1e9));
            }
            return b.toString();
        }
        // Linux 6.1 names the worker "vhost-" + the id of the thread that sent VHOST_SET_OWNER (current->pid
        // in drivers/vhost/vhost.c vhost_dev_set_owner), which is one of this process's threads
        Set<String> ours = new HashSet<>();
        try (var tasks = Files.newDirectoryStream(Path.of("/proc/self/task"))) {
            tasks.forEach(t -> ours.add("vhost-" + t.getFileName()));
        } catch (IOException e) {
            return "no vhost worker found (/proc/self/task: " + e.getMessage() + ")";
        }
        StringBuilder found = new StringBuilder();
        try (var procs = Files.newDirectoryStream(Path.of("/proc"), "[0-9]*")) {
            for (var dir : procs) {
                try {
                    String comm = Files.readString(dir.resolve("comm")).strip();
                    if (ours.contains(comm)) {
                        // /proc/PID/stat fields 14 and 15 (utime, stime) in clock ticks, after the ")" that ends comm (proc(5))
                        String stat = Files.readString(dir.resolve("stat"));
                        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                        long ticks = Long.parseLong(f[11]) + Long.parseLong(f[12]);
                        found.append(found.isEmpty() ? "the kernel thread " : ", ")
                                .append(String.format("%s, pid %s (cpu %.2f s)", comm, dir.getFileName(), ticks / 100.0));
                    }
                } catch (IOException | RuntimeException e) {
                    // the process went away while we looked
                }
            }
        } catch (IOException e) {
            return "no vhost worker found (/proc: " + e.getMessage() + ")";
        }
        return found.isEmpty() ? "no kernel thread vhost-TID found for any thread of this process" : found.toString();
    }

    /** Prints each step of the guest driver's bring-up: status, features, queues and their MSI-X vectors. */
    private static final class Report implements VirtioPciTransport.Observer {
        private final PrintStream log;

        Report(PrintStream log) {
            this.log = log;
        }

        @Override
        public void statusChanged(int oldStatus, int newStatus) {
            log.printf("vmm4j: virtio-net: status %s%n", DeviceStatus.describe(newStatus));
        }

        @Override
        public void featuresNegotiated(long offered, long acked, boolean accepted, String problem) {
            log.printf("vmm4j: virtio-net: features offered %s%n", NetFeatures.names(offered));
            log.printf("vmm4j: virtio-net: features acked by the driver 0x%x %s%s%n", acked, NetFeatures.names(acked),
                    accepted ? "" : " -- refused: " + problem);
        }

        @Override
        public void queueActivated(QueueRegisters q) {
            log.printf("vmm4j: virtio-net: queue %d size %d msix vector %s%n", q.index(), q.size(),
                    q.msixVector() == MsixTable.NO_VECTOR ? "none" : Integer.toString(q.msixVector()));
        }

        @Override
        public void deviceError(String reason) {
            log.printf("vmm4j: virtio-net: DEVICE_NEEDS_RESET: %s%n", reason);
        }
    }

    @Override
    public void close() {
        for (int i = owned.size() - 1; i >= 0; i--) {
            try {
                owned.get(i).close();
            } catch (Exception e) {
                // closing the rest matters more
            }
        }
    }
}
