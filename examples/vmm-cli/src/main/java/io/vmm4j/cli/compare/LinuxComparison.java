package io.vmm4j.cli.compare;

import com.fasterxml.jackson.databind.JsonNode;
import io.vmm4j.cli.vm.DataPlane;
import io.vmm4j.cli.vm.RunSummary;
import io.vmm4j.cli.vm.ToyVm;
import io.vmm4j.cli.vm.VmOptions;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.DatagramChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.ToLongFunction;

/**
 * {@code compare --guest linux}: boots a stock Linux kernel on KVM once per data plane, with the
 * project's initramfs running {@code ping,pktgen,count} (scripts/linux-guest/init), and measures
 * per data plane: the guest's pktgen packets/s per frame size, a host → guest UDP flood as the
 * guest counted it, the guest's ping round trips, and over windows of steady traffic the vCPU
 * exits, the VMM's syscalls and wake-ups and the data-plane worker's CPU per packet.
 */
public final class LinuxComparison {
    /** How often the sampler reads exits, /proc and the tap's counters. */
    static final int SAMPLE_MILLIS = 200;
    /** 18 bytes of UDP payload: 64-byte Ethernet frames (14 + 20 + 8 + 18 + 4 bytes of padding to 60 without the CRC). */
    static final int FLOOD_PAYLOAD = 18;
    static final int FLOOD_PORT = 9; // discard: the guest listens on nothing, its eth0 counts the frames all the same
    /** Datagrams the flood keeps between the host's socket and the data plane (the tap's tx counters). */
    static final int FLOOD_WINDOW = 256;
    static final int PINGS = 10;
    static final String GENERATOR = "UDP datagrams from a host DatagramChannel (" + FLOOD_PAYLOAD + "-byte payload, 64-byte frames, "
            + "to port " + FLOOD_PORT + "), at most " + FLOOD_WINDOW + " in flight towards the data plane (the tap's tx counters)";

    // cue lines of scripts/linux-guest/init
    static final String PING_START = "vmm4j-guest: workload ping";
    static final String PKTGEN_START = "vmm4j-guest: workload pktgen";
    /** pktgen's line after each size; the first one ends the first size's run (the TX steady window's phase). */
    static final String PKTGEN_SIZE_DONE = "vmm4j-guest: pktgen ";
    static final String PKTGEN_RESULT = "vmm4j-result: {\"workload\":\"pktgen\"";
    static final String COUNT_READY = "vmm4j-guest: count: ready";
    static final String INIT_STARTED = "vmm4j-guest: init started";
    /** Nested KVM under TCG reaches /init in about 20 s; a KVM that cannot boot the kernel never does. */
    static final int BOOT_SECONDS = 150;

    /**
     * What to run.
     *
     * @param seconds     pktgen's time per frame size, and the host flood's (whole seconds: the guest's sleep takes those)
     * @param consoleDir  where each boot's VMM log and console go as MODE.log, or null
     */
    public record Plan(List<String> modes, List<Integer> sizes, int seconds, Path kernel, Path initrd, Path consoleDir, PrintStream log,
                       Progress progress) {
    }

    /** Steps {@link Progress} counts per mode: boot, ping, pktgen, flood. */
    public static final int STEPS_PER_MODE = 4;

    private final Plan plan;
    private final int subnet = ThreadLocalRandom.current().nextInt(10, 250);

    public LinuxComparison(Plan plan) {
        this.plan = plan;
    }

    private String hostAddress() {
        return "10.204." + subnet + ".1";
    }

    private String guestAddress() {
        return "10.204." + subnet + ".15";
    }

    public LinuxReport run() {
        if (Files.isDirectory(Path.of("/sys/module/kvm_pvm"))) {
            plan.log().println("compare: this host's KVM is kvm_pvm, which boots only PVM-built kernels: a stock kernel hangs, and each "
                    + "mode gives up after " + BOOT_SECONDS + " s (the lab VM's nested KVM boots it: see README)");
        }
        List<LinuxReport.Row> rows = new ArrayList<>();
        for (String mode : plan.modes()) {
            try {
                rows.add(measure(mode));
            } catch (Exception e) { // a VmException too: its message names the flag
                plan.log().println("\ncompare: " + mode + " with the Linux guest failed: " + e.getMessage());
                if (System.getenv("VMM4J_DEBUG") != null) {
                    e.printStackTrace(plan.log());
                }
                rows.add(LinuxReport.Row.failed(mode, String.valueOf(e.getMessage())));
            }
        }
        String cpu = cpuModel();
        boolean nested = isVirtualMachine();
        String host = nested ? "This host is itself a virtual machine (CPU \"" + cpu + "\")" : "This host (CPU \"" + cpu + "\")";
        return new LinuxReport(rows, GENERATOR, host, nested, plan.seconds(), plan.sizes().getFirst());
    }

