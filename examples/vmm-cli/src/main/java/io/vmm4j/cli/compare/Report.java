package io.vmm4j.cli.compare;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The comparison's results: the raw-tap ceiling and one row per mode, direction and frame size. With the C guest on KVM
 * ({@code kvmRows}, {@code kvmFloodRows}) the ceiling is the C one (tapflood) of the same run.
 */
public record Report(Ceiling ceiling, List<Row> rows, double secondsPerMeasurement, List<KvmRow> kvmRows, List<KvmFloodRow> kvmFloodRows) {

    public Report(Ceiling ceiling, List<Row> rows, double secondsPerMeasurement) {
        this(ceiling, rows, secondsPerMeasurement, List.of(), List.of());
    }

    /**
     * One data plane under the C guest on a KVM vCPU, with its ping workload: what a packet costs
     * when kicks and interrupts can bypass the VMM entirely (KVM ioeventfd and irqfd). Per-packet
     * figures divide by the frames of the answered pings (request + reply).
     *
     * @param exitsPerPacket        vCPU exits to the VMM per packet during the guest's steady phase
     * @param vmmSyscallsPerPacket  read/write-class syscalls of the VMM's data-plane threads over the run (boot included)
     * @param vmmCpuNsPerPacket     CPU of those threads over the run (boot included)
     */
    public record KvmRow(String mode, int pings, int replies, double rttP50Micros, double rttP99Micros, double exitsPerPacket,
                         double vmmSyscallsPerPacket, double vmmWakeupsPerPacket, double vmmCpuNsPerPacket,
                         double daemonCpuNsPerPacket, String error) {
    }

    /**
     * One flood of the C guest on a KVM vCPU over a data plane. tx: the guest sends as fast as its TX ring allows and the tap
     * (the daemon's, with vhost-user) counts what arrives; rx: the C sender floods the guest's UDP port through the tap
     * and the guest counts what reaches it. Per-packet figures divide by packets received.
     *
     * @param sent                tx: frames the guest sent (each one handed back used by the data plane); rx: datagrams the host sent
     * @param received            tx: of those, frames on the tap; rx: frames the guest counted
     * @param seconds             tx: the guest's flood, first frame to last buffer back (its TSC); rx: the host sender's
     * @param ceilingRatio        packets/s over the same run's C tap ceiling for this direction and frame size (null without one)
     * @param tapDrops            tx: the tap's rx_dropped; rx: its tx_dropped (its queue towards the data plane overflowed)
     * @param kicksPerPacket      notify writes of the guest
     * @param interruptsPerPacket interrupts the guest took
     * @param exitsPerPacket      vCPU exits to the VMM in the guest's steady phase
     */
    public record KvmFloodRow(String mode, String direction, int frameBytes, long sent, long received, double seconds,
                              double packetsPerSecond, Double ceilingRatio, long tapDrops, double kicksPerPacket,
                              double interruptsPerPacket, double exitsPerPacket, String error) {
        static KvmFloodRow of(String mode, String direction, int frame, long sent, long received, double seconds, Ceiling ceiling,
                              long tapDrops, long kicks, long interrupts, double exitsPerPacket) {
            double pps = seconds > 0 ? received / seconds : 0;
            double per = Math.max(received, 1);
            double ceilingPps = ceiling.pps(direction, frame);
            Double ratio = ceilingPps > 0 ? pps / ceilingPps : null; // NaN (no ceiling row) is not > 0
            return new KvmFloodRow(mode, direction, frame, sent, received, seconds, pps, ratio, tapDrops, kicks / per, interrupts / per,
                    exitsPerPacket, null);
        }

        static KvmFloodRow failed(String mode, String direction, int frame, String why) {
            return new KvmFloodRow(mode, direction, frame, 0, 0, 0, 0, null, 0, 0, 0, 0, why);
        }

        public long lost() {
            return sent - received;
        }
    }

    /** What a bare tap does with the same frames. */
    public record Ceiling(List<CeilingRow> rows) {
        public double pps(String direction, int frame) {
            return rows.stream().filter(r -> r.direction().equals(direction) && r.frameBytes() == frame)
                    .mapToDouble(CeilingRow::packetsPerSecond).findFirst().orElse(Double.NaN);
        }
    }

    public record CeilingRow(String direction, int frameBytes, long sent, long received, double packetsPerSecond) {
    }

