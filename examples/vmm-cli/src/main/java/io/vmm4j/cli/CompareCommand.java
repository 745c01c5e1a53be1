package io.vmm4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.vmm4j.cli.compare.Chart;
import io.vmm4j.cli.compare.Comparison;
import io.vmm4j.cli.compare.DpdkComparison;
import io.vmm4j.cli.compare.LinuxComparison;
import io.vmm4j.cli.compare.LinuxReport;
import io.vmm4j.cli.compare.Progress;
import io.vmm4j.cli.compare.Report;
import io.vmm4j.cli.config.VmRules;
import io.vmm4j.cli.doctor.HostProbe;
import io.vmm4j.cli.vm.LinuxGuestImage;
import io.vmm4j.vhost.kernel.VhostKernel;
import io.vmm4j.virtio.queue.RingLayout;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "compare", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Run the same guest workload over every data plane this host has — emulated-sync (notify handled on "
                + "the vCPU thread), emulated (ioeventfd + I/O thread), vhost-user (a back-end daemon process the tool starts), "
                + "vhost-net (kernel, where /dev/vhost-net exists) — and "
                + "over a bare tap (the ceiling), and report packets/s, latency, CPU, syscalls and wake-ups per packet. "
                + "With --guest linux the guest is a stock Linux kernel on KVM, booted once per data plane: its pktgen, a host "
                + "flood it counts and its pings, with vCPU exits, VMM syscalls and the data-plane worker's CPU per packet.",
        footer = {"", "Examples:",
                "  ./vmm compare                              everything, about a minute",
                "  ./vmm compare --json out.json --chart out.png",
                "  ./vmm compare --modes emulated --sizes 64 --duration 1",
                "  ./vmm compare --guest dpdk --sizes 64 --duration 6   DPDK testpmd against DPDK's vhost PMD and our daemon",
                "  ./vmm compare --guest linux --modes emulated,vhost-net,vhost-user --json linux.json",
                "                                             a stock Linux kernel on KVM per data plane (needs a working /dev/kvm)"})
public final class CompareCommand implements Callable<Integer> {
    @Option(names = "--modes", split = ",", description = "Which data planes (default: every one available here).")
    List<String> modes;

    @Option(names = "--rings", split = ",", defaultValue = "split",
            description = "Ring layouts the NIC offers, each measured in turn over every mode: split, packed or split,packed (rows are "
                    + "then labelled \"emulated (packed)\"; vhost-net serves split only). Java and KVM guests. Default: ${DEFAULT-VALUE}.")
    List<String> rings;

    @Option(names = "--sizes", split = ",", defaultValue = "64,1500", description = "Frame sizes in bytes. Default: ${DEFAULT-VALUE}.")
    List<Integer> sizes;

    @Option(names = "--duration", defaultValue = "2", description = "Seconds per measurement. Default: ${DEFAULT-VALUE}.")
    double duration;

    @Option(names = "--vcpu",
            description = "java: the Java guest drives throughput, receive and latency workloads against the raw-tap ceiling; "
                    + "kvm: the C guest on a KVM vCPU pings over each data plane (vCPU exits and VMM syscalls per packet), "
                    + "then floods the host with UDP frames of each --sizes (TX, counted at the tap) and counts a host flood "
                    + "(RX), next to a raw-tap ceiling measured by a C program in the same run (needs /dev/kvm); the same as "
                    + "--guest java or --guest kvm. Default: java.")
    String vcpu;

    @Option(names = "--guest",
            description = "Who the guest is: java or kvm (as --vcpu); dpdk: DPDK testpmd's virtio_user drives DPDK's own vhost PMD "
                    + "(the reference) and our back-end daemon with each of --ports, event-driven and with --poll-us, txonly and "
                    + "rxonly, pinned to a core each (needs dpdk-testpmd; no hugepages); or linux: a stock Linux kernel on KVM (its own virtio_net; "
                    + "the lab's cached Debian kernel and the project's initramfs unless --kernel and --initrd are given) runs "
                    + "pktgen at each --sizes for --duration s, counts a host UDP flood and pings the host, per data plane; the table "
                    + "shows packets/s, loss, RTT and, over steady traffic, vCPU exits, VMM syscalls and wake-ups and the data-plane "
                    + "worker's CPU per packet (needs a /dev/kvm that boots stock kernels, e.g. the lab VM's nested KVM). "
                    + "Default: as --vcpu.")
    String guest;