    /** The kernel command line's workloads: ping, then pktgen per size, then count while the host floods. */
    String append() {
        StringBuilder sizes = new StringBuilder();
        for (int s : plan.sizes()) {
            sizes.append(sizes.isEmpty() ? "" : ",").append(s);
        }
        // quiet: boot messages are UART exits, slow under nested KVM; count outlasts the host's flood (it starts on the cue)
        return VmOptions.DEFAULT_APPEND + " quiet vmm4j.workload=ping,pktgen,count vmm4j.ping_count=" + PINGS + " vmm4j.pktgen_seconds="
                + plan.seconds() + " vmm4j.sizes=" + sizes + " vmm4j.count_seconds=" + (plan.seconds() + 3);
    }

    /** One sample of everything a steady window divides by packets. */
    record Sample(long nanos, long consoleBytes, long exits, CpuSample vmm, CpuSample worker, long tapRx, long tapTx) {
    }

    private LinuxReport.Row measure(String mode) throws Exception {
        DataPlane plane = DataPlane.of(mode);
        boolean vhostUser = plane == DataPlane.VHOST_USER;
        plan.progress().step(mode + ": boot");
        try (OutputStream file = plan.consoleDir() == null ? null : Files.newOutputStream(plan.consoleDir().resolve(mode + ".log"));
             Comparison.Daemon daemon = vhostUser ? Comparison.Daemon.start(hostAddress() + "/24", plan.log()) : null) {
            ConsoleCues cues = new ConsoleCues(file);
            PrintStream vmLog = new PrintStream(cues, true, StandardCharsets.UTF_8);
            VmOptions options = VmOptions.builder().dataPlane(plane).port(vhostUser ? VmOptions.Port.AUTO : VmOptions.Port.TAP)
                    .tap(vhostUser ? null : "vcl" + Integer.toHexString(ThreadLocalRandom.current().nextInt(0x1000, 0xFFFF)))
                    .guestIp(guestAddress()).hostIp(hostAddress() + "/24").count(0).memoryMiB(256)
                    .socket(daemon == null ? null : daemon.socket().toString()).vcpu(VmOptions.Vcpu.KVM).kernel(plan.kernel())
                    .initrd(plan.initrd()).append(append()).build();
            try (ToyVm vm = new ToyVm(options, vmLog)) {
                return run(mode, plane, vm, cues, daemon != null ? daemon.tap() : vm.portName(), daemon);
            }
        }
    }

