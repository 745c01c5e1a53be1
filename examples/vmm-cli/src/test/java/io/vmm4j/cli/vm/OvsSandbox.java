package io.vmm4j.cli.vm;

import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.tap.CommandResult;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A private Open vSwitch for one test: ovsdb-server and ovs-vswitchd started from a temporary
 * directory (OVS_RUNDIR, OVS_DBDIR, OVS_LOGDIR, OVS_SYSCONFDIR all point there, so nothing of a
 * system OVS is read or touched), inside a network namespace, and stopped on close, with a check
 * that both processes are gone. With DPDK it runs {@code ovs-vswitchd-dpdk} with its PMD on one
 * core and 512 MiB of 2 MiB hugepages (Documentation/intro/install/dpdk.rst: dpdk-init,
 * dpdk-socket-mem, dpdk-lcore-mask, pmd-cpu-mask).
 */
final class OvsSandbox implements AutoCloseable {
    static final String SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema";
    static final String DPDK_VSWITCHD = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk";

    private final Path dir;
    private final String netns;
    private final boolean dpdk;
    private long dbPid = -1;
    private long vswitchdPid = -1;
    private int vswitchdStarts;

    private OvsSandbox(Path dir, String netns, boolean dpdk) {
        this.dir = dir;
        this.netns = netns;
        this.dpdk = dpdk;
    }

    /** Skips (fails under CI=true) unless OVS is installed; with {@code dpdk}, its DPDK build too. */
    static void require(boolean dpdk) {
        HostRequirements.requireRoot("Open vSwitch daemons");
        HostRequirements.requireCommand("ovsdb-server", "openvswitch-switch");
        HostRequirements.requireCommand("ovs-vsctl", "openvswitch-switch");
        HostRequirements.requireFile(SCHEMA, "apt-get install openvswitch-switch");
        if (dpdk) {
            HostRequirements.requireFile(DPDK_VSWITCHD, "apt-get install openvswitch-switch-dpdk");
        }
    }

    /** Starts ovsdb-server and ovs-vswitchd in {@code netns} (null: ours); {@code dpdkConfig} is set before vswitchd starts. */
    static OvsSandbox start(String netns, boolean dpdk, Map<String, String> dpdkConfig) throws Exception {
        OvsSandbox ovs = new OvsSandbox(Files.createTempDirectory("vmm4j-ovs"), netns, dpdk);
        try {
            run(List.of("ovsdb-tool", "create", ovs.dir.resolve("conf.db").toString(), SCHEMA)).orThrow("create the OVS database");
            run(ovs.inNetns(List.of("ovsdb-server", "--remote=punix:" + ovs.dbSocket(), "--pidfile=" + ovs.dir.resolve("ovsdb-server.pid"),
                    "--detach", "--log-file=" + ovs.dir.resolve("ovsdb-server.log"), "--unixctl=" + ovs.dir.resolve("ovsdb-server.ctl"),
                    ovs.dir.resolve("conf.db").toString()))).orThrow("start ovsdb-server");
            ovs.dbPid = ovs.pidOf("ovsdb-server.pid");
            ovs.vsctl("--no-wait", "init");
            if (dpdk) {
                List<String> args = new ArrayList<>(List.of("--no-wait", "set", "Open_vSwitch", "."));
                dpdkConfig.forEach((k, v) -> args.add("other_config:" + k + "=" + v));
                ovs.vsctl(args.toArray(String[]::new));
            }
            ovs.startVswitchd();
            return ovs;
        } catch (Exception | AssertionError e) {
            ovs.close();
            throw e;
        }
    }

    /** The environment a client (ovs-vsctl, our VMM) needs to find this OVS's database. */
    String rundirEnv() {
        return "OVS_RUNDIR=" + dir;
    }

    /** {@code ip netns exec NS env OVS_RUNDIR=DIR}: the prefix that runs a process in the namespace, as a client of this OVS. */
    List<String> prefix() {
        List<String> p = new ArrayList<>();
        if (netns != null) {
            p.addAll(List.of("ip", "netns", "exec", netns));
        }
        p.addAll(List.of("env", rundirEnv(), "OVS_DBDIR=" + dir, "OVS_LOGDIR=" + dir, "OVS_SYSCONFDIR=" + dir));
        return p;
    }

    Path dir() {
        return dir;
    }

    Path dbSocket() {
        return dir.resolve("db.sock");
    }

