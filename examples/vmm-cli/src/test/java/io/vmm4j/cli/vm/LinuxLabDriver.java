package io.vmm4j.cli.vm;

import io.vmm4j.cli.Main;
import io.vmm4j.cli.compare.CpuSample;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The host's side of {@link LinuxGuestLabTest}, run inside the lab VM (which has a real nested
 * /dev/kvm and /dev/vhost-net): for each scenario it starts {@code vmm run --vcpu kvm --kernel ...}
 * as its own process, exactly as a user would (with a QMP socket, stdin as the serial console's
 * input, and for vhost-user our back-end daemon as a second process), and acts on the cue lines the
 * guest's /init prints (scripts/linux-guest/init): it pings the guest while it serves, flood-pings
 * it while it counts, types a line when it asks for one, flaps the link through QMP's set_link while
 * it waits for the carrier, and adds a second host address for the multiqueue workload. Each
 * scenario leaves NAME.log (the VMM's log and console, and this driver's "lab-host:" lines, in
 * order), NAME.json (the VMM's --json summary) and NAME.exit in the output directory.
 *
 * <pre>
 * java -cp CP io.vmm4j.cli.vm.LinuxLabDriver OUTDIR KERNEL INITRD SCENARIO[:OPTION=VALUE...] ...
 * </pre>
 */
public final class LinuxLabDriver {
    static final String TAP = "vmlnx0";
    static final String HOST_IP = "10.0.2.2";
    static final String HOST2_IP = "10.0.2.3";
    static final String GUEST_IP = "10.0.2.15";
    static final String CONSOLE_LINE = "typed into the UART";
    private static final Pattern RECEIVED = Pattern.compile("(\\d+) packets transmitted, (\\d+) (?:packets )?received");

    /**
     * One boot: the data plane, the VMM flags beyond the common ones, the guest's workloads and
     * parameters, the host's ping size.
     */
    record Scenario(String name, String backend, List<String> vmmFlags, String workloads, String params, int hostPingSize) {
    }

    /** The scenarios the lab test runs, by name. */
    static Scenario scenario(String name) {
        // ping and serve before and after a link flap and a driver rebind (a device reset)
        String plane = "ping,serve,linkwait,ping,rebind,ping,serve";
        return switch (name) {
            // and two queue pairs on two vCPUs, jumbo frames, the offloads Linux uses, a line typed on the console
            // and two queue pairs on two vCPUs, jumbo frames, the offloads Linux uses, a line typed on the console; vhost-net is
            // asked for packed rings too, which the kernel does not serve for net: the NIC offers split only
            case "emulated", "vhost-net" -> new Scenario(name, name, name.equals("vhost-net")
                    ? List.of("--queues", "2", "--cpus", "2", "--mtu", "9000", "--ring", "packed")
                    : List.of("--queues", "2", "--cpus", "2", "--mtu", "9000"),
                    plane + ",mq,ethtool,console", "vmm4j.mtu=9000 vmm4j.ping_size=8000 vmm4j.console_seconds=60", 8000);
            // packed rings (virtio 1.2 §2.8) on our daemon: Linux's virtio_ring takes them when offered
            case "vhost-user" -> new Scenario(name, name, List.of("--ring", "packed"), plane, "", 56);
            // and INTx: pci=nomsi makes Linux's virtio_pci use the INTA line the MP table routes; packed rings in the VMM
            case "emulated-sync" -> new Scenario(name, name, List.of("--ring", "packed"), plane, "pci=nomsi", 56);
            // no /init where rdinit= points and no root device: the kernel panics and, with panic=-1, resets
            case "panic" -> new Scenario(name, "emulated", List.of(), "", "rdinit=/nonexistent", 56);
            default -> throw new IllegalArgumentException("unknown scenario " + name);
        };
    }

    public static void main(String[] args) throws Exception {
        Path out = Path.of(args[0]);
        Path kernel = Path.of(args[1]);
        Path initrd = Path.of(args[2]);
        int failed = 0;
        for (String name : Arrays.copyOfRange(args, 3, args.length)) {
            Scenario s = scenario(name);
            System.out.println("lab-host: scenario " + name + " starts");
            int exit = new LinuxLabDriver(out, kernel, initrd, s).run();
            Files.writeString(out.resolve(name + ".exit"), exit + "\n");
            System.out.println("lab-host: scenario " + name + " ended with VMM exit status " + exit);
            failed += exit == 0 || name.equals("panic") ? 0 : 1;
        }
        System.exit(failed == 0 ? 0 : 1);
    }

    private final Path out;
    private final Path kernel;
    private final Path initrd;
    private final Scenario scenario;
    private final PrintStream log;
    private final Path qmp;
    private Process vmm;
    private String tap = TAP;

    private LinuxLabDriver(Path out, Path kernel, Path initrd, Scenario scenario) throws IOException {
        this.out = out;
        this.kernel = kernel;
        this.initrd = initrd;
        this.scenario = scenario;
        this.log = new PrintStream(Files.newOutputStream(out.resolve(scenario.name() + ".log")), true, StandardCharsets.UTF_8);
        this.qmp = Files.createTempDirectory("vmm4j-lab-qmp").resolve("vm.qmp");
    }

    /** A JVM running vmm4j's CLI with {@code more}, from this driver's class path; a crash report goes to the output directory. */
    private List<String> java(String... more) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                // C1 only and the serial GC: a JVM starts much faster on the lab's emulated CPU, and speed is not measured here
                "--enable-native-access=ALL-UNNAMED", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                "-XX:ErrorFile=" + out.resolve("hs_err_pid%p.log"),
                "-cp", System.getProperty("java.class.path"), Main.class.getName()));
        cmd.addAll(List.of(more));
        return cmd;
    }

    private int run() throws Exception {
        Process daemon = null;
        try {
            List<String> cmd = java("run", "--vcpu", "kvm", "--kernel", kernel.toString(), "--initrd", initrd.toString(),
                    "--memory", "256", "--backend", scenario.backend(), "--qmp", qmp.toString(), "--json");
            if (scenario.backend().equals("vhost-user")) {
                Path socket = qmp.resolveSibling("vu.sock");
                tap = "vmlnxvu0";
                daemon = startDaemon(socket);
                cmd.addAll(List.of("--socket", socket.toString()));
            } else {
                cmd.addAll(List.of("--port", "tap", "--tap", TAP));
            }
            cmd.addAll(scenario.vmmFlags());
            String append = VmOptions.DEFAULT_APPEND + (scenario.workloads().isEmpty() ? "" : " vmm4j.workload=" + scenario.workloads())
                    + (scenario.params().isEmpty() ? "" : " " + scenario.params());
            cmd.addAll(List.of("--append", append));
            note("starting " + String.join(" ", cmd));
            vmm = new ProcessBuilder(cmd).redirectOutput(out.resolve(scenario.name() + ".json").toFile()).start();
            Thread reader = Thread.ofPlatform().name("vmm-log").start(this::followLog);
            if (!vmm.waitFor(240, TimeUnit.SECONDS)) {
                note("the VMM did not end within 240 s: killing it");
                vmm.destroyForcibly();
                vmm.waitFor();
            }
            reader.join(10_000);
            return vmm.exitValue();
        } finally {
            if (daemon != null) {
                daemon.destroy();
                daemon.waitFor(10, TimeUnit.SECONDS);
                daemon.destroyForcibly();
            }
            log.close();
        }
    }

    private Process startDaemon(Path socket) throws Exception {
        List<String> cmd = java("vhost-user-backend", "--socket", socket.toString(), "--tap", tap, "--host-ip", HOST_IP + "/24");
        note("starting the back-end: " + String.join(" ", cmd));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.resolve(scenario.name() + ".daemon.log").toFile()).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!Files.exists(socket) && p.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        if (!Files.exists(socket)) {
            throw new IllegalStateException("the vhost-user back-end did not create " + socket + ": see " + scenario.name() + ".daemon.log");
        }
        return p;
    }

    /** Copies the VMM's log (its stderr: boot log and guest console) to NAME.log and acts on the guest's cues. */
    private void followLog() {
        int serves = 0;
        try (BufferedReader r = new BufferedReader(new InputStreamReader(vmm.getErrorStream(), StandardCharsets.ISO_8859_1))) {
            for (String line; (line = r.readLine()) != null; ) {
                synchronized (log) {
                    log.println(line);
                }
                if (line.contains("vmm4j-guest: serve: ready")) {
                    serves++;
                    hostPing(serves, false);
                } else if (line.contains("vmm4j-guest: count: ready")) {
                    hostPing(0, true);
                } else if (line.contains("vmm4j-guest: console: type a line")) {
                    type(CONSOLE_LINE);
                } else if (line.contains("vmm4j-guest: linkwait: ready")) {
                    Thread.ofPlatform().name("link-flap").start(this::flapLink);
                } else if (line.contains("vmm4j-guest: workload mq")) {
                    shell("ip", "addr", "add", HOST2_IP + "/24", "dev", tap);
                }
            }
        } catch (IOException e) {
            note("reading the VMM's log failed: " + e.getMessage());
        }
    }

    private void note(String text) {
        synchronized (log) {
            log.println("lab-host: " + text);
        }
        System.out.println("lab-host: " + text);
    }

    private void result(String json) {
        synchronized (log) {
            log.println("lab-host-result: " + json);
        }
    }

    /**
     * Pings the guest from the host (on a thread of its own, so the log keeps flowing), with the
     * VMM's and the vhost workers' CPU and syscalls around it; the first serve also shows the tap's offloads.
     */
    private void hostPing(int serve, boolean flood) {
        Thread.ofPlatform().name("host-ping").start(() -> {
            long pid = vmm.pid();
            CpuSample vmmBefore = CpuSample.ofProcess(pid);
            Map<String, Long> syscallsBefore = syscallsPerThread(pid);
            List<Integer> workers = CpuSample.vhostWorkersOf(pid);
            CpuSample vhostBefore = CpuSample.ofTasks(workers);
            int count = flood ? 200 : 5;
            List<String> cmd = new ArrayList<>(List.of("ping", "-n", "-c", Integer.toString(count), "-w", "30", "-s",
                    Integer.toString(scenario.hostPingSize())));
            cmd.addAll(flood ? List.of("-f") : List.of("-i", "0.2", "-W", "3"));
            cmd.add(GUEST_IP);
            String text = capture(cmd);
            CpuSample vmmUsed = CpuSample.ofProcess(pid).minus(vmmBefore);
            long vmmSyscalls = syscallsSince(pid, syscallsBefore);
            CpuSample vhostUsed = CpuSample.ofTasks(workers).minus(vhostBefore);
            Matcher m = RECEIVED.matcher(text);
            int sent = 0;
            int received = 0;
            if (m.find()) {
                sent = Integer.parseInt(m.group(1));
                received = Integer.parseInt(m.group(2));
            }
            note((flood ? "flood " : "") + "ping " + GUEST_IP + ": " + text.strip().lines().filter(l -> l.contains("transmitted"))
                    .findFirst().orElse(text.strip()));
            result(String.format(Locale.ROOT, "{\"command\":\"%s\",\"serve\":%d,\"size\":%d,\"sent\":%d,\"received\":%d,"
                            + "\"vmm_syscalls\":%d,\"vmm_cpu_ms\":%.1f,\"vhost_workers\":%d,\"vhost_cpu_ms\":%.1f}",
                    flood ? "ping -f" : "ping", serve, scenario.hostPingSize(), sent, received, vmmSyscalls, vmmUsed.cpuNanos() / 1e6,
                    workers.size(), vhostUsed.cpuNanos() / 1e6));
            if (serve == 1) {
                for (String l : capture(List.of("ethtool", "-k", tap)).lines().toList()) {
                    note("host ethtool -k " + tap + ": " + l.strip());
                }
                threads(pid);
            }
        });
    }

    /** Read- and write-class syscalls (/proc/PID/task/TID/io: syscr + syscw) of each of the VMM's threads, by thread id. */
    private static Map<String, Long> syscallsPerThread(long pid) {
        Map<String, Long> counts = new HashMap<>();
        try (var tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
            for (Path t : tasks.toList()) {
                long n = 0;
                for (String l : Files.readAllLines(t.resolve("io"))) {
                    if (l.startsWith("syscr:") || l.startsWith("syscw:")) {
                        n += Long.parseLong(l.substring(6).strip());
                    }
                }
                counts.put(t.getFileName().toString(), n);
            }
        } catch (IOException | RuntimeException e) {
            // a thread that ended while being read: counted by the threads that remain
        }
        return counts;
    }

    /** The syscalls the VMM's threads made since {@code before}, over the threads alive at both times (an ended thread's count is gone). */
    private static long syscallsSince(long pid, Map<String, Long> before) {
        long total = 0;
        for (Map.Entry<String, Long> e : syscallsPerThread(pid).entrySet()) {
            Long b = before.get(e.getKey());
            total += b == null ? e.getValue() : e.getValue() - b;
        }
        return total;
    }

    /** The VMM's thread names (a data plane in the VMM has net-io threads; vhost-net and vhost-user have none). */
    private void threads(long pid) {
        List<String> names = new ArrayList<>();
        try (var tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
            for (Path t : tasks.toList()) {
                names.add(Files.readString(t.resolve("comm")).strip());
            }
        } catch (IOException e) {
            names.add("? " + e.getMessage());
        }
        note("VMM threads: " + String.join(",", names.stream().sorted().toList()));
    }

    /** Types {@code text} and Enter on the VMM's stdin, the guest's serial console. */
    private void type(String text) {
        try {
            OutputStream in = vmm.getOutputStream();
            in.write((text + "\n").getBytes(StandardCharsets.UTF_8));
            in.flush();
            note("typed \"" + text + "\" and Enter on the VMM's stdin");
        } catch (IOException e) {
            note("typing on the VMM's stdin failed: " + e.getMessage());
        }
    }

    /** QMP: set_link net0 off, a second later on, then system_reset; each reply and event is noted. */
    private void flapLink() {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(qmp));
            BufferedReader in = new BufferedReader(new InputStreamReader(Channels.newInputStream(ch), StandardCharsets.UTF_8));
            OutputStream o = Channels.newOutputStream(ch);
            note("qmp greeting: " + in.readLine());
            qmpCommand(in, o, "{\"execute\":\"qmp_capabilities\"}");
            qmpCommand(in, o, "{\"execute\":\"set_link\",\"arguments\":{\"name\":\"net0\",\"up\":false}}");
            Thread.sleep(1500);
            qmpCommand(in, o, "{\"execute\":\"set_link\",\"arguments\":{\"name\":\"net0\",\"up\":true}}");
            // refused for a Linux guest: the reply says why, and the guest runs on
            qmpCommand(in, o, "{\"execute\":\"system_reset\"}");
        } catch (IOException | InterruptedException e) {
            note("qmp failed: " + e);
        }
    }

    private void qmpCommand(BufferedReader in, OutputStream o, String command) throws IOException {
        o.write((command + "\n").getBytes(StandardCharsets.UTF_8));
        o.flush();
        for (String reply; (reply = in.readLine()) != null; ) {
            note("qmp " + command + " -> " + reply);
            if (!reply.contains("\"event\"")) {
                return;
            }
        }
    }

    private void shell(String... cmd) {
        note(String.join(" ", cmd) + ": " + capture(List.of(cmd)).strip());
    }

    private static String capture(List<String> cmd) {
        try {
            ProcessBuilder b = new ProcessBuilder(cmd).redirectErrorStream(true);
            b.environment().put("LC_ALL", "C");
            Process p = b.start();
            p.getOutputStream().close();
            String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            p.waitFor(60, TimeUnit.SECONDS);
            return text + (p.exitValue() == 0 ? "" : "(exit " + p.exitValue() + ")");
        } catch (IOException | InterruptedException e) {
            return "could not run " + cmd + ": " + e.getMessage();
        }
    }
}