    private LinuxReport.Row run(String mode, DataPlane plane, ToyVm vm, ConsoleCues cues, String tap, Comparison.Daemon daemon)
            throws InterruptedException {
        ConcurrentHashMap<String, Long> at = new ConcurrentHashMap<>();
        LinuxReport.Flood[] flood = new LinuxReport.Flood[1];
        String[] floodError = new String[1];
        List<Thread> helpers = new CopyOnWriteArrayList<>();
        cues.once(PING_START, l -> plan.progress().step(mode + ": ping"));
        cues.once(PKTGEN_START, l -> {
            at.put("pktgen", System.nanoTime());
            plan.progress().step(mode + ": pktgen " + plan.sizes());
        });
        cues.once(PKTGEN_SIZE_DONE, l -> at.put("pktgenFirstSize", System.nanoTime()));
        cues.once(PKTGEN_RESULT, l -> at.put("pktgenEnd", System.nanoTime()));
        cues.once(COUNT_READY, l -> {
            plan.progress().step(mode + ": host flood");
            helpers.add(Thread.ofPlatform().name("host-flood").start(() -> {
                try {
                    flood[0] = flood(tap, at);
                } catch (Exception e) {
                    floodError[0] = "the host flood failed: " + e.getMessage();
                }
            }));
        });

        List<Sample> samples = new CopyOnWriteArrayList<>();
        long pid = ProcessHandle.current().pid();
        List<Integer> vhostWorkers = new CopyOnWriteArrayList<>();
        Thread sampler = Thread.ofPlatform().name("compare-sampler").daemon().start(() -> {
            while (!Thread.currentThread().isInterrupted()) {
                if (plane == DataPlane.VHOST_NET && vhostWorkers.isEmpty()) {
                    vhostWorkers.addAll(CpuSample.vhostWorkersOf(pid)); // vhost-PID exists from VHOST_SET_OWNER on
                }
                try {
                    samples.add(sample(vm, plane, tap, daemon, vhostWorkers));
                } catch (IOException | RuntimeException e) {
                    // the tap went away at the end of the run: nothing more to sample
                }
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(SAMPLE_MILLIS));
            }
        });
        cues.once(INIT_STARTED, l -> at.put("init", System.nanoTime()));
        // no guest runs forever here: /init within BOOT_SECONDS (a KVM that cannot boot stock kernels hangs silently),
        // then ping, pktgen per size and the flood
        long limitSeconds = BOOT_SECONDS + 180 + (long) plan.seconds() * (plan.sizes().size() + 1) + PINGS;
        Thread watchdog = Thread.ofPlatform().name("compare-watchdog").daemon().start(() -> {
            try {
                Thread.sleep(TimeUnit.SECONDS.toMillis(BOOT_SECONDS));
                if (!at.containsKey("init")) {
                    at.put("noInit", System.nanoTime());
                    vm.requestStop();
                    return;
                }
                Thread.sleep(TimeUnit.SECONDS.toMillis(limitSeconds - BOOT_SECONDS));
                at.put("timedOut", System.nanoTime());
                vm.requestStop();
            } catch (InterruptedException e) {
                // the run ended first
            }
        });
        RunSummary summary;
        try {
            summary = vm.run();
        } finally {
            watchdog.interrupt();
            sampler.interrupt();
            sampler.join(5000);
            for (Thread t : helpers) {
                t.join(TimeUnit.SECONDS.toMillis(plan.seconds() + 10L));
            }
        }

