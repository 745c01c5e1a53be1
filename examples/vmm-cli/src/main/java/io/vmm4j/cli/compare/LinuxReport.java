package io.vmm4j.cli.compare;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code compare --guest linux}: one row per data plane, with a stock Linux kernel on KVM as the
 * guest (its own virtio_net driver, its in-kernel pktgen as the transmitter).
 *
 * @param rows        one per data plane, in the order run
 * @param generator   what floods the guest from the host, in words
 * @param host        where this ran, in words: a note when the host is itself a virtual machine
 * @param nested      whether this host is itself a virtual machine (then KVM is nested and speeds are meaningless)
 * @param seconds     pktgen's time per frame size, and the host flood's
 * @param steadyTxFrameBytes  the pktgen frame size the TX per-packet figures were taken at (the first size)
 */
public record LinuxReport(List<Row> rows, String generator, String host, boolean nested, int seconds, int steadyTxFrameBytes) {

    /** pktgen's result for one frame size. */
    public record Pktgen(int size, long packets, long pps, long errors) {
    }

    /** The host's flood towards the guest: datagrams sent, what the guest's eth0 counted, over {@code seconds}. */
    public record Flood(long sent, long received, long dropped, double seconds) {
        public double receivedPerSecond() {
            return seconds > 0 ? received / seconds : 0;
        }

        public long lost() {
            return Math.max(0, sent - received);
        }
    }

    /** The guest's ping workload: requests, replies and the median round trip. */
    public record Ping(int sent, int received, double rttP50Ms, double rttMaxMs) {
    }

    /**
     * What a window of steady traffic cost per packet: a stretch of one phase (pktgen, or the host
     * flood) during which the console printed nothing, bounded by two samples.
     *
     * @param packets            frames the tap counted in the window (its rx from the guest, or its tx to the guest)
     * @param exitsPerPacket     KVM_RUN returns to the VMM, all vCPUs, every reason
     * @param vmmSyscallsPerPacket  read/write-class syscalls of the VMM's data-plane and control threads
     * @param vmmWakeupsPerPacket   their voluntary context switches
     * @param workerCpuNsPerPacket  CPU of who moves the frames: the VMM's I/O threads (emulated), the
     *                           vhost-PID kernel thread (vhost-net) or the back-end process (vhost-user)
     */
    public record Steady(long packets, double seconds, double exitsPerPacket, double vmmSyscallsPerPacket, double vmmWakeupsPerPacket,
                         double workerCpuNsPerPacket) {
    }

    /**
     * One data plane. Any part may be null where it was not measured; {@code error} says why.
     *
     * @param worker  who moves the frames, in words (the worker-CPU column's subject)
     */
    public record Row(String mode, String worker, List<Pktgen> pktgen, Flood flood, Ping ping, Steady steadyTx, Steady steadyRx,
                      String error) {
        public Pktgen pktgen(int size) {
            if (pktgen == null) {
                return null;
            }
            return pktgen.stream().filter(p -> p.size() == size).findFirst().orElse(null);
        }

        static Row failed(String mode, String why) {
            return new Row(mode, null, null, null, null, null, null, why);
        }
    }

    /** The row every ratio is taken against: emulated, measured. */
    private Row reference() {
        return rows.stream().filter(r -> r.mode().equals("emulated") && r.error() == null).findFirst().orElse(null);
    }

    private List<Integer> sizes() {
        List<Integer> s = new ArrayList<>();
        for (Row r : rows) {
            if (r.pktgen() != null) {
                for (Pktgen p : r.pktgen()) {
                    if (!s.contains(p.size())) {
                        s.add(p.size());
                    }
                }
            }
        }
        return s;
    }

    private static String ratio(double value, double reference) {
        return reference > 0 ? String.format(Locale.ROOT, " (x%.2f)", value / reference) : "";
    }

    private static String pair(Steady tx, Steady rx, java.util.function.ToDoubleFunction<Steady> f, String format) {
        return (tx == null ? "-" : String.format(Locale.ROOT, format, f.applyAsDouble(tx))) + " / "
                + (rx == null ? "-" : String.format(Locale.ROOT, format, f.applyAsDouble(rx)));
    }

