package io.vmm4j.cli.compare;

import io.vmm4j.guest.TapFlood;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.virtio.queue.RingLayout;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * DPDK's testpmd with virtio_user as the front-end, a guest driver that is never the bottleneck:
 * it transmits (txonly) into, and receives (rxonly) from, DPDK's own vhost PMD (the reference) and
 * our back-end daemon with each port, event-driven and busy-polling, in one run, so each row's
 * ratio to DPDK's is measured on the same machine minutes apart.
 *
 * <p>Placement on two cores: each testpmd has a main lcore (stats once a second, otherwise idle)
 * and one forwarding lcore that busy-polls. virtio_user forwards on core 0; the back-end, DPDK's
 * vhost testpmd (forwarding on core 1) or our daemon (the whole JVM under {@code taskset -c 1}),
 * owns core 1. No hugepages ({@code --no-huge}).
 */
public final class DpdkComparison {
    /** testpmd prints one pps sample a second; the first two (start-up, a partial second) are not counted. */
    private static final int WARM_UP_SAMPLES = 2;
    private static final Pattern PPS = Pattern.compile("(Rx|Tx)-pps:\\s+(\\d+)");
    private static final String REFERENCE = "DPDK vhost PMD";
    private static final String CEILING = "C tap write, one write() per frame";

    /**
     * What to measure: frame sizes, seconds per row, the daemon's ports ({@code discard}, {@code tap})
     * and its busy-poll window (0: event-driven rows only), ring layouts.
     */
    public record Plan(List<Integer> frameSizes, int seconds, List<String> ports, int pollMicros, List<RingLayout> rings,
                       List<String> daemonCommand, PrintStream log, Progress progress) {
    }

    /** Progress steps of a plan: per frame size and ring layout the two reference rows, the tap ceiling, then two per port and poll setting. */
    public static int steps(List<Integer> frameSizes, List<RingLayout> rings, List<String> ports, int pollMicros) {
        return frameSizes.size() * rings.size() * (2 + (ports.contains("tap") ? 1 : 0) + ports.size() * 2 * (pollMicros > 0 ? 2 : 1));
    }

    /** One measured path: who is the back-end, which way the frames go, and the median of testpmd's 1 s samples. */
    public record Row(String backEnd, String direction, int frameSize, String ring, double mpps, List<Double> samplesMpps,
                      Double ratioToDpdk, Double ratioToTapCeiling, Long tapFrames, String error) {
        Row withTapCeiling(Row ceiling) {
            Double ratio = ceiling == null || ceiling.error() != null || ceiling.mpps() == 0 ? null : mpps / ceiling.mpps();
            return new Row(backEnd, direction, frameSize, ring, mpps, samplesMpps, ratioToDpdk, ratio, tapFrames, error);
        }
    }

    /** The rows, and the machine's load before and after. */
    public record Report(List<Row> rows, int seconds, String loadBefore, String loadAfter) {
        public String markdown() {
            StringBuilder b = new StringBuilder();
            b.append(String.format("%n| back-end, driven by DPDK testpmd virtio_user | frames | ring | Mpps (median of 1 s samples) "
                    + "| ratio to DPDK's vhost PMD | ratio to the C tap ceiling | samples |%n|---|---|---|---:|---:|---:|---|%n"));
            for (Row r : rows) {
                if (r.error() != null) {
                    b.append(String.format("| %s | %s %d B | %s | failed: %s | | | |%n", r.backEnd(), r.direction(), r.frameSize(), r.ring(),
                            r.error()));
                    continue;
                }
                b.append(String.format("| %s | %s %d B | %s | %.2f | %s | %s | %s |%n", r.backEnd(), r.direction(), r.frameSize(), r.ring(),
                        r.mpps(), r.backEnd().equals(REFERENCE) ? "1 (reference)" : r.ratioToDpdk() == null ? "-"
                                : String.format("%.2f", r.ratioToDpdk()),
                        r.backEnd().equals(CEILING) ? "1 (ceiling)" : r.ratioToTapCeiling() == null ? "-"
                                : String.format("%.2f", r.ratioToTapCeiling()),
                        r.samplesMpps().stream().map(s -> String.format("%.2f", s)).toList()
                                + (r.tapFrames() == null ? "" : String.format("; the tap counted %.2f M frames", r.tapFrames() / 1e6))));
            }
            b.append(String.format("%n%d s per row; load before %s, after %s. tx: testpmd txonly transmits into the back-end "
                    + "(its Tx-pps; for DPDK the vhost PMD's Rx-pps); rx: testpmd rxonly receives what the back-end makes "
                    + "(the discard port's frame, DPDK vhost PMD txonly's; a tap makes none, so tap rows are tx only). The C tap ceiling: a C "
                    + "program on core 1 writing a frame like testpmd's (to a MAC not the tap's, so the kernel counts and drops it) "
                    + "with one write() per frame to a tap set up like the daemon's.%n", seconds,
                    loadBefore, loadAfter));
            return b.toString();
        }
    }

