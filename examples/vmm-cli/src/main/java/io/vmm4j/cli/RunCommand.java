package io.vmm4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.micrometer.core.instrument.MeterRegistry;
import io.vmm4j.cli.config.ConfigException;
import io.vmm4j.cli.config.NetRules;
import io.vmm4j.cli.config.VmConfig;
import io.vmm4j.cli.config.VmConfigLoader;
import io.vmm4j.cli.config.VmRules;
import io.vmm4j.cli.vm.DataPlane;
import io.vmm4j.cli.vm.FloodWorkload;
import io.vmm4j.cli.vm.LinuxGuestImage;
import io.vmm4j.cli.vm.OptionValue;
import io.vmm4j.cli.vm.RunSummary;
import io.vmm4j.cli.vm.ToyVm;
import io.vmm4j.cli.vm.VmOptions;
import io.vmm4j.core.boot.BzImage;
import io.vmm4j.core.boot.KernelImageException;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.NetQueueCounters;
import io.vmm4j.virtio.queue.RingLayout;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "run", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Boot the toy VMM: a Java guest on a vCPU thread finds virtio-net on the PCI bus, brings it up "
                + "(features, queues, MSI-X) and pings the host through the chosen data plane and port. As root the port is "
                + "a new tap with the host address on it; otherwise an in-memory peer inside the VMM.",
        footer = {"", "Examples:",
                "  ./vmm run                             ping the host 3 times over a new tap",
                "  ./vmm run --count 5 --json            one JSON summary on stdout",
                "  ./vmm run --count 0 --serve 30        stay up; ping 10.0.2.15 from the host",
                "  ./vmm run --queues 2 --backend emulated-sync",
                "  ./vmm run --backend vhost-user --socket /tmp/vu.sock   rings served by ./vmm vhost-user-backend --socket /tmp/vu.sock ...",
                "  ./vmm run --config vm.json --count 5  the VM from a file; flags override it",
                "  ./vmm run --count 0 --serve 60 --qmp /tmp/vm.qmp --metrics 9464",
                "                                        QMP socket, metrics on 127.0.0.1:9464",
                "  ./vmm run --pcap /tmp/vm.pcap         every frame into a pcap for tshark",
                "  ./vmm run --vcpu kvm --count 5 --json  the C guest on KVM; vmExits and exits per packet in the JSON",
                "  ./vmm run --vcpu kvm --count 0 --workload tx-flood --frame-size 64 --duration-ms 1000",
                "                                        the C guest floods the host with UDP frames for a second",
                "  ./vmm run --vcpu kvm --kernel /boot/vmlinuz --initrd guest.cpio.gz --append \"console=ttyS0 reboot=k vmm4j.workload=ping\"",
                "                                        boot Linux directly; the run ends when the guest reboots",
                "  ./vmm run --vcpu kvm --guest linux    the lab's Debian kernel and the project's initramfs: ping, then reboot"})