    @Option(names = "--ports", split = ",", defaultValue = "discard,tap", description = "With --guest dpdk: the ports our "
            + "back-end daemon is measured with, discard (frames counted and dropped, made on demand) and/or tap. Default: ${DEFAULT-VALUE}.")
    List<String> ports;

    @Option(names = "--poll-us", paramLabel = "MICROS", defaultValue = "100", description = "With --guest dpdk: each port is also "
            + "measured with the daemon busy-polling for this long (vhost-user-backend --poll-us); 0: event-driven rows only. "
            + "Default: ${DEFAULT-VALUE}.")
    int pollMicros;

    @Option(names = "--kernel", paramLabel = "BZIMAGE", description = "With --guest linux: the Linux kernel to boot (with --initrd).")
    Path kernel;

    @Option(names = "--initrd", paramLabel = "FILE", description = "With --guest linux: the initramfs of scripts/linux-guest/build-initramfs "
            + "(its /init runs the workloads).")
    Path initrd;

    @Option(names = "--console-dir", paramLabel = "DIR", description = "With --guest linux: also write each boot's VMM log and console "
            + "to DIR/MODE.log.")
    Path consoleDir;

    @Option(names = "--json", description = "Also write the results as JSON to this file.")
    Path json;

    @Option(names = "--chart", description = "Also draw the results as a PNG chart into this file.")
    Path chart;

    /** Which guest drives the comparison: java, kvm or linux, from --guest and --vcpu; a contradiction names both flags. */
    String guestKind() {
        if (vcpu != null && !vcpu.equals("java") && !vcpu.equals("kvm")) {
            throw new IllegalArgumentException("--vcpu must be java or kvm, not '" + vcpu + "'");
        }
        if (guest == null) {
            return vcpu == null ? "java" : vcpu;
        }
        if (!List.of("java", "kvm", "linux", "dpdk").contains(guest)) {
            throw new IllegalArgumentException("--guest must be java, kvm, linux or dpdk, not '" + guest + "'");
        }
        if (guest.equals("dpdk") && vcpu != null) {
            throw new IllegalArgumentException("--guest dpdk has no vCPU (DPDK testpmd's virtio_user is the front-end): drop --vcpu " + vcpu);
        }
        boolean agrees = vcpu == null || vcpu.equals(guest) || (guest.equals("linux") && vcpu.equals("kvm"));
        if (!agrees) {
            throw new IllegalArgumentException("--guest " + guest + " and --vcpu " + vcpu + " contradict each other: give one of them"
                    + (guest.equals("linux") ? " (a Linux guest runs on KVM)" : ""));
        }
        return guest;
    }

    /** The flags --guest linux needs, checked before anything starts; each problem names its flag and value. */
    void checkLinuxFlags(boolean linux) {
        if (!linux) {
            for (var flag : new Object[][] {{"--kernel", kernel}, {"--initrd", initrd}, {"--console-dir", consoleDir}}) {
                if (flag[1] != null) {
                    throw new IllegalArgumentException(flag[0] + " " + flag[1] + " is for --guest linux: add --guest linux or drop " + flag[0]);
                }
            }
            return;
        }
        if ((kernel == null) != (initrd == null)) {
            throw new IllegalArgumentException(kernel == null ? "--initrd " + initrd + " needs --kernel (or give neither to use the lab's)"
                    : "--kernel " + kernel + " needs --initrd: the initramfs of scripts/linux-guest/build-initramfs runs the workloads");
        }
        if (kernel != null && !Files.isRegularFile(kernel)) {
            throw new IllegalArgumentException("--kernel " + kernel + ": no such file");
        }
        if (initrd != null && !Files.isRegularFile(initrd)) {
            throw new IllegalArgumentException("--initrd " + initrd + ": no such file");
        }
        if (consoleDir != null && !Files.isDirectory(consoleDir)) {
            throw new IllegalArgumentException("--console-dir " + consoleDir + ": not a directory");
        }
        if (duration != Math.rint(duration) || duration < 1 || duration > 60) {
            throw new IllegalArgumentException("--duration with --guest linux is whole seconds in 1..60 (the guest's pktgen and count "
                    + "run whole seconds), not " + duration);
        }
        if (chart != null) {
            throw new IllegalArgumentException("--chart draws the Java-guest comparison; with --guest linux the table and --json carry "
                    + "the results: drop --chart " + chart);
        }
    }