    /**
     * One measurement. Per-packet figures divide by packets received.
     *
     * @param vmmCpuNsPerPacket       the VMM's own threads (I/O loops, irqfd router, control), not the vCPU
     * @param vcpuCpuNsPerPacket      the vCPU thread (the Java guest and, in emulated-sync, the device work)
     * @param daemonCpuNsPerPacket    the vhost-user backend process
     * @param kernelCpuNsPerPacket    vhost-N kernel workers
     * @param vmmSyscallsPerPacket    read/write-class syscalls of the VMM's own data-plane and control threads
 * @param irqfdSyscallsPerPacket  of the in-process irqfd router (eventfd reads that turn call signals into MSI-X
 *                                messages; KVM's irqfd does this in the kernel)
     * @param vcpuSyscallsPerPacket   of the vCPU thread (its eventfd writes stand in for KVM ioeventfd; in emulated-sync
 *                                it also does the device's I/O)
 * @param heapBytesPerPacket      allocated by the VMM's own threads (the Java guest's allocations are not counted)
     */
    public record Row(String mode, String direction, int frameBytes, long sent, long received, double packetsPerSecond,
                      double gbitPerSecond, double rttP50Micros, double rttP99Micros, double vmmCpuNsPerPacket,
                      double vcpuCpuNsPerPacket, double daemonCpuNsPerPacket, double kernelCpuNsPerPacket,
                      double vmmSyscallsPerPacket, double irqfdSyscallsPerPacket, double vcpuSyscallsPerPacket, double vmmWakeupsPerPacket,
                      double heapBytesPerPacket, String error) {
        static Row of(String mode, String direction, int frame, long sent, long received, long nanos,
                      Comparison.Snapshot d, long[] sortedRtts) {
            double per = Math.max(received, 1);
            double pps = received * 1e9 / nanos;
            return new Row(mode, direction, frame, sent, received, pps, pps * frame * 8 / 1e9,
                    percentile(sortedRtts, 0.50) / 1e3, percentile(sortedRtts, 0.99) / 1e3,
                    (d.vmmThreads().cpuNanos() + d.irqfd().cpuNanos()) / per, d.vcpu().cpuNanos() / per, d.daemon().cpuNanos() / per,
                    d.kernelWorkers().cpuNanos() / per, d.vmmThreads().syscalls() / per, d.irqfd().syscalls() / per,
                    d.vcpu().syscalls() / per,
                    d.vmmThreads().voluntarySwitches() / per, d.vmmThreads().allocatedBytes() / per,
                    null);
        }

        static Row failed(String mode, String why) {
            return new Row(mode, "-", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, why);
        }

        public long lost() {
            return sent - received;
        }
    }

    static double percentile(long[] sorted, double p) {
        if (sorted.length == 0) {
            return Double.NaN;
        }
        int i = (int) Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
        return sorted[i];
    }

    /** The C guest's floods, each direction after the C tap ceiling it is measured against. */
    private String kvmFloodTable() {
        StringBuilder sb = new StringBuilder();
        sb.append("| mode (KVM vCPU, flood) | dir | frame | sent | received | lost (tap drops) | Mpps | x C tap ceiling | kicks/pkt | interrupts/pkt | vCPU exits/pkt |\n");
        sb.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        List<String> failures = new ArrayList<>();
        for (String dir : List.of("tx", "rx")) {
            for (CeilingRow c : ceiling.rows()) {
                if (c.direction().equals(dir)) {
                    sb.append(String.format(Locale.ROOT, "| C raw tap (ceiling) | %s | %d | %d | %d | %d | %.3f | 1.00 | - | - | - |%n", dir,
                            c.frameBytes(), c.sent(), c.received(), c.sent() - c.received(), c.packetsPerSecond() / 1e6));
                }
            }
            for (KvmFloodRow k : kvmFloodRows) {
                if (!k.direction().equals(dir)) {
                    continue;
                }
                if (k.error() != null) {
                    failures.add("- " + k.mode() + " " + k.direction() + " " + k.frameBytes() + " B: " + k.error());
                    continue;
                }
                sb.append(String.format(Locale.ROOT, "| %s | %s | %d | %d | %d | %d (%d) | %.3f | %s | %.3f | %.3f | %.3f |%n", k.mode(), dir,
                        k.frameBytes(), k.sent(), k.received(), k.lost(), k.tapDrops(), k.packetsPerSecond() / 1e6,
                        k.ceilingRatio() == null ? "-" : String.format(Locale.ROOT, "%.2f", k.ceilingRatio()), k.kicksPerPacket(),
                        k.interruptsPerPacket(), k.exitsPerPacket()));
            }
        }
        if (!failures.isEmpty()) {
            sb.append("\nNot measured:\n").append(String.join("\n", failures)).append('\n');
        }
        return sb.toString();
    }

