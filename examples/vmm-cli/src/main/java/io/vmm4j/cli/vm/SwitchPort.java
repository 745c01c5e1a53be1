package io.vmm4j.cli.vm;

import io.vmm4j.cli.config.NetRules;
import io.vmm4j.tap.LinuxBridge;
import io.vmm4j.tap.OvsBridge;
import io.vmm4j.tap.TapException;

import java.io.PrintStream;

/**
 * A tap joining a software switch, as {@code --bridge [linux:|ovs:]NAME} asks: a Linux bridge
 * ({@code ip link set TAP master BR}; the kernel drops the port when the tap goes) or an Open
 * vSwitch bridge ({@code ovs-vsctl add-port}; OVS keeps the port's row until someone deletes it,
 * so this port deletes it on close and, should the JVM be stopped by SIGTERM or Ctrl-C first, from
 * a shutdown hook).
 */
public final class SwitchPort implements AutoCloseable {
    /** Which switch a {@code --bridge} value names. */
    public enum Kind { LINUX, OVS }

    /** A parsed {@code --bridge} value: {@code NAME} or {@code linux:NAME} (a Linux bridge), {@code ovs:NAME} (Open vSwitch). */
    public record Spec(Kind kind, String name) {
        public static Spec parse(String value) {
            if (value.startsWith("ovs:")) {
                return new Spec(Kind.OVS, value.substring(4));
            }
            if (value.startsWith("linux:")) {
                return new Spec(Kind.LINUX, value.substring(6));
            }
            return new Spec(Kind.LINUX, value);
        }

        /** Why {@code value} is not a --bridge value, or null. */
        public static String problem(String value) {
            Spec spec = parse(value);
            String name = NetRules.interfaceName(spec.name);
            if (name == null) {
                return null;
            }
            return (spec.name.equals(value) ? "" : "the bridge name in '" + value + "': ") + name
                    + " (give NAME or linux:NAME for a Linux bridge, ovs:NAME for an Open vSwitch bridge)";
        }

        @Override
        public String toString() {
            return (kind == Kind.OVS ? "Open vSwitch bridge " : "bridge ") + name;
        }
    }

    private final OvsBridge.Port ovsPort;
    private final Thread onExit;

    private SwitchPort(OvsBridge.Port ovsPort, Thread onExit) {
        this.ovsPort = ovsPort;
        this.onExit = onExit;
    }

    /**
     * Makes tap {@code tap} a port of the switch {@code flag} ({@code --bridge}) names; a failure
     * names the flag and its value. The tap must stay open as long as the port.
     */
    public static SwitchPort attach(String flag, String value, String tap, PrintStream log, String who) {
        Spec spec = Spec.parse(value);
        try {
            if (spec.kind == Kind.LINUX) {
                LinuxBridge.attach(spec.name, tap);
                log.printf("%s: tap %s joined bridge %s%n", who, tap, spec.name);
                return new SwitchPort(null, null);
            }
            OvsBridge.Port port = OvsBridge.existing(spec.name).addPort(tap);
            Thread hook = Thread.ofPlatform().name("ovs-port-cleanup").unstarted(() -> {
                try {
                    port.delete();
                } catch (RuntimeException e) {
                    System.err.println(who + ": on exit, " + e.getMessage());
                }
            });
            Runtime.getRuntime().addShutdownHook(hook);
            log.printf("%s: tap %s is a port of Open vSwitch bridge %s (removed again at exit)%n", who, tap, spec.name);
            return new SwitchPort(port, hook);
        } catch (TapException e) {
            throw new ToyVm.VmException(flag + " " + value + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        if (ovsPort == null) {
            return;
        }
        try {
            ovsPort.delete();
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(onExit);
            } catch (IllegalStateException shuttingDown) {
                // the hook runs, or ran, and finds the port deleted
            }
        }
    }

    @Override
    public String toString() {
        return ovsPort == null ? "Linux bridge port" : ovsPort.toString();
    }
}
