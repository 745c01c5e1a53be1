package io.vmm4j.cli.vm;

import io.micrometer.core.instrument.MeterRegistry;
import io.vmm4j.cli.doctor.HostProbe;
import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.irq.IntxLine;
import io.vmm4j.core.irq.MsiSink;
import io.vmm4j.core.kvm.KvmException;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.guest.KvmGuestImage;
import io.vmm4j.examples.rng.VirtioRng;
import io.vmm4j.tap.LinuxBridge;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.tap.PacketPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.emulated.EmulatedNetBackend;
import io.vmm4j.vhost.kernel.VhostKernel;
import io.vmm4j.vhost.kernel.VhostNetBackend;
import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.driver.GuestInterruptController;
import io.vmm4j.virtio.net.NetBackend;
import io.vmm4j.virtio.net.NetConfig;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.NetQueueCounters;
import io.vmm4j.virtio.net.VirtioNet;
import io.vmm4j.virtio.pci.PciHost;
import io.vmm4j.virtio.pci.VirtioPciTransport;
import io.vmm4j.virtio.pci.kvm.KvmDoorbells;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;

/**
 * The toy VMM: guest memory, a PCI host, a virtio-net device on a chosen data plane, a
 * virtio-rng device (the transport reused), and a guest on a vCPU thread: the Java frontend, or
 * with {@code --vcpu kvm} the C guest on a KVM vCPU, whose kicks are KVM ioeventfds and whose
 * interrupts are KVM irqfds on the same eventfds the data planes use.
 */
public final class ToyVm implements AutoCloseable {
    /** A VM that cannot be built as asked; the message says why and what to do. */
    public static final class VmException extends RuntimeException {
        public VmException(String message) {
            super(message);
        }
    }

    static final long ECAM_BASE = 0xB000_0000L;
    private static final int CAP_NET_ADMIN = 12;

    private final VmOptions options;
    private final PrintStream log;
    private final List<AutoCloseable> resources = new ArrayList<>();
    private final GuestMemory memory;
    private final Bus pio = new Bus("pio");
    private final Bus mmio = new Bus("mmio");
    private final GuestInterruptController apic = new GuestInterruptController();
    private final PacketPort port;
    private final String portKind;
    private final NetBackend backend;
    private final VirtioNet net;
    private final VirtioPciTransport netTransport;
    private final KvmMachine kvm;
    private InVmmHost inVmmHost;
    private JavaGuest guest;
    private KvmGuest kvmGuest;
    private GuestRunner runner;