    private final Plan plan;
    private final String prefix = "vmm4jcmp" + ProcessHandle.current().pid();
    private final int subnet = ThreadLocalRandom.current().nextInt(10, 250);
    private Path work;

    public DpdkComparison(Plan plan) {
        this.plan = plan;
    }

    public Report run() throws IOException {
        String before = load();
        work = Files.createTempDirectory("vmm4j-compare-dpdk");
        List<Row> rows = new ArrayList<>();
        try {
            for (RingLayout ring : plan.rings()) {
                for (int frame : plan.frameSizes()) {
                    Row refTx = reference("tx", frame, ring);
                    Row refRx = reference("rx", frame, ring);
                    rows.add(refTx);
                    rows.add(refRx);
                    Row ceiling = plan.ports().contains("tap") ? tapCeiling(frame, ring) : null;
                    if (ceiling != null) {
                        rows.add(ceiling);
                    }
                    for (String port : plan.ports()) {
                        for (int poll : plan.pollMicros() > 0 ? new int[] {0, plan.pollMicros()} : new int[] {0}) {
                            for (Row r : daemon(port, poll, frame, ring, refTx, refRx)) {
                                rows.add(port.equals("tap") ? r.withTapCeiling(ceiling) : r);
                            }
                        }
                    }
                }
            }
        } finally {
            delete(work);
        }
        return new Report(rows, plan.seconds(), before, load());
    }

