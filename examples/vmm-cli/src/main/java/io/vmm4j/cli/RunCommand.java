package io.vmm4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmm4j.cli.vm.RunSummary;
import io.vmm4j.cli.vm.ToyVm;
import io.vmm4j.cli.vm.VmOptions;
import io.vmm4j.virtio.net.NetFeatures;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "run", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Boot the toy VMM: a guest on a vCPU thread finds virtio-net on the PCI bus, brings it up "
                + "(features, queues, MSI-X) and pings the host through the chosen data plane and port. The guest is a Java "
                + "frontend on a thread, or with --vcpu kvm a freestanding C guest on a real KVM vCPU (kicks by ioeventfd, "
                + "interrupts by irqfd). As root the port is a new tap with the host address on it; otherwise an in-memory "
                + "peer inside the VMM.",
        footer = {"", "Examples:",
                "  ./vmm run                             ping the host 3 times over a new tap",
                "  ./vmm run --count 5 --json            one JSON summary on stdout",
                "  ./vmm run --count 0 --serve 30        stay up; ping 10.0.2.15 from the host",
                "  ./vmm run --queues 2 --backend emulated-sync",
                "  ./vmm run --vcpu kvm --count 5 --json  the C guest on KVM; vmExits and exits per packet in the JSON"})
public final class RunCommand implements Callable<Integer> {
    @Option(names = "--vcpu", defaultValue = "java",
            description = "Who runs the guest: java (the Java frontend on a thread) or kvm (the C guest on a KVM vCPU; needs /dev/kvm). Default: ${DEFAULT-VALUE}.")
    String vcpu;

    @Option(names = "--backend", defaultValue = "emulated",
            description = "Data plane: emulated (ioeventfd + VMM I/O thread), emulated-sync (notify handled on the vCPU thread), vhost-net, vhost-user. Default: ${DEFAULT-VALUE}.")
    String backend;

    @Option(names = "--port", defaultValue = "auto", description = "auto, tap or memory. Default: ${DEFAULT-VALUE} (tap with CAP_NET_ADMIN, else memory).")
    String port;

    @Option(names = "--tap", description = "Tap name; an existing tap is used as is, a new one gets --host-ip. Default: the kernel picks vmm4jN.")
    String tap;

    @Option(names = "--bridge", description = "Attach the tap to this existing Linux bridge instead of giving it an address.")
    String bridge;

    @Option(names = "--guest-ip", defaultValue = "10.0.2.15", description = "The guest's IPv4 address. Default: ${DEFAULT-VALUE}.")
    String guestIp;

    @Option(names = "--host-ip", defaultValue = "10.0.2.2/24", description = "The host side's address/prefix. Default: ${DEFAULT-VALUE}.")
    String hostIp;

    @Option(names = "--ping", description = "Whom the guest pings. Default: the host address.")
    String ping;

    @Option(names = "--queues", defaultValue = "1", description = "virtio-net queue pairs (and tap queues). Default: ${DEFAULT-VALUE}.")
    int queues;

    @Option(names = "--count", defaultValue = "3", description = "Pings to send; 0 for none. Default: ${DEFAULT-VALUE}.")
    int count;

    @Option(names = "--ping-size", defaultValue = "56", description = "ICMP payload bytes per ping (up to MTU - 28). Default: ${DEFAULT-VALUE}.")
    int pingSize;

    @Option(names = "--interval", defaultValue = "200", description = "Milliseconds between pings. Default: ${DEFAULT-VALUE}.")
    int intervalMs;

    @Option(names = "--udp-port", defaultValue = "0", description = "Also send --count UDP datagrams per queue pair to this host port and count echoes.")
    int udpPort;

    @Option(names = "--serve", defaultValue = "0", description = "Stay up this many seconds after the pings, answering the host. Default: ${DEFAULT-VALUE}.")
    int serveSeconds;

    @Option(names = "--mac", defaultValue = "52:54:00:12:34:56", description = "The NIC's MAC address. Default: ${DEFAULT-VALUE}.")
    String mac;