    /** The table a person reads, with what was measured how underneath. */
    public String markdown() {
        Row ref = reference();
        List<Integer> sizes = sizes();
        StringBuilder sb = new StringBuilder();
        sb.append("| data plane (Linux guest on KVM) |");
        for (int s : sizes) {
            sb.append(" guest TX ").append(s).append(" B pps (pktgen) |");
        }
        sb.append(" host→guest flood: received/sent (lost) | received pps | ping RTT p50 ms | vCPU exits/pkt TX / RX | VMM syscalls/pkt TX / RX"
                + " | VMM wake-ups/pkt TX / RX | worker CPU µs/pkt TX / RX | worker |\n");
        sb.append("|---|").append("---:|".repeat(sizes.size())).append("---:|---:|---:|---:|---:|---:|---:|---|\n");
        List<String> failures = new ArrayList<>();
        for (Row r : rows) {
            if (r.error() != null) {
                failures.add("- " + r.mode() + ": " + r.error());
            }
            if (r.pktgen() == null && r.flood() == null && r.ping() == null && r.steadyTx() == null && r.steadyRx() == null) {
                sb.append("| ").append(r.mode()).append(" | not measured").append(" |".repeat(sizes.size() + 8)).append('\n');
                continue;
            }
            sb.append("| ").append(r.mode()).append(" |");
            for (int s : sizes) {
                Pktgen p = r.pktgen(s);
                Pktgen q = ref == null || ref == r ? null : ref.pktgen(s);
                sb.append(' ').append(p == null ? "-" : p.pps() + ratio(p.pps(), q == null ? 0 : q.pps())).append(" |");
            }
            Flood f = r.flood();
            if (f == null) {
                sb.append(" - | - |");
            } else {
                double refPps = ref == null || ref == r || ref.flood() == null ? 0 : ref.flood().receivedPerSecond();
                sb.append(String.format(Locale.ROOT, " %d/%d (%d) | %.0f%s |", f.received(), f.sent(), f.lost(), f.receivedPerSecond(),
                        ratio(f.receivedPerSecond(), refPps)));
            }
            Ping p = r.ping();
            sb.append(p == null ? " - |" : String.format(Locale.ROOT, " %.2f (%d/%d) |", p.rttP50Ms(), p.received(), p.sent()));
            sb.append(' ').append(pair(r.steadyTx(), r.steadyRx(), Steady::exitsPerPacket, "%.2f")).append(" |");
            sb.append(' ').append(pair(r.steadyTx(), r.steadyRx(), Steady::vmmSyscallsPerPacket, "%.2f")).append(" |");
            sb.append(' ').append(pair(r.steadyTx(), r.steadyRx(), Steady::vmmWakeupsPerPacket, "%.2f")).append(" |");
            sb.append(' ').append(pair(r.steadyTx(), r.steadyRx(), s -> s.workerCpuNsPerPacket() / 1e3, "%.2f")).append(" |");
            sb.append(' ').append(r.worker() == null ? "-" : r.worker()).append(" |\n");
        }
        sb.append('\n');
        if (nested) {
            sb.append("**").append(host).append(": KVM here is nested, so absolute speeds are meaningless; read the (xN) ratios against "
                    + "the emulated row, and the per-packet counts.**\n");
        } else {
            sb.append("Ratios (xN) are against the emulated row of this run.\n");
        }
        sb.append("- Guest TX: the guest's pktgen (net/core/pktgen.ko) on eth0 for ").append(seconds)
                .append(" s per frame size, its own packets/s.\n");
        sb.append("- Host→guest flood: ").append(generator).append(" for ").append(seconds)
                .append(" s; received = the guest's eth0 rx_packets (count workload), lost = sent − received.\n");
        sb.append("- Ping: the guest pings the host (busybox ping, 0.2 s apart).\n");
        sb.append("- Per packet (TX / RX): over the longest stretch of pktgen at ").append(steadyTxFrameBytes)
                .append(" B (TX) and of the flood (RX) in which the console printed nothing, between samples every ")
                .append(LinuxComparison.SAMPLE_MILLIS).append(" ms; packets = the tap's counters. "
                + "Exits: every return of KVM_RUN to the VMM; syscalls: read/write-class (/proc/PID/io syscr+syscw) of the VMM's "
                + "net-io/vmm-control threads; wake-ups: their voluntary context switches.\n");
        if (!failures.isEmpty()) {
            sb.append("\nNot measured:\n").append(String.join("\n", failures)).append('\n');
        }
        return sb.toString();
    }
}