    @Override
    public Integer call() throws Exception {
        String kind = guestKind();
        checkLinuxFlags(kind.equals("linux"));
        checkDpdkFlags(kind.equals("dpdk"));
        if (!HostProbe.hasEffectiveCapability(12)) {
            throw new IllegalStateException("compare needs taps: run it as root (CAP_NET_ADMIN)");
        }
        if (duration <= 0 || duration > 60) {
            throw new IllegalArgumentException("--duration must be in (0, 60] seconds, was " + duration);
        }
        for (int s : sizes) {
            if (s < 64 || s > 1514) {
                throw new IllegalArgumentException("--sizes must be Ethernet frame sizes in 64..1514, not " + s);
            }
        }
        List<RingLayout> layouts = new ArrayList<>();
        for (String r : rings) {
            String problem = VmRules.oneOf(r, VmRules.RINGS);
            if (problem != null) {
                throw new IllegalArgumentException("--rings: " + problem);
            }
            RingLayout layout = RingLayout.valueOf(r.toUpperCase(java.util.Locale.ROOT));
            if (!layouts.contains(layout)) {
                layouts.add(layout);
            }
        }
        if (kind.equals("dpdk")) {
            return compareDpdk(layouts);
        }
        if (kind.equals("linux") && !layouts.equals(List.of(RingLayout.SPLIT))) {
            throw new IllegalArgumentException("--rings with --guest linux: the Linux comparison runs split rings (the lab test proves "
                    + "Linux on packed ones); drop --rings " + String.join(",", rings));
        }
        List<String> chosen = modes != null ? modes : kind.equals("linux") ? availableForLinux() : available();
        for (String m : chosen) {
            if (!VmRules.BACKENDS.contains(m)) {
                throw new IllegalArgumentException("--modes: unknown mode '" + m + "': use emulated-sync, emulated, vhost-net or vhost-user");
            }
        }
        if (kind.equals("linux")) {
            return compareLinux(chosen);
        }
        boolean kvm = kind.equals("kvm");
        int steps = kvm ? Comparison.KVM_CEILING_STEPS + chosen.size() * layouts.size() * Comparison.kvmStepsPerMode(sizes.size())
                : 1 + chosen.size() * layouts.size() * (1 + 2 * sizes.size());
        Progress progress = new Progress(System.err, steps);
        Report report = new Comparison(new Comparison.Plan(chosen, sizes, (long) (duration * 1e9), System.err, progress, kvm, layouts))
                .run();
        progress.finish();
        System.out.print(report.markdown());
        if (json != null) {
            Files.writeString(json, new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(report));
        }
        if (chart != null && !kvm) {
            Chart.write(report, chart);
        } else if (chart != null) {
            System.err.println("compare: --chart draws the Java-guest comparison; with --vcpu kvm the table and --json carry the results");
        }
        boolean anyMeasured = report.rows().stream().anyMatch(r -> r.error() == null)
                || report.kvmRows().stream().anyMatch(r -> r.error() == null);
        return anyMeasured ? 0 : 1;
    }