    /** {@code ovs-vsctl ARGS} against this OVS; throws when it fails. */
    String vsctl(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("ovs-vsctl", "--db=unix:" + dbSocket(), "--timeout=20"));
        cmd.addAll(List.of(args));
        return run(cmd).orThrow("ovs-vsctl " + String.join(" ", args)).stdout().strip();
    }

    /** The ports of {@code bridge}, one name per element. */
    List<String> ports(String bridge) throws IOException, InterruptedException {
        String out = vsctl("list-ports", bridge);
        return out.isEmpty() ? List.of() : out.lines().toList();
    }

    void startVswitchd() throws Exception {
        vswitchdStarts++;
        String binary = dpdk ? DPDK_VSWITCHD : "ovs-vswitchd";
        Path log = dir.resolve("ovs-vswitchd.log");
        CommandResult r = run(inNetns(List.of(binary, "unix:" + dbSocket(), "--pidfile=" + dir.resolve("ovs-vswitchd.pid"), "--detach",
                "--log-file=" + log, "--unixctl=" + dir.resolve("ovs-vswitchd.ctl"))));
        if (!r.succeeded()) {
            throw new AssertionError("ovs-vswitchd did not start: " + r.stderr() + "\n" + log());
        }
        vswitchdPid = pidOf("ovs-vswitchd.pid");
    }

    /** Stops ovs-vswitchd ({@code ovs-appctl exit}, then SIGKILL if it lingers) and waits until it is gone. */
    void stopVswitchd() throws Exception {
        stop("ovs-vswitchd.ctl", vswitchdPid);
        vswitchdPid = -1;
    }

    /** How many times ovs-vswitchd was started. */
    int vswitchdStarts() {
        return vswitchdStarts;
    }

    String log() {
        try {
            return Files.readString(dir.resolve("ovs-vswitchd.log"));
        } catch (IOException e) {
            return "<no ovs-vswitchd.log: " + e.getMessage() + ">";
        }
    }

    /** The PIDs of the daemons still alive (empty after close). */
    List<Long> livePids() {
        List<Long> live = new ArrayList<>();
        for (long pid : new long[] {dbPid, vswitchdPid}) {
            if (running(pid)) {
                live.add(pid);
            }
        }
        return live;
    }

    /** Whether {@code pid} runs: a zombie (state Z in /proc/PID/stat, proc(5)) has exited and only waits for its reaper. */
    static boolean running(long pid) {
        if (pid <= 0) {
            return false;
        }
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            return stat.charAt(stat.lastIndexOf(')') + 2) != 'Z';
        } catch (IOException gone) {
            return false;
        }
    }

    private void stop(String ctl, long pid) throws IOException, InterruptedException {
        if (pid <= 0) {
            return;
        }
        run(List.of("ovs-appctl", "-t", dir.resolve(ctl).toString(), "--timeout=10", "exit"));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (running(pid) && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        if (running(pid)) {
            ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
            Thread.sleep(500);
        }
    }

    private long pidOf(String file) throws IOException {
        return Long.parseLong(Files.readString(dir.resolve(file)).strip());
    }

    private List<String> inNetns(List<String> command) {
        List<String> cmd = new ArrayList<>();
        if (netns != null) {
            cmd.addAll(List.of("ip", "netns", "exec", netns));
        }
        cmd.addAll(List.of("env", rundirEnv(), "OVS_DBDIR=" + dir, "OVS_LOGDIR=" + dir, "OVS_SYSCONFDIR=" + dir));
        cmd.addAll(command);
        return cmd;
    }

    static CommandResult run(List<String> command) throws IOException, InterruptedException {
        Path out = Files.createTempFile("ovs-cmd", ".out");
        Path err = Files.createTempFile("ovs-cmd", ".err");
        try {
            Process p = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("`" + String.join(" ", command) + "` did not finish in 60 s");
            }
            return new CommandResult(command, p.exitValue(), Files.readString(out), Files.readString(err));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    /** Stops both daemons and removes the directory; asserts that neither is left running. */
    @Override
    public void close() throws IOException {
        try {
            try {
                stop("ovs-vswitchd.ctl", vswitchdPid);
                stop("ovsdb-server.ctl", dbPid);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                ProcessHandle.of(vswitchdPid).ifPresent(ProcessHandle::destroyForcibly);
                ProcessHandle.of(dbPid).ifPresent(ProcessHandle::destroyForcibly);
            }
            List<Long> live = livePids();
            assertTrue(live.isEmpty(), "OVS daemons still running after stop: " + live);
        } finally {
            try (Stream<Path> files = Files.walk(dir)) {
                for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }
}
