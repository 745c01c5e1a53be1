package io.vmm4j.tap;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * An existing Open vSwitch bridge that taps of several VMs can join, driven with {@code ovs-vsctl}
 * (the database is the switch's API; the command in a failure message is what an operator runs to
 * reproduce it). {@code ovs-vsctl} finds the database the usual way: {@code $OVS_RUNDIR/db.sock},
 * else {@code /var/run/openvswitch/db.sock} (ovs-vsctl(8), "--db").
 *
 * <p>Unlike a Linux bridge, which forgets a port when its tap is deleted, OVS keeps the port's
 * row in its database after the interface is gone: whoever adds a port must delete it, so
 * {@link #addPort} returns the port as a resource to close.
 */
public final class OvsBridge {
    /** Seconds ovs-vsctl waits for the database and for ovs-vswitchd to apply a change (ovs-vsctl --timeout). */
    static final int VSCTL_TIMEOUT_SECONDS = 8;
    /** ovs-vsctl's exit status when --timeout ends it: 128 + SIGALRM (ovs-vsctl(8), "--timeout"). */
    static final int VSCTL_TIMED_OUT = 142;
    /** Seconds a port's deletion waits for ovs-vswitchd to drop it before it only deletes the row. */
    static final int DELETE_WAIT_SECONDS = 3;

    private static volatile Path vsctlPath;

    private final String name;

    private OvsBridge(String name) {
        this.name = name;
    }

    /**
     * The bridge {@code name}, checked to exist: throws naming what is missing (ovs-vsctl, the
     * database, the bridge) and what to do.
     */
    public static OvsBridge existing(String name) {
        InterfaceName.requireValid(name, "Open vSwitch bridge");
        // br-exists: exit 0 if the bridge exists, 2 if not, 1 on any other error (ovs-vsctl(8))
        CommandResult result = vsctl("br-exists", name);
        if (result.exitCode() == 2) {
            CommandResult bridges = vsctl("list-br");
            String known = bridges.succeeded() ? String.join(", ", bridges.stdout().strip().lines().toList()) : "";
            throw new TapException("Open vSwitch has no bridge " + name + " (its bridges: " + (known.isEmpty() ? "none" : known)
                    + "); create it first: ovs-vsctl add-br " + name + " -- set bridge " + name + " datapath_type=netdev "
                    + "(netdev: the userspace datapath, for a host without the openvswitch kernel module)");
        }
        if (!result.succeeded()) {
            throw new TapException("cannot reach Open vSwitch's database: `" + result.commandLine() + "` exited with " + result.exitCode()
                    + ": " + said(result) + "; start ovsdb-server and ovs-vswitchd (service openvswitch-switch start), or point "
                    + "OVS_RUNDIR at the directory of the db.sock of the one you run");
        }
        return new OvsBridge(name);
    }

    public String name() {
        return name;
    }

    /**
     * Adds interface {@code ifname} (a tap, in the namespace ovs-vswitchd runs in) as a port:
     * {@code ovs-vsctl --may-exist add-port BR IF}, which returns once ovs-vswitchd has the port
     * (no --no-wait). {@code --may-exist} takes over a row a killed VMM left for the same name.
     */
    public Port addPort(String ifname) {
        InterfaceName.requireValid(ifname, "port");
        CommandResult result = vsctl("--may-exist", "add-port", name, ifname);
        if (!result.succeeded()) {
            // the database may hold the row although ovs-vswitchd never applied it: do not leave the row behind
            deleteRow(name, ifname);
            if (result.exitCode() == VSCTL_TIMED_OUT) {
                throw new TapException("Open vSwitch's database took port " + ifname + " on " + name + " but ovs-vswitchd did not "
                        + "apply it within " + VSCTL_TIMEOUT_SECONDS + " s (`" + result.commandLine() + "` timed out): start "
                        + "ovs-vswitchd (service openvswitch-switch start), or check it with ovs-appctl version");
            }
            result.orThrow("add " + ifname + " to Open vSwitch bridge " + name);
        }
        String error = interfaceError(ifname);
        if (error != null) {
            deleteRow(name, ifname);
            throw new TapException("Open vSwitch could not open " + ifname + " as a port of " + name + ": " + error);
        }
        return new Port(name, ifname);
    }

    /**
     * {@code ovs-vsctl --no-wait --if-exists del-port}: the row goes from the database at once and
     * ovs-vswitchd drops the port when it reads that; for a port ovs-vswitchd never applied, and
     * when it does not answer (a VMM's exit must not wait on a dead ovs-vswitchd).
     */
    private static CommandResult deleteRow(String bridge, String ifname) {
        return vsctl("--no-wait", "--if-exists", "del-port", bridge, ifname);
    }

    /** The names of the ports of bridge {@code bridge} ({@code ovs-vsctl list-ports}); empty when it has none. */
    public static List<String> ports(String bridge) {
        CommandResult result = vsctl("list-ports", bridge).orThrow("list the ports of Open vSwitch bridge " + bridge);
        return result.stdout().strip().lines().filter(l -> !l.isBlank()).toList();
    }

    /** The interface's {@code error} column (set when ovs-vswitchd could not open it), or null. */
    private static String interfaceError(String ifname) {
        CommandResult result = vsctl("--if-exists", "get", "Interface", ifname, "error");
        if (!result.succeeded()) {
            return null;
        }
        String value = result.stdout().strip();
        return value.isEmpty() || value.equals("[]") ? null : value;
    }

    /** A port this process added; closing it deletes it ({@code ovs-vsctl --if-exists del-port}), once. */
    public static final class Port implements AutoCloseable {
        private final String bridge;
        private final String ifname;
        private boolean deleted;

        private Port(String bridge, String ifname) {
            this.bridge = bridge;
            this.ifname = ifname;
        }

        public String bridge() {
            return bridge;
        }

        public String name() {
            return ifname;
        }

        /**
         * Deletes the port; idempotent, also when someone else deleted it first. It waits (up to
         * {@link #DELETE_WAIT_SECONDS}) for ovs-vswitchd to drop the port, so the tap can go down
         * after it without ovs-vswitchd reading a down tap (ENETDOWN in its log); when ovs-vswitchd
         * does not answer in time, the row is deleted without waiting and the exit goes on.
         */
        public synchronized void delete() {
            if (deleted) {
                return;
            }
            if (!vsctl(DELETE_WAIT_SECONDS, "--if-exists", "del-port", bridge, ifname).succeeded()) {
                deleteRow(bridge, ifname).orThrow("remove " + ifname + " from Open vSwitch bridge " + bridge);
            }
            deleted = true;
        }

        @Override
        public void close() {
            delete();
        }

        @Override
        public String toString() {
            return "Open vSwitch port " + ifname + " on " + bridge;
        }
    }

    /** {@code ovs-vsctl --timeout=N args...}, however it ended. */
    static CommandResult vsctl(String... args) {
        return vsctl(VSCTL_TIMEOUT_SECONDS, args);
    }

    private static CommandResult vsctl(int timeoutSeconds, String... args) {
        List<String> command = new ArrayList<>();
        command.add(vsctlExecutable().toString());
        command.add("--timeout=" + timeoutSeconds);
        command.addAll(List.of(args));
        return HostCommand.run(command);
    }

    /** Whether ovs-vsctl is installed (PATH, or /usr/bin, /usr/sbin). */
    public static boolean installed() {
        return findVsctl() != null;
    }

    private static Path vsctlExecutable() {
        Path found = vsctlPath;
        if (found == null) {
            found = findVsctl();
            if (found == null) {
                throw new TapException("Open vSwitch's ovs-vsctl was not found on PATH or in /usr/bin, /usr/sbin: install it "
                        + "(apt-get install openvswitch-switch)");
            }
            vsctlPath = found;
        }
        return found;
    }

    private static Path findVsctl() {
        Set<String> dirs = new LinkedHashSet<>(List.of(System.getenv().getOrDefault("PATH", "").split(":")));
        dirs.addAll(List.of("/usr/bin", "/usr/sbin", "/bin", "/sbin"));
        for (String dir : dirs) {
            if (!dir.isEmpty()) {
                Path candidate = Path.of(dir, "ovs-vsctl");
                if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
                    return candidate;
                }
            }
        }
        return null;
    }

    private static String said(CommandResult result) {
        String text = result.stderr().isBlank() ? result.stdout().strip() : result.stderr().strip();
        return text.isEmpty() ? "(no output)" : text;
    }

    @Override
    public String toString() {
        return "Open vSwitch bridge " + name;
    }
}