    public ToyVm(VmOptions options, PrintStream log, MeterRegistry registry) {
        this.options = options;
        this.log = log;
        if (options.backend().equals("vhost-net") && !VhostKernel.available()) {
            // say it before anything is created
            throw new VmException("--backend vhost-net needs /dev/vhost-net, which this host does not have: modprobe vhost_net, "
                    + "or, where the kernel lacks CONFIG_VHOST_NET, run it in the lab VM (./vmm lab; ./vmm doctor says more)");
        }
        if (options.kvm()) {
            checkKvmOptions(options);
        }
        try {
            memory = GuestMemory.builder().region(0, (long) options.memoryMiB() << 20).build();
            resources.add(memory);
            kvm = options.kvm() ? own(createKvm()) : null;
            EventLoop irqfd = kvm == null ? own(new EventLoop("irqfd")) : null; // under KVM the irqfds are in the kernel
            MsiSink msiSink = kvm == null ? apic : kvm.msiSink();
            EventLoop control = own(new EventLoop("vmm-control"));
            EventLoop rngLoop = own(new EventLoop("rng-io"));
            PciHost host = new PciHost(pio, mmio, ECAM_BASE);

            PortChoice choice = openPort();
            port = choice.port();
            portKind = choice.kind();
            VirtioPciTransport.NotifyMode mode = options.backend().equals("emulated-sync")
                    ? VirtioPciTransport.NotifyMode.SYNCHRONOUS : VirtioPciTransport.NotifyMode.IOEVENTFD;
            backend = createBackend();
            NetConfig config = new NetConfig(NetConfig.parseMac(options.mac()), options.mtu(), options.pairs(), 256);
            net = new VirtioNet(config, backend, control, registry);
            netTransport = new VirtioPciTransport(net, memory, mmio, msiSink, IntxLine.NONE, irqfd, mode, 2 + 2 * options.pairs());
            netTransport.addObserver(new BootLog("virtio-net", log, NetFeatures::names));
            host.attach(1, netTransport);

            VirtioRng rng = new VirtioRng(rngLoop, new SecureRandom());
            VirtioPciTransport rngTransport = new VirtioPciTransport(rng, memory, mmio, msiSink, IntxLine.NONE, irqfd, mode, 2);
            host.attach(2, rngTransport);
            if (kvm != null) {
                own(new KvmDoorbells(kvm.vm(), netTransport, control));
                own(new KvmDoorbells(kvm.vm(), rngTransport, control));
            }
            log.printf("vmm4j: %d MiB guest RAM, PCI host (CF8/CFC, ECAM at 0x%x), virtio-net on %s %s, data plane %s%s%s%n",
                    options.memoryMiB(), ECAM_BASE, portKind, port.name(), backend.name(),
                    mode == VirtioPciTransport.NotifyMode.SYNCHRONOUS ? " (notify handled on the vCPU thread)" : " (ioeventfd + I/O thread)",
                    kvm == null ? "" : mode == VirtioPciTransport.NotifyMode.SYNCHRONOUS
                            ? ", KVM vCPU (every kick exits; interrupts by KVM irqfd)"
                            : ", KVM vCPU (kicks by KVM ioeventfd, interrupts by KVM irqfd)");
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** What the C guest cannot do, said before anything is created. */
    private static void checkKvmOptions(VmOptions options) {
        if (((long) options.memoryMiB() << 20) > ECAM_BASE) {
            throw new VmException(String.format("--vcpu kvm needs --memory of at most %d MiB: guest RAM above 0x%x would cover the PCI "
                    + "windows, and device accesses there would no longer exit to the VMM", ECAM_BASE >> 20, ECAM_BASE));
        }
        if (options.pairs() != 1 || options.udpPort() > 0) {
            throw new VmException("the KVM guest drives one queue pair and pings only: drop --queues and --udp-port with --vcpu kvm");
        }
        if (options.wantedFeatures() != GuestDefaults.features()) {
            throw new VmException("--guest-features configures the Java guest; the KVM guest negotiates VERSION_1, MAC, STATUS and EVENT_IDX");
        }
        if (!KvmGuestImage.built()) {
            throw new VmException("--vcpu kvm: the KVM guest image was not built (this build had no gcc): apt-get install gcc, then ./vmm build");
        }
    }

    private KvmMachine createKvm() {
        try {
            return KvmMachine.create(memory, pio, mmio);
        } catch (KvmException e) {
            throw new VmException("--vcpu kvm: " + e.getMessage());
        }
    }

    private <T extends AutoCloseable> T own(T resource) {
        resources.add(resource);
        return resource;
    }

    private record PortChoice(PacketPort port, String kind) {
    }

    private PortChoice openPort() {
        String want = options.port();
        boolean netAdmin = hasNetAdmin();
        if (want.equals("auto")) {
            want = netAdmin ? "tap" : "memory";
            if (!netAdmin) {
                log.println("vmm4j: no CAP_NET_ADMIN, so no tap: using the in-memory port, with the host as a stack inside the VMM at "
                        + options.hostAddress() + " (run as root for a real tap)");
            }
        }
        if (want.equals("memory")) {
            MemoryPort[] pair = MemoryPort.pair(options.pairs(), TapDevice.VNET_HEADER_V1_SIZE);
            own(pair[0]);
            own(pair[1]);
            inVmmHost = own(new InVmmHost(pair[1], options, log));
            return new PortChoice(pair[0], "in-memory port");
        }
        if (!want.equals("tap")) {
            throw new VmException("--port must be auto, tap or memory, not '" + want + "'");
        }
        String name = options.tap() == null ? "" : options.tap();
        boolean existed = !name.isEmpty() && Files.exists(Path.of("/sys/class/net", name));
        TapDevice tap = own(TapDevice.open(name, options.pairs(), TapDevice.VNET_HEADER_V1_SIZE));
        if (options.bridge() != null) {
            LinuxBridge.attach(options.bridge(), tap.name());
            log.printf("vmm4j: tap %s joined bridge %s%n", tap.name(), options.bridge());
        } else if (!existed) {
            tap.addAddress(options.hostIp());
            log.printf("vmm4j: tap %s created, host side %s%n", tap.name(), options.hostIp());
        }
        if (options.mtu() != 1500) {
            tap.setMtu(options.mtu());
        }
        tap.setUp();
        return new PortChoice(tap, "tap");
    }

    private static boolean hasNetAdmin() {
        return HostProbe.hasEffectiveCapability(CAP_NET_ADMIN);
    }

    private NetBackend createBackend() {
        return switch (options.backend()) {
            case "emulated", "emulated-sync" -> own(new EmulatedNetBackend(port));
            case "vhost-net" -> {
                if (!(port instanceof TapDevice tap)) {
                    throw new VmException("--backend vhost-net moves frames between the rings and a tap: use --port tap (needs CAP_NET_ADMIN)");
                }
                yield own(new VhostNetBackend(tap));
            }
            case "vhost-user" -> throw new VmException("--backend vhost-user is not built yet in this version; use --backend emulated");
            default -> throw new VmException("--backend must be emulated, emulated-sync, vhost-net or vhost-user, not '"
                    + options.backend() + "'");
        };
    }

    public VirtioNet net() {
        return net;
    }

    public VirtioPciTransport netTransport() {
        return netTransport;
    }

    public PacketPort port() {
        return port;
    }

    public NetBackend backend() {
        return backend;
    }

    /** The Java guest (null under KVM), for tests that drive it further after {@link #run()} (single-threaded: one caller at a time). */
    JavaGuest guest() {
        return guest;
    }

    /** Boots the guest on a vCPU thread and waits for it to finish its pings and serving. */
    public RunSummary run() throws InterruptedException {
        if (kvm != null) {
            kvmGuest = new KvmGuest(options, kvm, memory, pio, log, this::packetsMoved, this::kicksServed);
            runner = kvmGuest;
        } else {
            guest = new JavaGuest(options, pio, mmio, memory, apic, log);
            runner = guest;
        }
        GuestRunner started = runner;
        Thread vcpu = Thread.ofPlatform().name("vcpu0").start(started::run);
        Thread hook = Thread.ofPlatform().unstarted(() -> {
            started.requestStop();
            try {
                vcpu.join(2_000);
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
        });
        Runtime.getRuntime().addShutdownHook(hook);
        vcpu.join();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // the JVM is already exiting (Ctrl-C); the hook stops the guest
        }
        return summary();
    }

    private long packetsMoved() {
        long n = 0;
        for (NetQueueCounters c : net.counters()) {
            n += c.packets;
        }
        return n;
    }

    private long kicksServed() {
        long n = 0;
        for (NetQueueCounters c : net.counters()) {
            n += c.kicks;
        }
        return n;
    }

    RunSummary summary() {
        List<RunSummary.Queue> queues = new ArrayList<>();
        for (NetQueueCounters c : net.counters()) {
            queues.add(new RunSummary.Queue(c.pair(), c.direction, c.packets, c.bytes, c.kicks, c.interrupts,
                    c.interruptsSuppressed, c.dropsNoBuffer, c.portErrors));
        }
        GuestReport g = runner.report();
        RunSummary.Ping ping = new RunSummary.Ping(options.target(), g.pingsSent(), g.rttMs().size(), g.rttMs());
        RunSummary.Udp udp = options.udpPort() > 0 ? new RunSummary.Udp(options.udpPort(), g.udpSent(), g.udpReceived()) : null;
        String error = g.error() != null ? g.error() : netTransport.lastError();
        RunSummary.Kvm kvmReport = kvmGuest == null ? null : kvmReport();
        return new RunSummary(backend.name() + (options.backend().equals("emulated-sync") ? "-sync" : ""), portKind, port.name(),
                options.guestIp(), options.hostIp(), NetFeatures.names(g.acked()), g.pairs(), ping, udp, g.maxRxBuffers(),
                g.echoRequestsAnswered(), queues, g.rng(),
                DeviceStatus.describe(netTransport.status()), error, options.kvm() ? VmOptions.VCPU_KVM : VmOptions.VCPU_JAVA,
                kvmGuest == null ? null : kvmGuest.exits().asMap(), kvmReport);
    }

    private RunSummary.Kvm kvmReport() {
        KvmGuest.QuietPhase quiet = kvmGuest.quietPhase();
        io.vmm4j.guest.GuestAbi.Results r = kvmGuest.results();
        RunSummary.QuietPhase q = new RunSummary.QuietPhase(quiet.packets(), quiet.kicks(), quiet.exits().total(), quiet.exits().asMap(),
                quiet.exitsPerPacket(), quiet.seconds());
        RunSummary.GuestCounters counters = r == null ? null : new RunSummary.GuestCounters(r.kicks(), r.rxInterrupts(), r.txInterrupts(),
                r.configInterrupts(), r.timerInterrupts());
        return new RunSummary.Kvm(kvmGuest.exits().total(), q, counters, kvmGuest.tscKhz());
    }

    @Override
    public void close() {
        if (net != null && net.backend() != backend) {
            net.backend().close(); // a data plane switched in later is not in the resource list
        }
        for (int i = resources.size() - 1; i >= 0; i--) {
            try {
                resources.get(i).close();
            } catch (Exception e) {
                log.println("vmm4j: closing " + resources.get(i) + " failed: " + e.getMessage());
            }
        }
        resources.clear();
    }
}