    private static String load() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (IOException e) {
            return "?";
        }
    }

    /** DPDK to DPDK: the vhost PMD (rxonly, or txonly) on core 1 and virtio_user on core 0. */
    private Row reference(String direction, int frame, RingLayout ring) {
        String label = REFERENCE;
        plan.progress().step(label + ": " + direction + " " + frame + " B");
        Path socket = work.resolve("ref.sock");
        try (Testpmd vhost = Testpmd.start(this, "ref" + direction, 0, 1, "net_vhost0,iface=" + socket + ",queues=1",
                direction.equals("tx") ? "rxonly" : "txonly", frame)) {
            vhost.awaitForwarding();
            try (Testpmd user = Testpmd.start(this, "refuser" + direction, 1, 0, virtioUser(socket, ring),
                    direction.equals("tx") ? "txonly" : "rxonly", frame)) {
                user.awaitForwarding();
                // the vhost side's samples from before virtio_user came are not counted
                int from = vhost.log().size();
                List<Double> samples = direction.equals("tx") ? vhost.awaitSamples("Rx", from, plan.seconds())
                        : user.awaitSamples("Rx", 0, plan.seconds());
                return row(label, direction, frame, ring, samples, null, null);
            }
        } catch (Exception e) {
            return failed(label, direction, frame, ring, e);
        }
    }

    /**
     * What a tap takes on core 1 from a C program writing testpmd txonly's kind of frame (to a MAC that is not the
     * tap's, so the kernel counts and drops it as it does testpmd's) with one write() per frame: the ceiling of the
     * daemon's tap rows.
     */
    private Row tapCeiling(int frame, RingLayout ring) {
        plan.progress().step("C tap ceiling: tx " + frame + " B");
        String name = "vcdc" + Integer.toHexString(ThreadLocalRandom.current().nextInt(0x1000, 0xFFFF));
        try (TapDevice tap = TapDevice.open(name, 1, TapDevice.VNET_HEADER_V1_SIZE)) {
            tap.addAddress("10.203." + subnet + ".1/24");
            tap.setUp();
            byte[] f = UdpFrame.build(new byte[] {2, 0, 0, 0, 0, 1}, new byte[] {2, 0, 0, 0, 0, 0}, "198.18.0.1", "198.18.0.2", 9,
                    frame - 42);
            long before = tapRxPackets(name);
            TapFlood.Result r;
            try (TapFlood.Run writer = TapFlood.write(tap.fd(0), TapDevice.VNET_HEADER_V1_SIZE, plan.seconds(), f, 1)) {
                r = writer.await(Duration.ofSeconds(plan.seconds() + 30L));
            }
            long counted = tapRxPackets(name) - before;
            double mpps = r.framesPerSecond() / 1e6;
            return new Row(CEILING, "tx", frame, ring.label(), mpps, List.of(mpps), null, null, counted, null);
        } catch (Exception e) {
            return failed(CEILING, "tx", frame, ring, e);
        }
    }

    /** Our daemon on core 1 with {@code port}, driven both ways (a tap makes no frames, so only tx). */
    private List<Row> daemon(String port, int pollMicros, int frame, RingLayout ring, Row refTx, Row refRx) {
        String label = "vmm4j daemon --port " + port + (pollMicros > 0 ? " --poll-us " + pollMicros : "");
        if (port.equals("tap")) {
            label = "vmm4j daemon --tap" + (pollMicros > 0 ? " --poll-us " + pollMicros : "");
        }
        List<Row> rows = new ArrayList<>();
        Path socket = work.resolve("vu" + port + pollMicros + ".sock");
        String tap = "vcdp" + Integer.toHexString(ThreadLocalRandom.current().nextInt(0x1000, 0xFFFF));
        List<String> cmd = new ArrayList<>(List.of("taskset", "-c", "1"));
        cmd.addAll(plan.daemonCommand());
        cmd.addAll(List.of("vhost-user-backend", "--socket", socket.toString(), "--poll-us", Integer.toString(pollMicros)));
        cmd.addAll(port.equals("tap") ? List.of("--tap", tap, "--host-ip", "10.203." + subnet + ".1/24")
                : List.of("--port", port, "--frame-size", Integer.toString(frame)));
        Path log = work.resolve("daemon.log");
        Process daemon = null;
        try {
            daemon = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!Files.exists(socket)) {
                if (!daemon.isAlive() || System.nanoTime() > deadline) {
                    throw new IllegalStateException("the daemon did not start: " + Files.readString(log).strip());
                }
                Thread.sleep(50);
            }
            for (String direction : port.equals("tap") ? List.of("tx") : List.of("tx", "rx")) {
                plan.progress().step(label + ": " + direction + " " + frame + " B");
                try (Testpmd user = Testpmd.start(this, "vu" + port + pollMicros + direction, 1, 0, virtioUser(socket, ring),
                        direction.equals("tx") ? "txonly" : "rxonly", frame)) {
                    user.awaitForwarding();
                    long tapBefore = port.equals("tap") ? tapRxPackets(tap) : 0;
                    List<Double> samples = user.awaitSamples(direction.equals("tx") ? "Tx" : "Rx", 0, plan.seconds());
                    Long tapFrames = port.equals("tap") ? tapRxPackets(tap) - tapBefore : null;
                    Row ref = direction.equals("tx") ? refTx : refRx;
                    rows.add(row(label, direction, frame, ring, samples, ref, tapFrames));
                } catch (Exception e) {
                    rows.add(failed(label, direction, frame, ring, e));
                }
            }
            if (port.equals("tap")) {
                plan.progress().step(label + ": (no rx: a tap makes no frames)");
            }
        } catch (Exception e) {
            rows.add(failed(label, "tx", frame, ring, e));
        } finally {
            if (daemon != null) {
                daemon.destroy();
                try {
                    if (!daemon.waitFor(10, TimeUnit.SECONDS)) {
                        daemon.destroyForcibly();
                    }
                } catch (InterruptedException e) {
                    daemon.destroyForcibly();
                    Thread.currentThread().interrupt();
                }
            }
        }
        return rows;
    }

    private static String virtioUser(Path socket, RingLayout ring) {
        return "net_virtio_user0,path=" + socket + ",queues=1" + (ring == RingLayout.PACKED ? ",packed_vq=1" : "");
    }

    private static long tapRxPackets(String tap) throws IOException {
        return Long.parseLong(Files.readString(Path.of("/sys/class/net", tap, "statistics", "rx_packets")).strip());
    }

    private static Row row(String label, String direction, int frame, RingLayout ring, List<Double> samples, Row reference, Long tapFrames) {
        if (samples.isEmpty()) {
            return new Row(label, direction, frame, ring.label(), 0, samples, null, null, tapFrames, "testpmd printed no samples");
        }
        double[] sorted = samples.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        double median = sorted[(sorted.length - 1) / 2];
        Double ratio = reference == null || reference.error() != null || reference.mpps() == 0 ? null : median / reference.mpps();
        return new Row(label, direction, frame, ring.label(), median, samples, ratio, null, tapFrames, null);
    }

    private Row failed(String label, String direction, int frame, RingLayout ring, Exception e) {
        plan.log().println("compare: " + label + " " + direction + " " + frame + " B failed: " + e.getMessage());
        return new Row(label, direction, frame, ring.label(), 0, List.of(), null, null, null, String.valueOf(e.getMessage()));
    }

    private static void delete(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** One testpmd process, its log, and its runtime directory removed at close. */
    private record Testpmd(Process process, Path logFile, Path runtime) implements AutoCloseable {
        static Testpmd start(DpdkComparison c, String name, int mainCore, int forwardingCore, String vdev, String mode, int frame)
                throws IOException {
            String filePrefix = c.prefix + name;
            // stdbuf: testpmd's stdout into a file is block-buffered, and its once-a-second samples must arrive as they are taken
            List<String> cmd = List.of("stdbuf", "-oL", "dpdk-testpmd", "-l", mainCore + "," + forwardingCore, "--main-lcore", Integer.toString(mainCore),
                    "--no-pci", "--no-huge", "-m", "512", "--file-prefix", filePrefix, "--vdev", vdev, "--", "--forward-mode=" + mode,
                    "--stats-period", "1", "--auto-start", "--total-num-mbufs=16384", "--txpkts=" + frame);
            Path log = c.work.resolve(name + ".log");
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile())).start();
            return new Testpmd(p, log, Path.of("/var/run/dpdk", filePrefix));
        }

        List<String> log() throws IOException {
            return Files.readAllLines(logFile);
        }

        void awaitForwarding() throws IOException, InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!Files.readString(logFile).contains("Port statistics")) {
                if (!process.isAlive() || System.nanoTime() > deadline) {
                    throw new IllegalStateException("testpmd never forwarded: " + tail(Files.readString(logFile)));
                }
                Thread.sleep(50);
            }
        }

        /**
         * Waits for {@code n} {@code kind} samples after the warm-up ones from line {@code from} on (testpmd's main lcore
         * may print late on a busy machine: samples are counted, not seconds), and returns what came, in Mpps.
         */
        List<Double> awaitSamples(String kind, int from, int n) throws IOException, InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(3L * (n + WARM_UP_SAMPLES) + 10);
            List<Double> got = samples(kind, from);
            while (got.size() < n && process.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(200);
                got = samples(kind, from);
            }
            return got.size() > n ? got.subList(0, n) : got;
        }

        /** The {@code kind} (Rx or Tx) pps samples from line {@code from} on, in Mpps, but the warm-up ones. */
        List<Double> samples(String kind, int from) throws IOException {
            List<String> lines = log();
            List<Double> values = new ArrayList<>();
            for (String line : lines.subList(Math.min(from, lines.size()), lines.size())) {
                Matcher m = PPS.matcher(line);
                while (m.find()) {
                    if (m.group(1).equals(kind)) {
                        values.add(Long.parseLong(m.group(2)) / 1e6);
                    }
                }
            }
            return values.size() <= WARM_UP_SAMPLES ? List.of() : values.subList(WARM_UP_SAMPLES, values.size());
        }

        private static String tail(String log) {
            String[] lines = log.strip().split("\n");
            return String.join(" / ", Arrays.asList(lines).subList(Math.max(0, lines.length - 4), lines.length));
        }

        @Override
        public void close() throws IOException {
            process.destroy(); // SIGTERM: testpmd stops forwarding and closes its port
            try {
                if (!process.waitFor(15, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                    process.waitFor(5, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                process.destroyForcibly();
                Thread.currentThread().interrupt();
            }
            if (Files.exists(runtime)) {
                delete(runtime);
            }
        }
    }
}
