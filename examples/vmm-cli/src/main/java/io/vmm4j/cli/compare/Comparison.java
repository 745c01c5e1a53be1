package io.vmm4j.cli.compare;

import io.vmm4j.cli.vm.DataPlane;
import io.vmm4j.cli.vm.FloodWorkload;
import io.vmm4j.cli.vm.RunSummary;
import io.vmm4j.cli.vm.ToyVm;
import io.vmm4j.cli.vm.VmOptions;
import io.vmm4j.cli.vm.Workload;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.guest.TapFlood;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.virtio.net.VirtioNetHeader;
import io.vmm4j.virtio.queue.RingLayout;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.DatagramChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Runs the same guest workload over each data plane and measures it, with the raw tap as the
 * ceiling: transmit and receive packets/s at two frame sizes, round-trip latency, and what each
 * packet cost — CPU per process and kernel worker, syscalls and context switches on the VMM's own
 * threads, heap bytes. Every number comes with the packets sent and received; loss is reported.
 */
public final class Comparison {
    /** In-flight datagrams the host keeps towards the guest, so the receive test measures, not drops. */
    private static final int RX_WINDOW = 256;
    private static final int LATENCY_PINGS = 200;

    /**
     * What to compare and for how long; {@code kvm}: the C guest on a KVM vCPU instead of the Java
     * guest; {@code rings}: the ring layouts the NIC offers, each measured in turn ({@code --rings}),
     * rows labelled with theirs unless split alone is measured.
     */
    public record Plan(List<String> modes, List<Integer> frameSizes, long measureNanos, PrintStream log, Progress progress, boolean kvm,
                       List<RingLayout> rings) {
        public Plan(List<String> modes, List<Integer> frameSizes, long measureNanos, PrintStream log, Progress progress, boolean kvm) {
            this(modes, frameSizes, measureNanos, log, progress, kvm, List.of(RingLayout.SPLIT));
        }

        public Plan(List<String> modes, List<Integer> frameSizes, long measureNanos, PrintStream log, Progress progress) {
            this(modes, frameSizes, measureNanos, log, progress, false);
        }

        /** A row's mode label: the mode, with the ring layout unless split rings alone are measured ("emulated (packed)"). */
        String label(String mode, RingLayout ring) {
            return rings.equals(List.of(RingLayout.SPLIT)) ? mode : mode + " (" + ring.label() + ")";
        }
    }

    /** Pings the KVM guest sends per mode, and how often. */
    private static final int KVM_PINGS = 200;
    private static final int KVM_PING_INTERVAL_MS = 5;

    private final Plan plan;
    private final int subnet = ThreadLocalRandom.current().nextInt(10, 250);

    public Comparison(Plan plan) {
        this.plan = plan;
    }

    private String hostAddress() {
        return "10.203." + subnet + ".1";
    }

    private String guestAddress() {
        return "10.203." + subnet + ".15";
    }

    /** Runs every mode and the ceiling; never throws for a mode that fails: its row says why. */
    public Report run() {
        if (plan.kvm()) {
            Report.Ceiling ceiling = measureTapCeiling();
            List<Report.KvmRow> kvmRows = new ArrayList<>();
            List<Report.KvmFloodRow> floodRows = new ArrayList<>();
            for (RingLayout ring : plan.rings()) {
                for (String mode : plan.modes()) {
                    measureKvm(mode, ring, ceiling, kvmRows, floodRows);
                }
            }
            return new Report(ceiling, List.of(), plan.measureNanos() / 1e9, kvmRows, floodRows);
        }
        List<Report.Row> rows = new ArrayList<>();
        Report.Ceiling ceiling = measureCeiling();
        for (RingLayout ring : plan.rings()) {
            for (String mode : plan.modes()) {
                String label = plan.label(mode, ring);
                try {
                    rows.addAll(measureMode(mode, ring, label));
                } catch (Exception e) {
                    plan.log().println("compare: " + label + " failed: " + e.getMessage());
                    if (System.getenv("VMM4J_DEBUG") != null) {
                        e.printStackTrace(plan.log());
                    }
                    rows.add(Report.Row.failed(label, e.getMessage()));
                }
            }
        }
        return new Report(ceiling, rows, plan.measureNanos() / 1e9);
    }

    private static int payloadFor(int frameSize) {
        return frameSize - 14 - 20 - 8; // Ethernet, IPv4 and UDP headers
    }

