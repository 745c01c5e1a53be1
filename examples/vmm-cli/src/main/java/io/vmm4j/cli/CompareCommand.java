package io.vmm4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.vmm4j.cli.compare.Chart;
import io.vmm4j.cli.compare.Comparison;
import io.vmm4j.cli.compare.Progress;
import io.vmm4j.cli.compare.Report;
import io.vmm4j.cli.config.VmRules;
import io.vmm4j.cli.doctor.HostProbe;
import io.vmm4j.vhost.kernel.VhostKernel;
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
                + "over a bare tap (the ceiling), and report packets/s, latency, CPU, syscalls and wake-ups per packet.",
        footer = {"", "Examples:",
                "  ./vmm compare                              everything, about a minute",
                "  ./vmm compare --json out.json --chart out.png",
                "  ./vmm compare --modes emulated --sizes 64 --duration 1"})
public final class CompareCommand implements Callable<Integer> {
    @Option(names = "--modes", split = ",", description = "Which data planes (default: every one available here).")
    List<String> modes;

    @Option(names = "--sizes", split = ",", defaultValue = "64,1500", description = "Frame sizes in bytes. Default: ${DEFAULT-VALUE}.")
    List<Integer> sizes;

    @Option(names = "--duration", defaultValue = "2", description = "Seconds per measurement. Default: ${DEFAULT-VALUE}.")
    double duration;

    @Option(names = "--vcpu", defaultValue = "java",
            description = "java: the Java guest drives throughput, receive and latency workloads against the raw-tap ceiling; "
                    + "kvm: the C guest on a KVM vCPU pings over each data plane, and the table shows vCPU exits and VMM "
                    + "syscalls per packet (needs /dev/kvm). Default: ${DEFAULT-VALUE}.")
    String vcpu;

    @Option(names = "--json", description = "Also write the results as JSON to this file.")
    Path json;

    @Option(names = "--chart", description = "Also draw the results as a PNG chart into this file.")
    Path chart;

    @Override
    public Integer call() throws Exception {
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
        List<String> chosen = modes != null ? modes : available();
        for (String m : chosen) {
            if (!VmRules.BACKENDS.contains(m)) {
                throw new IllegalArgumentException("unknown mode '" + m + "': use emulated-sync, emulated, vhost-net or vhost-user");
            }
        }
        if (!vcpu.equals("java") && !vcpu.equals("kvm")) {
            throw new IllegalArgumentException("--vcpu must be java or kvm, not '" + vcpu + "'");
        }
        boolean kvm = vcpu.equals("kvm");
        int steps = kvm ? chosen.size() : 1 + chosen.size() * (1 + 2 * sizes.size());
        Progress progress = new Progress(System.err, steps);
        Report report = new Comparison(new Comparison.Plan(chosen, sizes, (long) (duration * 1e9), System.err, progress, kvm)).run();
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

    private static List<String> available() {
        List<String> m = new ArrayList<>(List.of("emulated-sync", "emulated", "vhost-user"));
        if (VhostKernel.available()) {
            m.add("vhost-net");
        }
        return m;
    }
}