    @Option(names = "--mtu", defaultValue = "1500", description = "The NIC's MTU. Default: ${DEFAULT-VALUE}.")
    int mtu;

    @Option(names = "--memory", defaultValue = "128", description = "Guest RAM in MiB. Default: ${DEFAULT-VALUE}.")
    int memoryMiB;

    @Option(names = "--guest-features", split = ",",
            description = "virtio-net features the Java guest asks for, by name (e.g. GUEST_CSUM,GUEST_TSO4); added to its defaults.")
    String[] guestFeatures;

    @Option(names = "--socket", description = "vhost-user socket path (with --backend vhost-user).")
    String socket;

    @Option(names = "--json", description = "Print one JSON summary object on stdout; the boot log goes to stderr.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        validate();
        PrintStream log = json ? System.err : System.out;
        VmOptions options = new VmOptions(backend, port, tap, bridge, guestIp, hostIp, ping, queues, count, pingSize, intervalMs, udpPort,
                serveSeconds, mac, mtu, memoryMiB, wantedFeatures(), socket, vcpu);
        RunSummary summary;
        try (ToyVm vm = new ToyVm(options, log, new SimpleMeterRegistry())) {
            summary = vm.run();
        }
        if (json) {
            System.out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(summary));
        } else {
            for (RunSummary.Queue q : summary.queues()) {
                log.printf("queue %s%d: packets %d, bytes %d, kicks %d, interrupts %d (suppressed %d), no-buffer drops %d%n",
                        q.direction(), q.pair(), q.packets(), q.bytes(), q.kicks(), q.interrupts(), q.interruptsSuppressed(),
                        q.dropsNoBuffer());
            }
            if (summary.kvm() != null) {
                RunSummary.QuietPhase quiet = summary.kvm().quietPhase();
                log.printf("vCPU exits to the VMM: %d %s; in steady traffic: %d exits for %d packets (%.3f per packet), %d kicks served%n",
                        summary.kvm().vmExitsTotal(), summary.vmExits(), quiet.exits(), quiet.packets(), quiet.exitsPerPacket(),
                        quiet.kicks());
            }
        }
        boolean pingsOk = summary.ping().received() == count;
        boolean udpOk = summary.udp() == null || summary.udp().received() == summary.udp().sent();
        return summary.error() == null && pingsOk && udpOk ? 0 : 1;
    }

    private void validate() {
        if (!vcpu.equals(VmOptions.VCPU_JAVA) && !vcpu.equals(VmOptions.VCPU_KVM)) {
            throw new IllegalArgumentException("--vcpu must be java or kvm, not '" + vcpu + "'");
        }
        if (queues < 1 || queues > 16) {
            throw new IllegalArgumentException("--queues must be 1..16, was " + queues);
        }
        if (count < 0 || serveSeconds < 0 || intervalMs < 1) {
            throw new IllegalArgumentException("--count and --serve must be >= 0 and --interval >= 1");
        }
        if (memoryMiB < 16 || memoryMiB > 4096) {
            throw new IllegalArgumentException("--memory must be 16..4096 MiB, was " + memoryMiB);
        }
        if (!hostIp.matches("\\d+\\.\\d+\\.\\d+\\.\\d+(/\\d+)?")) {
            throw new IllegalArgumentException("--host-ip must look like 10.0.2.2/24, was '" + hostIp + "'");
        }
    }

    private long wantedFeatures() {
        long f = io.vmm4j.cli.vm.GuestDefaults.features();
        if (guestFeatures != null) {
            for (String name : guestFeatures) {
                String n = name.trim().toUpperCase(Locale.ROOT);
                int bit = NetFeatures.NAMES.entrySet().stream().filter(e -> e.getValue().equals(n)).mapToInt(e -> e.getKey())
                        .findFirst().orElseThrow(() -> new IllegalArgumentException("unknown virtio-net feature '" + name
                                + "'; known: " + NetFeatures.NAMES.values()));
                f |= 1L << bit;
            }
        }
        return f;
    }
}