    private VmOptions options(String mode, String socket, RingLayout ring) {
        DataPlane plane = DataPlane.of(mode);
        boolean vhostUser = plane == DataPlane.VHOST_USER;
        return VmOptions.builder().dataPlane(plane).port(vhostUser ? VmOptions.Port.AUTO : VmOptions.Port.TAP)
                .tap(vhostUser ? null : "vcmp" + Integer.toHexString(ThreadLocalRandom.current().nextInt(0x1000, 0xFFFF)))
                .guestIp(guestAddress()).hostIp(hostAddress() + "/24").count(0).intervalMs(100).memoryMiB(256).socket(socket).ring(ring).build();
    }

    /** The vhost-user back-end daemon as its own process, on a tap of its own. */
    record Daemon(Process process, Path socket, String tap) implements AutoCloseable {
        static Daemon start(String hostCidr, PrintStream log) throws IOException, InterruptedException {
            Path dir = Files.createTempDirectory("vmm4j-vu");
            Path socket = dir.resolve("vu.sock");
            String tap = "vcvu" + Integer.toHexString(ThreadLocalRandom.current().nextInt(0x1000, 0xFFFF));
            List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), "io.vmm4j.cli.Main",
                    "vhost-user-backend", "--socket", socket.toString(), "--tap", tap, "--host-ip", hostCidr);
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve("daemon.log").toFile()).start();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!Files.exists(socket) && p.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            if (!Files.exists(socket)) {
                p.destroyForcibly();
                throw new IllegalStateException("the vhost-user back-end did not start: " + Files.readString(dir.resolve("daemon.log")));
            }
            return new Daemon(p, socket, tap);
        }

        @Override
        public void close() {
            process.destroy();
            try {
                if (!process.waitFor(5, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                }
            } catch (InterruptedException e) {
                process.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }

    private List<Report.Row> measureMode(String mode, RingLayout ring, String label) throws Exception {
        List<Report.Row> rows = new ArrayList<>();
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        try (Daemon daemon = DataPlane.of(mode) == DataPlane.VHOST_USER ? Daemon.start(hostAddress() + "/24", plan.log()) : null;
             ToyVm vm = new ToyVm(options(mode, daemon == null ? null : daemon.socket().toString(), ring), quiet);
             Workload guest = vm.workload()) {
            String tap = daemon != null ? daemon.tap() : vm.port().name();
            long pid = ProcessHandle.current().pid();
            long daemonPid = daemon != null ? daemon.process().pid() : -1;
            plan.progress().step(label + ": latency");
            long[] rtts = guest.pingRoundTrips(LATENCY_PINGS, 56);
            Arrays.sort(rtts);
            for (int frame : plan.frameSizes()) {
                plan.progress().step(label + ": transmit " + frame + " B");
                Snapshot before = Snapshot.take(pid, daemonPid);
                long tapRx = tapCounter(tap, "rx_packets");
                long sent = guest.floodUdp(plan.measureNanos(), payloadFor(frame));
                Thread.sleep(100); // let the last frames cross
                long received = tapCounter(tap, "rx_packets") - tapRx;
                Snapshot after = Snapshot.take(pid, daemonPid);
                rows.add(Report.Row.of(label, "tx", frame, sent, received, plan.measureNanos(), after.minus(before), rtts));

                plan.progress().step(label + ": receive " + frame + " B");
                before = Snapshot.take(pid, daemonPid);
                long[] counts = receive(guest, payloadFor(frame));
                after = Snapshot.take(pid, daemonPid);
                rows.add(Report.Row.of(label, "rx", frame, counts[0], counts[1], plan.measureNanos(), after.minus(before), rtts));
            }
        }
        return rows;
    }

    /** Steps of one mode and ring layout under the KVM guest: its pings, then a TX flood and an RX count per frame size. */
    public static int kvmStepsPerMode(int frameSizes) {
        return 1 + 2 * frameSizes;
    }

    /** Steps outside the modes under the KVM guest: the C tap ceiling. */
    public static final int KVM_CEILING_STEPS = 1;

    /** How much longer the guest counts than the host floods, so that the host's whole flood falls inside its window. */
    private static final int RX_COUNT_SLACK_MS = 500;

    /**
     * The C guest on a KVM vCPU over {@code mode}: first it pings the host {@value #KVM_PINGS} times (its kicks are KVM
     * ioeventfds and its interrupts KVM irqfds, except in emulated-sync, where each kick exits, so what the VMM's own
     * threads do per packet is what is left of the data plane); then, a boot each, it floods the host at each frame size
     * and counts the host's flood. Adds a row per measurement; a failure is its row's error.
     */
    private void measureKvm(String mode, RingLayout ring, Report.Ceiling ceiling, List<Report.KvmRow> pings,
                            List<Report.KvmFloodRow> floods) {
        String label = plan.label(mode, ring);
        plan.progress().step(label + ": KVM guest pings");
        try (Daemon daemon = DataPlane.of(mode) == DataPlane.VHOST_USER ? Daemon.start(hostAddress() + "/24", plan.log()) : null) {
            pings.add(kvmPings(mode, ring, label, daemon));
            for (int frame : plan.frameSizes()) {
                plan.progress().step(label + ": KVM guest transmit " + frame + " B");
                floods.add(kvmFlood(mode, ring, label, daemon, ceiling, "tx", frame));
                plan.progress().step(label + ": KVM guest receive " + frame + " B");
                floods.add(kvmFlood(mode, ring, label, daemon, ceiling, "rx", frame));
            }
        } catch (Exception e) {
            plan.log().println("compare: " + label + " under KVM failed: " + e.getMessage());
            pings.add(new Report.KvmRow(label, 0, 0, 0, 0, 0, 0, 0, 0, 0, String.valueOf(e.getMessage())));
            for (int i = 1; i < kvmStepsPerMode(plan.frameSizes().size()); i++) {
                plan.progress().step(label + ": skipped");
            }
        }
    }

    private VmOptions kvmOptions(String mode, RingLayout ring, Daemon daemon) {
        return options(mode, daemon == null ? null : daemon.socket().toString(), ring).toBuilder().vcpu(VmOptions.Vcpu.KVM).build();
    }

    private Report.KvmRow kvmPings(String mode, RingLayout ring, String label, Daemon daemon) {
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        VmOptions kvm = kvmOptions(mode, ring, daemon).toBuilder().count(KVM_PINGS).intervalMs(KVM_PING_INTERVAL_MS).build();
        long pid = ProcessHandle.current().pid();
        long daemonPid = daemon != null ? daemon.process().pid() : -1;
        try (ToyVm vm = new ToyVm(kvm, quiet)) {
            Snapshot before = Snapshot.take(pid, daemonPid);
            RunSummary s = vm.run();
            Snapshot d = Snapshot.take(pid, daemonPid).minus(before);
            long[] rtts = s.ping().rttMs().stream().mapToLong(ms -> (long) (ms * 1e6)).sorted().toArray();
            double packets = Math.max(2.0 * s.ping().received(), 1);
            return new Report.KvmRow(label, s.ping().sent(), s.ping().received(), Report.percentile(rtts, 0.5) / 1e3,
                    Report.percentile(rtts, 0.99) / 1e3, s.kvm().quietPhase().exits() / packets,
                    d.vmmThreads().syscalls() / packets, d.vmmThreads().voluntarySwitches() / packets,
                    d.vmmThreads().cpuNanos() / packets, d.daemon().cpuNanos() / packets, s.error());
        } catch (Exception e) {
            plan.log().println("compare: " + label + " pings under KVM failed: " + e.getMessage());
            return new Report.KvmRow(label, 0, 0, 0, 0, 0, 0, 0, 0, 0, String.valueOf(e.getMessage()));
        }
    }

    /**
     * One boot of the C guest for one flood. tx: it sends {@code frame}-byte UDP frames for the measuring time, and the tap
     * that carries them to the host (the VMM's, or the daemon's with vhost-user) counts what arrives. rx: tapflood sends
     * such datagrams from the host to the guest's port while the guest counts them (its window a little longer than the
     * flood, so that it holds the whole flood).
     */
    private Report.KvmFloodRow kvmFlood(String mode, RingLayout ring, String label, Daemon daemon, Report.Ceiling ceiling, String direction,
                                        int frame) {
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        boolean tx = direction.equals("tx");
        int ms = (int) Math.max(1, plan.measureNanos() / 1_000_000);
        FloodWorkload workload = new FloodWorkload(tx ? FloodWorkload.Kind.TX_FLOOD : FloodWorkload.Kind.RX_COUNT, frame,
                tx ? ms : ms + RX_COUNT_SLACK_MS, Workload.BENCH_PORT);
        VmOptions options = kvmOptions(mode, ring, daemon).toBuilder().count(0).flood(workload).build();
        try (ToyVm vm = new ToyVm(options, quiet)) {
            String tap = daemon != null ? daemon.tap() : vm.portName();
            if (tx) {
                long arrivedBefore = tapCounter(tap, "rx_packets");
                long droppedBefore = tapCounter(tap, "rx_dropped");
                RunSummary s = vm.run();
                if (s.error() != null) {
                    return Report.KvmFloodRow.failed(label, direction, frame, s.error());
                }
                RunSummary.Flood f = s.kvm().flood();
                // the tap also carried the guest's ARP request: only the flood's frames count
                long others = s.kvm().guest().framesTransmitted() - f.frames();
                long arrived = Math.max(0, tapCounter(tap, "rx_packets") - arrivedBefore - others);
                return Report.KvmFloodRow.of(label, direction, frame, f.frames(), Math.min(arrived, f.frames()), f.seconds(), ceiling,
                        tapCounter(tap, "rx_dropped") - droppedBefore, f.kicks(), f.interrupts(), s.kvm().quietPhase().exitsPerPacket());
            }
            pinGuestNeighbour(tap);
            long droppedBefore = tapCounter(tap, "tx_dropped");
            CompletableFuture<RunSummary> run = new CompletableFuture<>();
            Thread.ofPlatform().name("kvm-rx-count").start(() -> {
                try {
                    run.complete(vm.run());
                } catch (Throwable t) {
                    run.completeExceptionally(t);
                }
            });
            if (!vm.awaitGuestQuietPhase(Duration.ofSeconds(30))) {
                vm.requestStop();
                RunSummary s = run.get(30, TimeUnit.SECONDS);
                return Report.KvmFloodRow.failed(label, direction, frame, "the guest never began counting"
                        + (s.error() == null ? "" : ": " + s.error()));
            }
            TapFlood.Result sent;
            try (TapFlood.Run sender = TapFlood.send(hostAddress(), guestAddress(), Workload.BENCH_PORT, payloadFor(frame),
                    plan.measureNanos() / 1e9, 0)) {
                sent = sender.await(Duration.ofNanos(plan.measureNanos()).plusSeconds(30));
            }
            RunSummary s = run.get(ms + RX_COUNT_SLACK_MS + 30_000L, TimeUnit.MILLISECONDS);
            if (s.error() != null) {
                return Report.KvmFloodRow.failed(label, direction, frame, s.error());
            }
            RunSummary.Flood f = s.kvm().flood();
            return Report.KvmFloodRow.of(label, direction, frame, sent.frames(), Math.min(f.frames(), sent.frames()), sent.seconds(), ceiling,
                    tapCounter(tap, "tx_dropped") - droppedBefore, f.kicks(), f.interrupts(), s.kvm().quietPhase().exitsPerPacket());
        } catch (Exception e) {
            plan.log().println("compare: " + label + " " + direction + " " + frame + " B under KVM failed: " + e.getMessage());
            if (System.getenv("VMM4J_DEBUG") != null) {
                e.printStackTrace(plan.log());
            }
            return Report.KvmFloodRow.failed(label, direction, frame, String.valueOf(e.getMessage()));
        }
    }

    /** The host sends to the guest's MAC without asking first: a permanent neighbour entry on the tap, as for the ceiling. */
    private void pinGuestNeighbour(String tap) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("ip", "neigh", "replace", guestAddress(), "lladdr", VmOptions.DEFAULT_MAC, "dev", tap)
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) {
            throw new IOException("ip neigh replace " + guestAddress() + " dev " + tap + " failed: " + out.strip());
        }
    }

    /**
     * The ceiling of the KVM comparison, in C (tapflood, one syscall per frame like the data planes), on a tap opened as
     * the data planes open theirs: per frame size, writing frames into it for the measuring time (TX: what a data plane
     * could deliver to the host), and reading what the host's C sender sends through it (RX). Without the helper the
     * rows are missing and the ratios say "-".
     */
    private Report.Ceiling measureTapCeiling() {
        plan.progress().step("ceiling: raw tap, in C");
        if (!TapFlood.built()) {
            plan.log().println("compare: no C tap ceiling: the tapflood helper was not built (this build had no gcc)");
            return new Report.Ceiling(List.of());
        }
        List<Report.CeilingRow> rows = new ArrayList<>();
        String name = "vcei" + Integer.toHexString(ThreadLocalRandom.current().nextInt(0x1000, 0xFFFF));
        double seconds = plan.measureNanos() / 1e9;
        Duration timeout = Duration.ofNanos(plan.measureNanos()).plusSeconds(30);
        try (TapDevice tap = TapDevice.open(name, 1, VirtioNetHeader.SIZE)) {
            tap.addAddress(hostAddress() + "/24");
            tap.setUp();
            byte[] hostMac = HexFormat.ofDelimiter(":").parseHex(Files.readString(Path.of("/sys/class/net", name, "address")).strip());
            byte[] guestMac = HexFormat.ofDelimiter(":").parseHex(VmOptions.DEFAULT_MAC);
            pinGuestNeighbour(name);
            for (int frame : plan.frameSizes()) {
                byte[] f = UdpFrame.build(guestMac, hostMac, guestAddress(), hostAddress(), Workload.BENCH_PORT, payloadFor(frame));
                long arrivedBefore = tapCounter(name, "rx_packets");
                TapFlood.Result written;
                try (TapFlood.Run writer = TapFlood.write(tap.fd(0), VirtioNetHeader.SIZE, seconds, f)) {
                    written = writer.await(timeout);
                }
                long arrived = tapCounter(name, "rx_packets") - arrivedBefore;
                rows.add(new Report.CeilingRow("tx", frame, written.frames(), arrived, written.framesPerSecond()));

                TapFlood.Result read;
                TapFlood.Result sent;
                try (TapFlood.Run reader = TapFlood.read(tap.fd(0), VirtioNetHeader.SIZE, seconds + RX_COUNT_SLACK_MS / 1e3);
                     TapFlood.Run sender = TapFlood.send(hostAddress(), guestAddress(), Workload.BENCH_PORT, payloadFor(frame), seconds, 0)) {
                    sent = sender.await(timeout);
                    read = reader.await(timeout);
                }
                // the host's own frames (IPv6 router solicitations) may be read too; never count more than was sent
                long received = Math.min(read.frames(), sent.frames());
                rows.add(new Report.CeilingRow("rx", frame, sent.frames(), received, sent.seconds() > 0 ? received / sent.seconds() : 0));
            }
        } catch (Exception e) {
            plan.log().println("compare: the C tap ceiling failed: " + e.getMessage());
        }
        return new Report.Ceiling(rows);
    }

    /** Host → guest with a bounded window; returns {sent, received}. */
    private long[] receive(Workload guest, int payload) throws Exception {
        try (DatagramChannel ch = DatagramChannel.open()) {
            ch.bind(new InetSocketAddress(hostAddress(), 0));
            ch.connect(new InetSocketAddress(guestAddress(), Workload.BENCH_PORT));
            var counting = guest.startCountingUdp();
            ByteBuffer data = ByteBuffer.allocateDirect(payload);
            long sent = 0;
            long deadline = System.nanoTime() + plan.measureNanos();
            while (System.nanoTime() < deadline) {
                if (sent - counting.soFar() >= RX_WINDOW) {
                    LockSupport.parkNanos(20_000);
                    continue;
                }
                data.clear();
                if (ch.write(data) > 0) {
                    sent++;
                }
            }
            Thread.sleep(300); // in flight
            return new long[] {sent, counting.stop()};
        }
    }

    /** The same frames through a bare tap: a loop writing them, and a loop reading them. */
    private Report.Ceiling measureCeiling() {
        plan.progress().step("ceiling: raw tap");
        List<Report.CeilingRow> rows = new ArrayList<>();
        String name = "vcei" + Integer.toHexString(ThreadLocalRandom.current().nextInt(0x1000, 0xFFFF));
        try (TapDevice tap = TapDevice.open(name, 1, VirtioNetHeader.SIZE); Arena arena = Arena.ofConfined()) {
            tap.addAddress(hostAddress() + "/24");
            tap.setUp();
            byte[] hostMac = HexFormat.ofDelimiter(":").parseHex(Files.readString(Path.of("/sys/class/net", name, "address")).strip());
            byte[] guestMac = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
            new ProcessBuilder("ip", "neigh", "replace", guestAddress(), "lladdr", "52:54:00:12:34:56", "dev", name).start().waitFor();
            for (int frame : plan.frameSizes()) {
                MemorySegment buf = arena.allocate(VirtioNetHeader.SIZE + 65536, 64);
                byte[] f = UdpFrame.build(guestMac, hostMac, guestAddress(), hostAddress(), Workload.BENCH_PORT, payloadFor(frame));
                MemorySegment.copy(MemorySegment.ofArray(f), 0, buf, VirtioNetHeader.SIZE, f.length);
                long len = VirtioNetHeader.SIZE + f.length;
                long tapRx = tapCounter(name, "rx_packets");
                long writes = 0;
                long deadline = System.nanoTime() + plan.measureNanos();
                while (System.nanoTime() < deadline) {
                    for (int i = 0; i < 64; i++) {
                        if (LibC.writeRaw(tap.fd(0), buf, len) == len) {
                            writes++;
                        }
                    }
                }
                Thread.sleep(100);
                long arrived = tapCounter(name, "rx_packets") - tapRx;
                rows.add(new Report.CeilingRow("tx", frame, writes, arrived, writes * 1e9 / plan.measureNanos()));

                long[] rx = readLoop(tap, buf, payloadFor(frame));
                rows.add(new Report.CeilingRow("rx", frame, rx[0], rx[1], rx[1] * 1e9 / plan.measureNanos()));
            }
        } catch (Exception e) {
            plan.log().println("compare: ceiling failed: " + e.getMessage());
        }
        return new Report.Ceiling(rows);
    }

    private long[] readLoop(TapDevice tap, MemorySegment buf, int payload) throws IOException, InterruptedException {
        try (DatagramChannel ch = DatagramChannel.open()) {
            ch.bind(new InetSocketAddress(hostAddress(), 0));
            ch.connect(new InetSocketAddress(guestAddress(), Workload.BENCH_PORT));
            ByteBuffer data = ByteBuffer.allocateDirect(payload);
            long sent = 0;
            long read = 0;
            long deadline = System.nanoTime() + plan.measureNanos();
            while (System.nanoTime() < deadline) {
                if (sent - read < RX_WINDOW) {
                    data.clear();
                    if (ch.write(data) > 0) {
                        sent++;
                    }
                }
                while (LibC.readRaw(tap.fd(0), buf, buf.byteSize()) > 0) {
                    read++;
                }
            }
            long drainUntil = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(200);
            while (System.nanoTime() < drainUntil) {
                if (LibC.readRaw(tap.fd(0), buf, buf.byteSize()) > 0) {
                    read++;
                }
            }
            // frames other than ours (IPv6 router solicitations, ARP) may arrive too; never count more than was sent
            return new long[] {sent, Math.min(read, sent)};
        }
    }

    static long tapCounter(String ifname, String counter) throws IOException {
        return Long.parseLong(Files.readString(Path.of("/sys/class/net", ifname, "statistics", counter)).strip());
    }

    /** CPU and friends of each party, at one moment. */
    record Snapshot(CpuSample vmmThreads, CpuSample irqfd, CpuSample vcpu, CpuSample daemon, CpuSample kernelWorkers) {
        /** The VMM's own data-plane and control threads: the I/O loops and the control loop. */
        static boolean isVmmThread(String name) {
            return name.startsWith("net-io-") || name.equals("vmm-control") || name.equals("rng-io");
        }

        static Snapshot take(long pid, long daemonPid) {
            return new Snapshot(CpuSample.ofOwnThreads(Snapshot::isVmmThread), CpuSample.ofOwnThreads("irqfd"::equals),
                    CpuSample.ofOwnThreads("vcpu0"::equals),
                    daemonPid > 0 ? CpuSample.ofProcess(daemonPid) : CpuSample.ZERO,
                    CpuSample.ofTasks(CpuSample.vhostWorkersOf(pid)));
        }

        Snapshot minus(Snapshot b) {
            return new Snapshot(vmmThreads.minus(b.vmmThreads), irqfd.minus(b.irqfd), vcpu.minus(b.vcpu), daemon.minus(b.daemon),
                    kernelWorkers.minus(b.kernelWorkers));
        }
    }
}