public final class RunCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--vcpu", defaultValue = "java",
            description = "Who runs the guest: java (the Java frontend on a thread) or kvm (the C guest on a KVM vCPU, or with --kernel a "
                    + "Linux kernel; needs /dev/kvm). Default: ${DEFAULT-VALUE}.")
    String vcpu;

    @Option(names = "--kernel", paramLabel = "BZIMAGE",
            description = "Boot this Linux bzImage directly on KVM (with --vcpu kvm) instead of the C guest: its own virtio_net "
                    + "driver on our device; the run ends when the guest reboots.")
    Path kernel;

    @Option(names = "--initrd", paramLabel = "FILE", description = "With --kernel: the initramfs to load (e.g. scripts/linux-guest/build-initramfs's).")
    Path initrd;

    @Option(names = "--append", paramLabel = "CMDLINE",
            description = "With --kernel: the kernel command line. Default: \"" + VmOptions.DEFAULT_APPEND + "\"; vmm4j.ip and vmm4j.host "
                    + "(from --guest-ip and --host-ip) are added unless given.")
    String append;

    @Option(names = "--guest", paramLabel = "linux",
            description = "linux: boot the lab's cached Debian kernel with the project's initramfs (scripts/linux-guest/build-initramfs "
                    + "builds both on first use), as --kernel and --initrd; with --vcpu kvm. Without --append its /init pings the host.")
    String guest;

    @Option(names = "--cpus", defaultValue = "1", description = "With --kernel: vCPUs of the Linux guest, 1 to 254. Default: ${DEFAULT-VALUE}.")
    int cpus;

    @Option(names = "--config", paramLabel = "FILE",
            description = "Read the VM from this JSON file (see the README); flags given on the command line override its values.")
    Path config;

    @Option(names = "--backend", defaultValue = "emulated",
            description = "Data plane: emulated (ioeventfd + VMM I/O thread), emulated-sync (notify handled on the vCPU thread), vhost-net, "
                    + "vhost-user (a back-end process on --socket serves the rings). Default: ${DEFAULT-VALUE}.")
    String backend;

    @Option(names = "--port", defaultValue = "auto",
            description = "auto, tap, memory or discard. Default: ${DEFAULT-VALUE} (tap with CAP_NET_ADMIN, else memory). discard "
                    + "counts and drops what the guest sends and fills each receive buffer it posts with a 64-byte UDP frame; it "
                    + "answers nothing, so it needs --count 0 and --udp-port 0 (use --serve N to run N seconds).")
    String port;

    @Option(names = "--tap", description = "Tap name; an existing tap is used as is, a new one gets --host-ip. Default: the kernel picks vmm4jN.")
    String tap;

    @Option(names = "--bridge", paramLabel = "[linux:|ovs:]NAME", description = "Attach the tap to this existing switch instead of "
            + "giving it an address: NAME or linux:NAME, a Linux bridge; ovs:NAME, an Open vSwitch bridge (ovs-vsctl add-port at "
            + "start, del-port at exit; OVS_RUNDIR says where its db.sock is when it is not the system's).")
    String bridge;

    @Option(names = "--guest-ip", defaultValue = VmOptions.DEFAULT_GUEST_IP,
            description = "The guest's IPv4 address: unicast, and in --host-ip's subnet when this VMM addresses the link (not with "
                    + "--bridge, an existing --tap or vhost-user). Default: ${DEFAULT-VALUE}.")
    String guestIp;

    @CommandLine.Mixin
    LinkOptions link;

    @Option(names = "--ping",
            description = "Whom the guest pings: a unicast address on its link (the guest has no router). Default: the host address.")
    String ping;

    @Option(names = "--count", defaultValue = "" + VmOptions.DEFAULT_COUNT,
            description = "Pings to send; 0 for none. Default: ${DEFAULT-VALUE}.")
    int count;

    @Option(names = "--ping-size", defaultValue = "" + VmOptions.DEFAULT_PING_SIZE,
            description = "ICMP payload bytes per ping (up to MTU - 28). Default: ${DEFAULT-VALUE}.")
    int pingSize;

    @Option(names = "--interval", defaultValue = "" + VmOptions.DEFAULT_INTERVAL_MS,
            description = "Milliseconds between pings. Default: ${DEFAULT-VALUE}.")
    int intervalMs;

    @Option(names = "--udp-port", defaultValue = "0",
            description = "Also send --count UDP datagrams per queue pair to this host port and count echoes. With --workload: the "
                    + "port the flood goes to or is counted at (0: " + FloodWorkload.DEFAULT_PORT + ", discard).")
    int udpPort;

    @Option(names = "--workload", paramLabel = "tx-flood|rx-count",
            description = "With --vcpu kvm, after the pings: tx-flood sends UDP frames of --frame-size bytes to the host as fast as "
                    + "the TX ring allows, rx-count counts the UDP frames the host sends to the guest's --udp-port; for "
                    + "--duration-ms. The JSON's kvm.flood has what the guest counted.")
    String workload;

    @Option(names = "--frame-size", defaultValue = "" + FloodWorkload.DEFAULT_FRAME_SIZE,
            description = "With --workload tx-flood: Ethernet bytes per frame without FCS (14 + 20 + 8 + UDP payload), "
                    + FloodWorkload.MIN_FRAME_SIZE + " to " + FloodWorkload.MAX_FRAME_SIZE + ". Default: ${DEFAULT-VALUE}.")
    int frameSize;

    @Option(names = "--duration-ms", defaultValue = "" + FloodWorkload.DEFAULT_DURATION_MS,
            description = "With --workload: how long the flood or the count lasts, in ms. Default: ${DEFAULT-VALUE}.")
    int durationMs;

    @Option(names = "--serve", defaultValue = "0",
            description = "Stay up this many seconds after the pings, answering the host. Default: ${DEFAULT-VALUE}.")
    int serveSeconds;

    @Option(names = "--mac", defaultValue = VmOptions.DEFAULT_MAC, description = "The NIC's MAC address. Default: ${DEFAULT-VALUE}.")
    String mac;

    @Option(names = "--mtu", defaultValue = "" + VmOptions.DEFAULT_MTU, description = "The NIC's MTU. Default: ${DEFAULT-VALUE}.")
    int mtu;

    @Option(names = "--memory", defaultValue = "" + VmOptions.DEFAULT_MEMORY_MIB,
            description = "Guest RAM in MiB. Default: ${DEFAULT-VALUE}.")
    int memoryMiB;

    @Option(names = "--queue-size", defaultValue = "" + VmOptions.DEFAULT_QUEUE_SIZE,
            description = "Size of each virtio-net data queue: a power of two from 64 to 1024. Default: ${DEFAULT-VALUE}.")
    int queueSize;

    @Option(names = "--ring", defaultValue = "split",
            description = "Ring layouts the NIC offers: split, or packed (also VIRTIO_F_RING_PACKED, virtio 1.2 §2.8; the driver picks, "
                    + "and Linux, the Java and the C guest pick packed). Not served by vhost-net, nor over vhost-user with "
                    + "--reconnect/--socket-listen; there the NIC offers split only. Default: ${DEFAULT-VALUE}.")
    String ring;

    @Option(names = "--poll-us", paramLabel = "MICROS", defaultValue = "0",
            description = "With the emulated data plane: busy-poll — after its last frame each I/O thread keeps polling its rings "
                    + "and port this long before it sleeps, the guest's kicks off meanwhile (a CPU spent for fewer kicks, wake-ups "
                    + "and syscalls per packet; vhost-net's busyloop_timeout). 0 to " + VmRules.MAX_POLL_MICROS + "; for vhost-user "
                    + "give it to the back-end (./vmm vhost-user-backend --poll-us). Default: ${DEFAULT-VALUE}: no polling.")
    int pollMicros;

    @Option(names = "--guest-features", split = ",",
            description = "virtio-net features the Java guest asks for, by name (e.g. GUEST_CSUM,GUEST_TSO4); added to its defaults.")
    String[] guestFeatures;

    @Option(names = "--socket", description = "With --backend vhost-user: the socket of the back-end daemon, started first "
            + "(./vmm vhost-user-backend --socket PATH --tap NAME); it owns the port, so --tap/--port/--bridge do not apply.")
    String socket;

    @Option(names = "--socket-listen", paramLabel = "PATH", description = "With --backend vhost-user: the VMM listens at PATH and "
            + "the back-end connects to it (QEMU's server=on), and may connect again after it goes "
            + "(./vmm vhost-user-backend --client --socket PATH ...). Instead of --socket.")
    String socketListen;

    @Option(names = "--reconnect", paramLabel = "SECONDS", defaultValue = "0", description = "With --backend vhost-user --socket: "
            + "when the back-end goes, keep the guest running with the link down and retry the socket every SECONDS; a back-end "
            + "that comes back gets the whole setup again and the link goes up (QEMU's reconnect-ms, in seconds). 0: never.")
    int reconnectSeconds;

    @Option(names = "--qmp", paramLabel = "PATH",
            description = "Serve a QMP control socket (UNIX, mode 0600) at PATH: queries, set_link, system_reset, quit, events.")
    Path qmp;

    @Option(names = "--metrics", paramLabel = "ADDR:PORT",
            description = "Serve Prometheus metrics at http://ADDR:PORT/metrics; a port alone listens on 127.0.0.1 (0: any free port).")
    String metrics;

    @Option(names = "--pcap", paramLabel = "FILE",
            description = "Write every frame the NIC sends or receives to FILE (pcap, for tshark/Wireshark). Emulated data plane only.")
    Path pcap;

    @Option(names = "--json", description = "Print one JSON summary object on stdout; the boot log goes to stderr.")
    boolean json;

    /** The exit status of a run refused for a flag or the config file, before anything was created (picocli's for usage errors). */
    static final int EXIT_REFUSED = CommandLine.ExitCode.USAGE;

    /** The flags whose value came from the config file, with the JSON path of their field. */
    private final Map<String, String> fromFile = new HashMap<>();

    @Override
    public Integer call() throws Exception {
        VmOptions options;
        try {
            options = resolve();
        } catch (ConfigException | IllegalArgumentException e) {
            // said before any tap, socket or VM exists: nothing to clean up
            spec.commandLine().getErr().println("vmm run: " + e.getMessage());
            return EXIT_REFUSED;
        }
        PrintStream log = json ? System.err : System.out;
        Management.Settings settings = managementSettings();
        MeterRegistry registry = Management.registry(settings);
        RunSummary summary;
        try (ToyVm vm = new ToyVm(options, log);
             Management management = Management.start(vm, settings, registry, log)) {
            summary = vm.run();
            management.vmStopped();
        }
        if (json) {
            System.out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(summary));
        } else {
            if (summary.backend().equals("vhost-net") || summary.backend().equals("vhost-user")) {
                log.println("(the queue counters below are the VMM's own data plane's: with " + summary.backend() + " the "
                        + (summary.backend().equals("vhost-net") ? "kernel's vhost worker" : "back-end process") + " moved the frames)");
            }
            for (RunSummary.Queue queue : summary.queues()) {
                NetQueueCounters.Snapshot q = queue.counters();
                log.printf("queue %s%d: packets %d, bytes %d, kicks %d, interrupts %d (suppressed %d), no-buffer drops %d%n",
                        q.direction(), queue.pair(), q.packets(), q.bytes(), q.kicks(), q.interrupts(), q.interruptsSuppressed(),
                        q.dropsNoBuffer());
            }
            if (summary.discardPort() != null) {
                io.vmm4j.tap.DiscardPort.Stats d = summary.discardPort();
                log.printf("discard port: %d frame(s) (%d bytes) from the guest dropped, %d frame(s) (%d bytes) made for it%n",
                        d.txFrames(), d.txBytes(), d.rxFrames(), d.rxBytes());
            }
            if (summary.linux() != null) {
                RunSummary.Linux l = summary.linux();
                log.printf("linux guest: %s after %.1f s%s; %d result line%s; features acked %s%n", l.ending(), l.seconds(),
                        l.panic() == null ? "" : " (" + l.panic() + ")", l.results().size(), l.results().size() == 1 ? "" : "s",
                        summary.features());
            }
            if (summary.kvm() != null && summary.kvm().flood() != null) {
                RunSummary.Flood f = summary.kvm().flood();
                log.printf("%s: %d frame(s) (%d bytes) in %.3f s, %.3f Mpps; %d kicks, %d interrupts, %d other frame(s) received%n",
                        f.workload(), f.frames(), f.bytes(), f.seconds(), f.packetsPerSecond() / 1e6, f.kicks(), f.interrupts(),
                        f.otherFrames());
            }
            if (summary.kvm() != null) {
                RunSummary.QuietPhase quiet = summary.kvm().quietPhase();
                log.printf("vCPU exits to the VMM: %d %s; in steady traffic: %d exits for %d packets (%.3f per packet), %d kicks served%n",
                        summary.kvm().vmExitsTotal(), summary.vmExits(), quiet.exits(), quiet.packets(), quiet.exitsPerPacket(),
                        quiet.kicks());
            }
        }
        // a Linux guest's pings are its own /init's business: its run succeeded when it rebooted without a panic
        boolean pingsOk = summary.ping() == null || summary.ping().received() == count;
        boolean udpOk = summary.udp() == null || summary.udp().received() == summary.udp().sent();
        return summary.error() == null && pingsOk && udpOk ? 0 : 1;
    }

    /**
     * The VM to run: the config file's values (when --config is given) under the flags that were
     * given on the command line, then every value checked.
     */
    VmOptions resolve() {
        if (config != null) {
            VmConfig file = VmConfigLoader.load(config);
            CommandLine.ParseResult given = spec.commandLine().getParseResult();
            for (Map.Entry<String, Object> e : file.asFlags().entrySet()) {
                if (!given.hasMatchedOption(e.getKey())) {
                    spec.findOption(e.getKey()).setValue(e.getValue());
                    fromFile.put(e.getKey(), VmConfig.FIELD_OF_FLAG.get(e.getKey()));
                }
            }
        }
        if (guest != null) {
            pickLinuxGuest();
        }
        validate();
        return VmOptions.builder().dataPlane(DataPlane.of(backend)).port(OptionValue.of(VmOptions.Port.class, port)).tap(tap)
                .bridge(bridge).guestIp(guestIp).hostIp(link.hostIp()).pingTarget(ping).pairs(link.queues()).count(count)
                .pingSize(pingSize).intervalMs(intervalMs).udpPort(workload == null ? udpPort : 0).serveSeconds(serveSeconds)
                .flood(flood()).mac(mac).mtu(mtu)
                .memoryMiB(memoryMiB).wantedFeatures(wantedFeatures()).socket(socketListen != null ? socketListen : socket)
                .socketListen(socketListen != null).reconnectSeconds(reconnectSeconds).queueSize(queueSize)
                .vcpu(OptionValue.of(VmOptions.Vcpu.class, vcpu)).kernel(kernel).initrd(initrd).append(append).cpus(cpus)
                .ring(RingLayout.valueOf(ring.toUpperCase(java.util.Locale.ROOT))).pollMicros(pollMicros).build();
    }

    /** The flood --workload asks for, or null; its values are checked in {@link #checkWorkload()}. */
    private FloodWorkload flood() {
        if (workload == null) {
            return null;
        }
        return new FloodWorkload(OptionValue.of(FloodWorkload.Kind.class, workload), frameSize, durationMs,
                udpPort == 0 ? FloodWorkload.DEFAULT_PORT : udpPort);
    }

    /** --workload and its --frame-size and --duration-ms: values in range, and only for the C guest on KVM. */
    private void checkWorkload() {
        CommandLine.ParseResult given = spec.commandLine().getParseResult();
        if (workload == null) {
            for (String flag : new String[] {"--frame-size", "--duration-ms"}) {
                if (given.hasMatchedOption(flag) || fromFile.containsKey(flag)) {
                    check(flag, "goes with --workload tx-flood or rx-count");
                }
            }
            return;
        }
        check("--workload", VmRules.oneOf(workload, VmRules.WORKLOADS));
        if (OptionValue.of(VmOptions.Vcpu.class, vcpu) != VmOptions.Vcpu.KVM || kernel != null) {
            check("--workload", workload + " is a workload of the C guest on KVM: add --vcpu kvm"
                    + (kernel != null ? " and drop --kernel/--guest linux" : ""));
        }
        check("--frame-size", VmRules.range(frameSize, FloodWorkload.MIN_FRAME_SIZE, FloodWorkload.MAX_FRAME_SIZE,
                "bytes (an Ethernet frame without FCS)"));
        check("--duration-ms", VmRules.range(durationMs, 1, FloodWorkload.MAX_DURATION_MS, "ms"));
        if (frameSize > mtu + 14) {
            check("--frame-size", frameSize + " bytes do not fit the NIC's --mtu " + mtu + " (at most MTU + 14 bytes of Ethernet header)");
        }
    }

    Management.Settings managementSettings() {
        return new Management.Settings(qmp, metrics, pcap);
    }

    private void validate() {
        check("--vcpu", VmRules.oneOf(vcpu, VmRules.VCPUS));
        check("--backend", VmRules.oneOf(backend, VmRules.BACKENDS));
        check("--port", VmRules.oneOf(port, VmRules.PORTS));
        check("--queues", VmRules.range(link.queues(), 1, VmRules.MAX_QUEUE_PAIRS, "queue pairs"));
        check("--queue-size", VmRules.queueSize(queueSize));
        check("--ring", VmRules.oneOf(ring, VmRules.RINGS));
        check("--poll-us", VmRules.range(pollMicros, 0, VmRules.MAX_POLL_MICROS, "µs (0: no busy-poll)"));
        if (pollMicros > 0 && !backend.equals("emulated")) {
            check("--poll-us", pollMicros + ": busy-poll is for the emulated data plane's I/O threads, and --backend is " + backend
                    + (backend.equals("vhost-user") ? ": give --poll-us to the back-end (./vmm vhost-user-backend --poll-us N)"
                    : backend.equals("vhost-net") ? ": the kernel's own is vhost-net's busyloop_timeout (not set by vmm4j)"
                    : ": emulated-sync serves kicks on the vCPU thread; use --backend emulated"));
        }
        check("--count", VmRules.atLeast(count, 0));
        check("--serve", VmRules.atLeast(serveSeconds, 0));
        check("--interval", VmRules.range(intervalMs, 1, 60_000, "ms"));
        check("--memory", VmRules.range(memoryMiB, VmRules.MIN_MEMORY_MIB, VmRules.MAX_MEMORY_MIB, "MiB"));
        check("--mtu", VmRules.range(mtu, VmRules.MIN_MTU, VmRules.MAX_MTU, "bytes"));
        check("--ping-size", VmRules.range(pingSize, 0, mtu - 28, "bytes (the MTU " + mtu + " minus 28 bytes of IPv4 and ICMP headers)"));
        check("--udp-port", VmRules.range(udpPort, 0, 65535, "(0: no UDP flows)"));
        if ("discard".equals(port) && (count != 0 || udpPort != 0)) {
            check(count != 0 ? "--count" : "--udp-port", (count != 0 ? count : udpPort) + ": the discard port answers nothing, so no ping"
                    + " or UDP echo would come back; give --count 0 --udp-port 0 and --serve N to flood the guest for N seconds");
        }
        check("--mac", VmRules.mac(mac));
        checkVhostUserEndpoint();
        if (tap != null && !tap.isEmpty()) {
            check("--tap", VmRules.interfaceName(tap));
        }
        if (bridge != null) {
            check("--bridge", VmRules.bridge(bridge));
        }
        check("--host-ip", VmRules.hostIp(link.hostIp()));
        check("--guest-ip", VmRules.unicastIpv4(guestIp));
        if (ping != null) {
            check("--ping", VmRules.unicastIpv4(ping));
        }
        checkAddressPlan();
        checkWorkload();
        checkLinuxGuest();
        if (metrics != null) {
            check("--metrics", VmRules.metricsAddress(metrics));
        }
    }

    /** --socket or --socket-listen (one of them), and --reconnect only for a client (QEMU refuses reconnect with server=on). */
    private void checkVhostUserEndpoint() {
        check("--reconnect", VmRules.range(reconnectSeconds, 0, VmRules.MAX_RECONNECT_SECONDS, "seconds (0: never reconnect)"));
        if (socketListen != null) {
            check("--socket-listen", VmRules.path(socketListen));
            if (socket != null) {
                throw new IllegalArgumentException(label("--socket-listen") + " and " + label("--socket") + " both given: the VMM "
                        + "either listens for the back-end (--socket-listen) or connects to it (--socket); give one");
            }
            if (reconnectSeconds > 0) {
                throw new IllegalArgumentException(label("--reconnect") + " " + reconnectSeconds + " with " + label("--socket-listen")
                        + ": a listening VMM accepts the back-end again by itself; --reconnect is for --socket (a VMM that connects)");
            }
        }
        if ((socketListen != null || reconnectSeconds > 0) && !"vhost-user".equals(backend)) {
            throw new IllegalArgumentException(label(socketListen != null ? "--socket-listen" : "--reconnect") + " is for --backend "
                    + "vhost-user; --backend is " + backend);
        }
        if (reconnectSeconds > 0 && socket == null) {
            throw new IllegalArgumentException(label("--reconnect") + " " + reconnectSeconds + " needs --socket PATH, the back-end's "
                    + "socket to retry");
        }
    }

    /**
     * The guest, the host side and the ping target together, each already a unicast address: the
     * guest has no router, so when this VMM puts --host-ip on the link (a new tap, or the in-memory
     * host) the guest and the ping target must be in its subnet, and neither its network nor its
     * broadcast address (RFC 1122 §3.2.1.3). With --bridge, an existing --tap or a vhost-user
     * back-end, someone else addresses the link and only the plain conflicts are checked.
     */
    private void checkAddressPlan() {
        String hostIp = link.hostIp();
        int host = NetRules.parseIpv4(link.hostAddress()).orElseThrow();
        NetRules.Subnet subnet = NetRules.subnetOf(hostIp, VmOptions.DEFAULT_HOST_PREFIX);
        String hostSide = label("--host-ip") + " " + hostIp + (hostIp.contains("/") ? "" : " (/" + VmOptions.DEFAULT_HOST_PREFIX + ")");
        int guest = NetRules.parseIpv4(guestIp).orElseThrow();
        if (guest == host) {
            check("--guest-ip", quoted(guestIp) + " is the host side's address (" + hostSide + "); give the guest another address in "
                    + subnet + ", like " + NetRules.format(exampleIn(subnet, host)));
        }
        boolean ownLink = assignsHostAddress();
        if (ownLink) {
            check("--guest-ip", notInside(guestIp, guest, subnet, hostSide, "the guest reaches the host only inside one subnet: "
                    + "change --guest-ip to one like " + NetRules.format(exampleIn(subnet, host)) + ", or --host-ip"));
        }
        if (ping != null) {
            int target = NetRules.parseIpv4(ping).orElseThrow();
            if (target == guest) {
                check("--ping", quoted(ping) + " is the guest's own address (" + label("--guest-ip") + "); ping the host side (leave "
                        + "--ping out) or another host on the link");
            }
            if (ownLink) {
                check("--ping", notInside(ping, target, subnet, hostSide, "the guest sends only to its own link: ping an address "
                        + "in " + subnet + ", like the host side " + NetRules.format(host)));
            }
        }
    }

    /** Why {@code address} is not a host inside {@code subnet}, or null. */
    private static String notInside(String text, int address, NetRules.Subnet subnet, String hostSide, String advice) {
        if (!subnet.contains(address)) {
            return quoted(text) + " is outside the host side's subnet " + subnet + " (" + hostSide + ") and the guest has no router; "
                    + advice;
        }
        if (address == subnet.network() || address == subnet.broadcast()) {
            return quoted(text) + " is the " + (address == subnet.network() ? "network" : "broadcast") + " address of the host side's "
                    + "subnet " + subnet + " (" + hostSide + "), not a host; " + advice;
        }
        return null;
    }

    /** A host address in {@code subnet} other than {@code host}, for a message's example. */
    private static int exampleIn(NetRules.Subnet subnet, int host) {
        int candidate = subnet.network() + 15;
        if (Integer.compareUnsigned(candidate, subnet.broadcast()) >= 0 || candidate == host) {
            candidate = subnet.network() + (host == subnet.network() + 1 ? 2 : 1);
        }
        return candidate;
    }

    /** Whether this VMM puts the host side's address on the guest's link: the in-memory host, or a new tap not on a bridge. */
    private boolean assignsHostAddress() {
        if (!DataPlane.of(backend).vmmOwnsPort()) {
            return false; // the back-end daemon owns the port
        }
        if (OptionValue.of(VmOptions.Port.class, port) == VmOptions.Port.MEMORY) {
            return true; // the host inside the VMM answers at --host-ip
        }
        // as ToyVm decides: a tap on a bridge, or one that exists already, gets no address from us
        return bridge == null && !(tap != null && !tap.isEmpty() && Files.exists(Path.of("/sys/class/net", tap)));
    }

    /** {@code --guest linux}: the kernel and initramfs the project builds, and a command line whose /init pings the host. */
    private void pickLinuxGuest() {
        if (!guest.equals("linux")) {
            check("--guest", quoted(guest) + " is not a guest this VMM knows: linux (or leave --guest out for our own guests)");
        }
        if (kernel != null || initrd != null) {
            check("--guest", "linux picks the kernel and the initramfs itself: drop --kernel and --initrd, or --guest");
        }
        if (OptionValue.of(VmOptions.Vcpu.class, vcpu) != VmOptions.Vcpu.KVM) {
            check("--guest", "linux boots on KVM only: add --vcpu kvm");
        }
        LinuxGuestImage.Image image = LinuxGuestImage.locate();
        kernel = image.kernel();
        initrd = image.initrd();
        if (append == null) {
            append = VmOptions.DEFAULT_APPEND + " vmm4j.workload=ping";
        }
    }

    /**
     * The flags of a Linux guest together: --kernel boots on KVM only, and the flags that configure
     * our own guests' pings (a Linux guest runs its workloads from its command line) do not apply.
     */
    private void checkLinuxGuest() {
        CommandLine.ParseResult given = spec.commandLine().getParseResult();
        if (kernel == null) {
            for (String flag : new String[] {"--initrd", "--append", "--cpus"}) {
                if (given.hasMatchedOption(flag) || fromFile.containsKey(flag)) {
                    check(flag, "goes with --kernel BZIMAGE (a Linux guest); our own guests take no " + flag);
                }
            }
            return;
        }
        if (OptionValue.of(VmOptions.Vcpu.class, vcpu) != VmOptions.Vcpu.KVM) {
            check("--kernel", "a Linux kernel boots on KVM only: add --vcpu kvm");
        }
        if (!Files.isRegularFile(kernel)) {
            check("--kernel", quoted(kernel.toString()) + " is not a file: give a bzImage, e.g. /boot/vmlinuz-$(uname -r)");
        }
        try {
            BzImage.read(kernel); // the setup header checked now, before any tap or VM exists
        } catch (KernelImageException e) {
            check("--kernel", e.getMessage());
        }
        if (initrd != null && !Files.isRegularFile(initrd)) {
            check("--initrd", quoted(initrd.toString()) + " is not a file: give an initramfs, e.g. scripts/linux-guest/build-initramfs's output");
        }
        check("--cpus", VmRules.range(cpus, 1, 254, "vCPUs"));
        if (memoryMiB < 64) {
            check("--memory", memoryMiB + " MiB is too little for a Linux guest: give at least 64");
        }
        if (append != null && append.chars().anyMatch(c -> c < 0x20 || c == 0x7F)) {
            check("--append", "the kernel command line is one line of printable text");
        }
        for (String flag : new String[] {"--count", "--ping", "--ping-size", "--interval", "--udp-port", "--serve", "--guest-features",
                "--workload"}) {
            if (given.hasMatchedOption(flag) || fromFile.containsKey(flag)) {
                check(flag, "configures our own guests' pings; a Linux guest runs the workloads its command line names (--append "
                        + "\"... vmm4j.workload=ping\" with scripts/linux-guest's initramfs)");
            }
        }
    }

    private void check(String flag, String problem) {
        if (problem != null) {
            throw new IllegalArgumentException(label(flag) + ": " + problem);
        }
    }

    /** The flag, and where its value came from when the config file set it. */
    private String label(String flag) {
        String field = fromFile.get(flag);
        return field == null ? flag : flag + " (" + field + " in " + config + ")";
    }

    private static String quoted(String value) {
        return NetRules.quoted(value);
    }

    private long wantedFeatures() {
        long f = io.vmm4j.cli.vm.GuestDefaults.features();
        if (guestFeatures != null) {
            for (String name : guestFeatures) {
                String n = name.trim().toUpperCase(Locale.ROOT);
                int bit = NetFeatures.NAMES.entrySet().stream().filter(e -> e.getValue().equals(n)).mapToInt(e -> e.getKey())
                        .findFirst().orElseThrow(() -> new IllegalArgumentException(label("--guest-features")
                                + ": unknown virtio-net feature '" + name + "'; known: " + NetFeatures.NAMES.values()));
                f |= 1L << bit;
            }
        }
        return f;
    }
}
