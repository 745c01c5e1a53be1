package io.vmm4j.cli.vm;

import io.vmm4j.cli.doctor.HostProbe;
import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.irq.IntxLine;
import io.vmm4j.core.irq.MsiSink;
import io.vmm4j.core.kvm.KvmException;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.examples.rng.VirtioRng;
import io.vmm4j.guest.KvmGuestImage;
import io.vmm4j.tap.LinuxBridge;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.tap.PacketPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.BackendConnectionListener;
import io.vmm4j.vhost.emulated.EmulatedNetBackend;
import io.vmm4j.vhost.kernel.VhostKernel;
import io.vmm4j.vhost.kernel.VhostNetBackend;
import io.vmm4j.vhost.user.VhostUserException;
import io.vmm4j.vhost.user.VhostUserNetBackend;
import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.driver.GuestLocalApic;
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
import java.util.concurrent.CompletableFuture;

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
    static final int NET_SLOT = 1;
    static final int RNG_SLOT = 2;
    private static final int CAP_NET_ADMIN = 12;

    private final VmOptions options;
    private final PrintStream log;
    private final List<AutoCloseable> resources = new ArrayList<>();
    private final GuestMemory memory;
    private final Bus pio = new Bus("pio");
    private final Bus mmio = new Bus("mmio");
    private final GuestLocalApic apic = new GuestLocalApic();
    private final PacketPort port;
    private final String portKind;
    private final NetBackend backend;
    private final VirtioNet net;
    private final VirtioPciTransport netTransport;
    private final VirtioPciTransport rngTransport;
    private final KvmMachine kvm;
    private InVmmHost inVmmHost;
    private volatile JavaGuest guest;
    private KvmGuest kvmGuest;
    private volatile GuestRunner runner;
    private volatile String backendGone;
    private volatile BackendConnectionListener backendListener = BackendConnectionListener.NONE;
    private volatile String runState = "prelaunch";
    private volatile boolean stopRequested;

    public ToyVm(VmOptions options, PrintStream log) {
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
            MsiSink msiSink = kvm == null ? apic::receive : kvm.msiSink();
            EventLoop control = own(new EventLoop("vmm-control"));
            EventLoop rngLoop = own(new EventLoop("rng-io"));
            PciHost host = new PciHost(pio, mmio, ECAM_BASE);

            boolean vhostUser = options.backend().equals("vhost-user");
            PortChoice choice = vhostUser ? new PortChoice(null, "vhost-user back-end") : openPort();
            port = choice.port();
            portKind = choice.kind();
            VirtioPciTransport.NotifyMode mode = options.backend().equals("emulated-sync")
                    ? VirtioPciTransport.NotifyMode.SYNCHRONOUS : VirtioPciTransport.NotifyMode.IOEVENTFD;
            backend = vhostUser ? connectVhostUser(control) : createBackend();
            NetConfig config = new NetConfig(NetConfig.parseMac(options.mac()), options.mtu(), options.pairs(), options.queueSize());
            net = new VirtioNet(config, backend, control);
            netTransport = new VirtioPciTransport(net, memory, mmio, msiSink, IntxLine.NONE, irqfd, mode, 2 + 2 * options.pairs());
            netTransport.addObserver(new BootLog("virtio-net", log, NetFeatures::names));
            host.attach(NET_SLOT, netTransport);

            VirtioRng rng = new VirtioRng(rngLoop, new SecureRandom());
            rngTransport = new VirtioPciTransport(rng, memory, mmio, msiSink, IntxLine.NONE, irqfd, mode, 2);
            host.attach(RNG_SLOT, rngTransport);
            if (kvm != null) {
                own(new KvmDoorbells(kvm.vm(), netTransport, control));
                own(new KvmDoorbells(kvm.vm(), rngTransport, control));
            }
            log.printf("vmm4j: %d MiB guest RAM, PCI host (CF8/CFC, ECAM at 0x%x), virtio-net on %s %s, data plane %s%s%s%n",
                    options.memoryMiB(), ECAM_BASE, portKind, portName(), backend.name(),
                    mode == VirtioPciTransport.NotifyMode.SYNCHRONOUS ? " (notify handled on the vCPU thread)"
                            : vhostUser ? " (ioeventfd + irqfd, rings served by the back-end process)" : " (ioeventfd + I/O thread)",
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
            inVmmHost = own(new InVmmHost(pair[1], options.hostAddress()));
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
            default -> throw new VmException("--backend must be emulated, emulated-sync, vhost-net or vhost-user, not '"
                    + options.backend() + "'");
        };
    }

    /**
     * Connects to the back-end daemon now: its features decide what the device offers. A back-end
     * that goes away later sets the link down; the VMM runs on.
     */
    private NetBackend connectVhostUser(EventLoop control) {
        String hint = "start the back-end first: ./vmm vhost-user-backend --socket " + (options.socket() == null ? "PATH" : options.socket())
                + " --tap NAME (or --port memory)";
        if (options.socket() == null) {
            throw new VmException("--backend vhost-user needs --socket PATH, the back-end daemon's socket; " + hint);
        }
        if (!options.port().equals("auto") || options.tap() != null || options.bridge() != null) {
            throw new VmException("with --backend vhost-user the back-end daemon owns the port: give --tap or --port memory to "
                    + "./vmm vhost-user-backend, not to ./vmm run");
        }
        VhostUserNetBackend vu;
        try {
            vu = own(new VhostUserNetBackend(Path.of(options.socket()), control));
        } catch (VhostUserException e) {
            throw new VmException(e.getMessage() + "; " + hint);
        }
        vu.onHangup(reason -> {
            backendGone = reason;
            log.println("vmm4j: " + reason + "; virtio-net link down, the VMM keeps running "
                    + "(restart the back-end and the VM to get the data plane back)");
            net.setLinkUp(false);
            backendListener.disconnected("net0", reason);
        });
        return vu;
    }

    private String portName() {
        return port != null ? port.name() : options.socket();
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

    /** What kind of port the NIC has: "tap" or "in-memory port". */
    public String portKind() {
        return portKind;
    }

    public NetBackend backend() {
        return backend;
    }

    /**
     * Who hears about a data plane outside the VMM (vhost-user) connecting or going away; told at
     * once when one is connected now.
     */
    public void setBackendConnectionListener(BackendConnectionListener listener) {
        backendListener = listener;
        if (options.backend().equals("vhost-user") && backendGone == null) {
            listener.connected("net0", options.socket());
        }
    }

    /** Brings the guest up on its own vcpu0 thread and hands it over for measurements (instead of {@link #run()}). */
    public Workload workload() {
        guest = new JavaGuest(options, pio, mmio, memory, apic, log);
        return new Workload(guest);
    }

    /**
     * A PCI slot as management sees it: the device's name (QMP's qdev_id), and for a virtio
     * device its transport (null for the host bridge).
     */
    public record PciSlot(int slot, String id, VirtioPciTransport transport) {
    }

    /** Every occupied slot on bus 0: the host bridge, virtio-net (net0), virtio-rng (rng0). */
    public List<PciSlot> pciSlots() {
        return List.of(new PciSlot(0, "", null), new PciSlot(NET_SLOT, "net0", netTransport),
                new PciSlot(RNG_SLOT, "rng0", rngTransport));
    }

    /** Reads a slot's configuration space through the ECAM window, as the guest would (reads have no side effects). */
    public int readPciConfig(int slot, int offset, int size) {
        return (int) mmio.read(ECAM_BASE + ((long) slot << 15) + offset, size);
    }

    /** QMP's run state: prelaunch (before {@link #run()}), running (the guest's vCPU runs), shutdown (it stopped). */
    public String runState() {
        return runState;
    }

    /** Asks the guest to stop (QMP quit); {@link #run()} then returns. */
    public void requestStop() {
        stopRequested = true;
        GuestRunner r = runner;
        if (r != null) {
            r.requestStop();
        }
    }

    /** Whether {@link #requestStop()} was called. */
    public boolean stopRequested() {
        return stopRequested;
    }

    /**
     * Resets the machine (QMP system_reset): at its next wake-up the vCPU resets every device, then
     * the guest boots again (firmware, drivers, pings or serving go on). The future completes once
     * the devices are reset; it fails when the guest is not running.
     */
    public CompletableFuture<Void> requestSystemReset() {
        JavaGuest g = guest;
        if (g == null || !runState.equals("running")) {
            return CompletableFuture.failedFuture(new VmException("the guest is not running (status " + runState + ")"));
        }
        return g.requestReboot();
    }

    /** The Java guest, for tests that drive it further after {@link #run()} (single-threaded: one caller at a time). */
    JavaGuest guest() {
        return guest;
    }

    /** Boots the guest on a vCPU thread and waits for it to finish its pings and serving. */
    public RunSummary run() throws InterruptedException {
        GuestRunner started;
        if (kvm != null) {
            kvmGuest = new KvmGuest(options, kvm, memory, pio, log, this::packetsMoved, this::kicksServed);
            started = kvmGuest;
        } else {
            JavaGuest guest = new JavaGuest(options, pio, mmio, memory, apic, log);
            guest.onPlatformReset(() -> {
                netTransport.resetDevice();
                rngTransport.resetDevice();
            });
            this.guest = guest;
            started = guest;
        }
        runner = started;
        if (stopRequested) {
            started.requestStop();
        }
        runState = "running";
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
        try {
            vcpu.join();
        } finally {
            runState = "shutdown";
        }
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
        String error = g.error() != null ? g.error() : netTransport.lastError() != null ? netTransport.lastError() : backendGone;
        RunSummary.GuestLink link = guest == null ? null
                : new RunSummary.GuestLink(guest.linkUp, List.copyOf(guest.linkChanges), guest.reboots);
        return new RunSummary(backend.name() + (options.backend().equals("emulated-sync") ? "-sync" : ""), portKind, portName(),
                options.guestIp(), options.hostIp(), NetFeatures.names(g.acked()), g.pairs(), ping, udp, g.maxRxBuffers(),
                g.echoRequestsAnswered(), queues, g.rng(), DeviceStatus.describe(netTransport.status()), error, link,
                options.kvm() ? VmOptions.VCPU_KVM : VmOptions.VCPU_JAVA, kvmGuest == null ? null : kvmGuest.exits().asMap(),
                kvmGuest == null ? null : kvmReport());
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