        List<String> errors = new ArrayList<>();
        if (at.containsKey("noInit")) {
            errors.add("the kernel did not reach the initramfs's /init within " + BOOT_SECONDS + " s; stopped"
                    + (Files.isDirectory(Path.of("/sys/module/kvm_pvm")) ? " (this host's KVM is kvm_pvm, which boots only PVM-built "
                    + "kernels: run compare --guest linux in the lab VM, with nested KVM)" : ""));
            return LinuxReport.Row.failed(mode, String.join("; ", errors));
        }
        if (at.containsKey("timedOut")) {
            errors.add("the guest did not finish within " + limitSeconds + " s; stopped");
        }
        if (summary.error() != null) {
            errors.add(summary.error());
        }
        if (floodError[0] != null) {
            errors.add(floodError[0]);
        }
        LinuxReport.Ping ping = ping(cues.result("ping"), errors);
        List<LinuxReport.Pktgen> pktgen = pktgen(cues.result("pktgen"), errors);
        JsonNode count = cues.result("count");
        LinuxReport.Flood f = flood[0];
        if (count == null || count.has("error")) {
            errors.add(count == null ? "no count result from the guest" : "count: " + count.path("error").asText());
            f = null;
        } else if (f != null) {
            f = new LinuxReport.Flood(f.sent(), count.path("rx_packets").asLong(), f.dropped(), f.seconds());
        }
        // TX per packet at one frame size, the first, so that the rows compare like with like
        long pktgenFrom = at.getOrDefault("pktgen", Long.MAX_VALUE);
        long pktgenTo = at.getOrDefault("pktgenFirstSize", Long.MIN_VALUE);
        LinuxReport.Steady tx = steady(samples, pktgenFrom, pktgenTo, Sample::tapRx);
        LinuxReport.Steady rx = steady(samples, at.getOrDefault("flood", Long.MAX_VALUE), at.getOrDefault("floodEnd", Long.MIN_VALUE),
                Sample::tapTx);
        if (!errors.isEmpty()) {
            errors.add("last console lines: " + String.join(" | ", cues.tail().subList(Math.max(0, cues.tail().size() - 8),
                    cues.tail().size())));
        }
        return new LinuxReport.Row(mode, worker(plane), pktgen, f, ping, tx, rx, errors.isEmpty() ? null : String.join("; ", errors));
    }

    private static String worker(DataPlane plane) {
        return switch (plane) {
            case EMULATED -> "the VMM's net-io threads";
            case EMULATED_SYNC -> "the vCPU threads (the guest's own CPU included)";
            case VHOST_NET -> "the kernel's vhost-PID thread";
            case VHOST_USER -> "the vhost-user back-end process";
        };
    }

    private static Sample sample(ToyVm vm, DataPlane plane, String tap, Comparison.Daemon daemon,
                                 List<Integer> vhostWorkers) throws IOException {
        long bytes = vm.consoleBytesSoFar(); // the UART's count: the log gets the console a line at a time
        long now = System.nanoTime();
        long exits = vm.vcpuExitsSoFar().total();
        CpuSample vmm = CpuSample.ofOwnTasks(Comparison.Snapshot::isVmmThread);
        CpuSample worker = switch (plane) {
            case EMULATED -> vmm;
            case EMULATED_SYNC -> CpuSample.ofOwnTasks(n -> n.startsWith("vcpu-"));
            case VHOST_NET -> CpuSample.ofTasks(vhostWorkers);
            case VHOST_USER -> CpuSample.ofProcess(daemon.process().pid());
        };
        return new Sample(now, bytes, exits, vmm, worker, Comparison.tapCounter(tap, "rx_packets"), Comparison.tapCounter(tap, "tx_packets"));
    }

    /**
     * The steady window of a phase [{@code from}, {@code to}]: of the runs of consecutive samples
     * in it with no console byte between them, the one that saw the most packets (by
     * {@code packets}); null when none saw any. Console output is UART exits, so a quiet stretch
     * is what the data plane alone costs.
     */
    static LinuxReport.Steady steady(List<Sample> samples, long from, long to, ToLongFunction<Sample> packets) {
        List<Sample> in = samples.stream().filter(s -> s.nanos() >= from && s.nanos() <= to).toList();
        Sample bestFirst = null;
        Sample bestLast = null;
        long best = 0;
        int start = 0;
        for (int i = 1; i <= in.size(); i++) {
            if (i == in.size() || in.get(i).consoleBytes() != in.get(start).consoleBytes()) {
                Sample first = in.get(start);
                Sample last = in.get(i - 1);
                long moved = packets.applyAsLong(last) - packets.applyAsLong(first);
                if (moved > best) {
                    best = moved;
                    bestFirst = first;
                    bestLast = last;
                }
                start = i;
            }
        }
        if (bestFirst == null) {
            return null;
        }
        double n = best;
        return new LinuxReport.Steady(best, (bestLast.nanos() - bestFirst.nanos()) / 1e9, (bestLast.exits() - bestFirst.exits()) / n,
                (bestLast.vmm().syscalls() - bestFirst.vmm().syscalls()) / n,
                (bestLast.vmm().voluntarySwitches() - bestFirst.vmm().voluntarySwitches()) / n,
                (bestLast.worker().cpuNanos() - bestFirst.worker().cpuNanos()) / n);
    }

    /**
     * The host's side of the count workload: {@value #FLOOD_PAYLOAD}-byte UDP datagrams at the
     * guest for the plan's seconds, at most {@value #FLOOD_WINDOW} ahead of what the tap handed to
     * the data plane (tx_packets) or dropped (tx_dropped); in-flight frames the tap never accounts
     * for (the ones queued behind ARP) are written off after 20 ms without progress.
     */
    private LinuxReport.Flood flood(String tap, ConcurrentHashMap<String, Long> at) throws IOException, InterruptedException {
        InetSocketAddress to = new InetSocketAddress(guestAddress(), FLOOD_PORT);
        try (DatagramChannel ch = DatagramChannel.open()) {
            ch.bind(new InetSocketAddress(hostAddress(), 0)); // unconnected: the guest's ICMP port unreachable raises nothing here
            ByteBuffer data = ByteBuffer.allocateDirect(FLOOD_PAYLOAD);
            long sent = ch.send(data, to) > 0 ? 1 : 0;
            Thread.sleep(300); // the host learns the guest's MAC (ARP) before the clock starts
            long dropped0 = Comparison.tapCounter(tap, "tx_dropped");
            long base = delivered(tap);
            long sentBase = sent;
            long forgiven = 0;
            long lastDelivered = 0;
            long stalledSince = System.nanoTime();
            long start = System.nanoTime();
            at.put("flood", start);
            long deadline = start + TimeUnit.SECONDS.toNanos(plan.seconds());
            long now = start;
            while (now < deadline) {
                long d = delivered(tap) - base;
                long inFlight = sent - sentBase - forgiven - d;
                now = System.nanoTime();
                if (inFlight >= FLOOD_WINDOW) {
                    if (d != lastDelivered) {
                        lastDelivered = d;
                        stalledSince = now;
                    } else if (now - stalledSince > TimeUnit.MILLISECONDS.toNanos(20)) {
                        forgiven += inFlight;
                        stalledSince = now;
                    }
                    LockSupport.parkNanos(50_000);
                    continue;
                }
                for (int i = 0; i < 32; i++) {
                    data.clear();
                    try {
                        if (ch.send(data, to) > 0) {
                            sent++;
                        }
                    } catch (IOException e) {
                        LockSupport.parkNanos(100_000); // ENOBUFS and friends: the frame was not sent
                    }
                }
            }
            long end = System.nanoTime();
            at.put("floodEnd", end);
            Thread.sleep(200); // the last frames cross
            return new LinuxReport.Flood(sent, 0, Comparison.tapCounter(tap, "tx_dropped") - dropped0, (end - start) / 1e9);
        }
    }

    private static long delivered(String tap) throws IOException {
        return Comparison.tapCounter(tap, "tx_packets") + Comparison.tapCounter(tap, "tx_dropped");
    }

    /** The guest's ping result line: counts and the median round trip; null (and an error) when missing. */
    static LinuxReport.Ping ping(JsonNode r, List<String> errors) {
        if (r == null || r.has("error")) {
            errors.add(r == null ? "no ping result from the guest" : "ping: " + r.path("error").asText());
            return null;
        }
        double[] rtts = new double[r.path("rtt_ms").size()];
        for (int i = 0; i < rtts.length; i++) {
            rtts[i] = r.path("rtt_ms").get(i).asDouble();
        }
        Arrays.sort(rtts);
        double p50 = rtts.length == 0 ? Double.NaN : rtts[(rtts.length - 1) / 2];
        double max = rtts.length == 0 ? Double.NaN : rtts[rtts.length - 1];
        return new LinuxReport.Ping(r.path("sent").asInt(), r.path("received").asInt(), p50, max);
    }

    /** The guest's pktgen result line: one entry per size; a size pktgen failed is left out and named in the errors. */
    static List<LinuxReport.Pktgen> pktgen(JsonNode r, List<String> errors) {
        if (r == null || r.has("error")) {
            errors.add(r == null ? "no pktgen result from the guest" : "pktgen: " + r.path("error").asText());
            return null;
        }
        List<LinuxReport.Pktgen> runs = new ArrayList<>();
        for (JsonNode run : r.path("runs")) {
            if (run.has("error")) {
                errors.add("pktgen " + run.path("size").asInt() + " B: " + run.path("error").asText());
                continue;
            }
            runs.add(new LinuxReport.Pktgen(run.path("size").asInt(), run.path("packets").asLong(), run.path("pps").asLong(),
                    run.path("errors").asLong()));
        }
        return runs;
    }

    private static String cpuModel() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (l.startsWith("model name")) {
                    return l.substring(l.indexOf(':') + 1).strip();
                }
            }
        } catch (IOException e) {
            // unknown
        }
        return "unknown";
    }

    /** The CPUID hypervisor bit, as /proc/cpuinfo's flags show it. */
    private static boolean isVirtualMachine() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (l.startsWith("flags") && (" " + l + " ").contains(" hypervisor ")) {
                    return true;
                }
            }
        } catch (IOException e) {
            // unknown: say nothing
        }
        return false;
    }
}