    /** The table a person reads: one line per measurement, ratios to the same run's raw-tap ceiling. */
    public String markdown() {
        StringBuilder sb = new StringBuilder();
        if (!kvmRows.isEmpty()) {
            sb.append("| mode (KVM vCPU, ping workload) | replies | RTT p50/p99 µs | vCPU exits/pkt (steady) | VMM I/O syscalls/pkt | VMM wake-ups/pkt | CPU µs/pkt VMM / daemon |\n");
            sb.append("|---|---:|---:|---:|---:|---:|---:|\n");
            for (KvmRow k : kvmRows) {
                if (k.error() != null) {
                    sb.append("| ").append(k.mode()).append(" | not measured: ").append(k.error()).append(" | | | | | |\n");
                    continue;
                }
                sb.append(String.format(Locale.ROOT, "| %s | %d/%d | %.0f / %.0f | %.3f | %.2f | %.2f | %.2f / %.2f |%n", k.mode(),
                        k.replies(), k.pings(), k.rttP50Micros(), k.rttP99Micros(), k.exitsPerPacket(), k.vmmSyscallsPerPacket(),
                        k.vmmWakeupsPerPacket(), k.vmmCpuNsPerPacket() / 1e3, k.daemonCpuNsPerPacket() / 1e3));
            }
            if (!kvmFloodRows.isEmpty()) {
                sb.append('\n').append(kvmFloodTable());
            }
            if (rows.isEmpty()) {
                return sb.toString();
            }
            sb.append('\n');
        }
        sb.append(String.format(Locale.ROOT,
                "| mode | dir | frame | kpps | x ceiling | Gbit/s | lost | RTT p50/p99 µs | CPU µs/pkt (= s/Mpkt) VMM / vCPU / daemon / vhost | syscalls/pkt VMM I/O / irqfd / vCPU | VMM wake-ups/pkt | VMM heap B/pkt |%n"));
        sb.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (String dir : List.of("tx", "rx")) {
            for (CeilingRow c : ceiling.rows()) {
                if (c.direction().equals(dir)) {
                    sb.append(String.format(Locale.ROOT, "| raw tap (ceiling) | %s | %d | %.0f | 1.00 | %.2f | %d | - | - | - | - | - |%n",
                            dir, c.frameBytes(), c.packetsPerSecond() / 1e3, c.packetsPerSecond() * c.frameBytes() * 8 / 1e9,
                            c.sent() - c.received()));
                }
            }
            for (Row r : rows) {
                if (r.error() != null) {
                    continue;
                }
                if (!r.direction().equals(dir)) {
                    continue;
                }
                double ratio = r.packetsPerSecond() / ceiling.pps(dir, r.frameBytes());
                sb.append(String.format(Locale.ROOT,
                        "| %s | %s | %d | %.0f | %.2f | %.2f | %d | %.0f / %.0f | %.2f / %.2f / %.2f / %.2f | %.2f / %.2f / %.2f | %.2f | %.1f |%n",
                        r.mode(), dir, r.frameBytes(), r.packetsPerSecond() / 1e3, ratio, r.gbitPerSecond(), r.lost(),
                        r.rttP50Micros(), r.rttP99Micros(), r.vmmCpuNsPerPacket() / 1e3, r.vcpuCpuNsPerPacket() / 1e3,
                        r.daemonCpuNsPerPacket() / 1e3, r.kernelCpuNsPerPacket() / 1e3, r.vmmSyscallsPerPacket(),
                        r.irqfdSyscallsPerPacket(), r.vcpuSyscallsPerPacket(), r.vmmWakeupsPerPacket(), r.heapBytesPerPacket()));
            }
        }
        List<String> failures = new ArrayList<>();
        for (Row r : rows) {
            if (r.error() != null) {
                failures.add("- " + r.mode() + ": " + r.error());
            }
        }
        if (!failures.isEmpty()) {
            sb.append("\nNot measured:\n").append(String.join("\n", failures)).append('\n');
        }
        return sb.toString();
    }
}