    private int compareLinux(List<String> chosen) throws Exception {
        if (!Files.exists(Path.of("/dev/kvm"))) {
            throw new IllegalStateException("--guest linux boots on KVM, and this host has no /dev/kvm");
        }
        Path k = kernel;
        Path i = initrd;
        if (k == null) {
            LinuxGuestImage.Image image = LinuxGuestImage.locate();
            k = image.kernel();
            i = image.initrd();
        }
        Progress progress = new Progress(System.err, chosen.size() * LinuxComparison.STEPS_PER_MODE);
        LinuxReport report = new LinuxComparison(new LinuxComparison.Plan(chosen, sizes, (int) duration, k, i, consoleDir, System.err,
                progress)).run();
        progress.finish();
        System.out.print(report.markdown());
        if (json != null) {
            Files.writeString(json, new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(report));
        }
        return report.rows().stream().anyMatch(r -> r.error() == null) ? 0 : 1;
    }

    /** The flags --guest dpdk takes, and only it, checked before anything starts; each problem names its flag and value. */
    void checkDpdkFlags(boolean dpdk) {
        if (!dpdk) {
            if (!ports.equals(List.of("discard", "tap")) || pollMicros != 100) {
                String flag = pollMicros != 100 ? "--poll-us " + pollMicros : "--ports " + String.join(",", ports);
                throw new IllegalArgumentException(flag + " is for --guest dpdk: add --guest dpdk or drop " + flag.split(" ")[0]);
            }
            return;
        }
        if (modes != null) {
            throw new IllegalArgumentException("--modes picks our data planes; with --guest dpdk every row is vhost-user (DPDK's "
                    + "vhost PMD, then our daemon with each of --ports): drop --modes " + String.join(",", modes));
        }
        if (duration != Math.rint(duration) || duration < 1 || duration > 60) {
            throw new IllegalArgumentException("--duration with --guest dpdk is whole seconds in 1..60 (testpmd samples once a second), "
                    + "not " + duration);
        }
        for (String p : ports) {
            if (!p.equals("discard") && !p.equals("tap")) {
                throw new IllegalArgumentException("--ports: '" + p + "' is not allowed; allowed: discard, tap");
            }
        }
        String pollProblem = VmRules.range(pollMicros, 0, VmRules.MAX_POLL_MICROS, "µs (0: event-driven rows only)");
        if (pollProblem != null) {
            throw new IllegalArgumentException("--poll-us " + pollProblem);
        }
        if (chart != null) {
            throw new IllegalArgumentException("--chart draws the Java-guest comparison; with --guest dpdk the table and --json carry "
                    + "the results: drop --chart " + chart);
        }
    }

    private int compareDpdk(List<RingLayout> layouts) throws Exception {
        for (String tool : List.of("dpdk-testpmd", "taskset", "stdbuf")) {
            if (HostProbe.onPath(tool).isEmpty()) {
                throw new IllegalStateException("--guest dpdk runs " + tool + ", which is not on PATH: apt-get install "
                        + (tool.equals("taskset") ? "util-linux" : tool.equals("stdbuf") ? "coreutils" : "dpdk"));
            }
        }
        List<String> daemon = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), "io.vmm4j.cli.Main");
        Progress progress = new Progress(System.err, DpdkComparison.steps(sizes, layouts, ports, pollMicros));
        DpdkComparison.Report report = new DpdkComparison(new DpdkComparison.Plan(sizes, (int) duration, ports, pollMicros, layouts,
                daemon, System.err, progress)).run();
        progress.finish();
        System.out.print(report.markdown());
        if (json != null) {
            Files.writeString(json, new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(report));
        }
        return report.rows().stream().anyMatch(r -> r.error() == null) ? 0 : 1;
    }

    /** The reference row first: ratios are taken against emulated. */
    private static List<String> availableForLinux() {
        List<String> m = new ArrayList<>(List.of("emulated"));
        if (VhostKernel.available()) {
            m.add("vhost-net");
        }
        m.add("vhost-user");
        return m;
    }

    private static List<String> available() {
        List<String> m = new ArrayList<>(List.of("emulated-sync", "emulated", "vhost-user"));
        if (VhostKernel.available()) {
            m.add("vhost-net");
        }
        return m;
    }
}
