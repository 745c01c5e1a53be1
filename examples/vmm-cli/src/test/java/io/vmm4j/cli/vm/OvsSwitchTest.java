package io.vmm4j.cli.vm;

import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.tap.NetNamespace;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code --bridge ovs:BR}: the VMM's tap (and the vhost-user daemon's) as a port of an Open vSwitch
 * bridge, with a private OVS (userspace datapath: this host has no openvswitch kernel module) in a
 * fresh network namespace. The port is added at start and deleted at exit: a normal end, SIGTERM,
 * and a start-up that fails after the port was added.
 */
class OvsSwitchTest {
    private static final String BRIDGE = "vtovs0";
    /** A JVM ended by SIGTERM exits with 128 + 15, after its shutdown hooks ran. */
    private static final int SIGTERM_EXIT = 143;

    private NetNamespace ns;
    private OvsSandbox ovs;

    @BeforeEach
    void startOvs() throws Exception {
        HostRequirements.requireTapsAndNamespaces("taps on an Open vSwitch bridge in a network namespace");
        OvsSandbox.require(false);
        ns = NetNamespace.create(ToyVmNetworkTest.unique("vtov"));
        ovs = OvsSandbox.start(ns.name(), false, Map.of());
        ovs.vsctl("add-br", BRIDGE, "--", "set", "bridge", BRIDGE, "datapath_type=netdev");
    }

    @AfterEach
    void stopOvs() throws Exception {
        try {
            if (ovs != null) {
                ovs.close();
            }
        } finally {
            if (ns != null) {
                ns.close();
                assertFalse(Files.exists(Path.of("/run/netns", ns.name())), "namespace " + ns.name() + " is gone");
            }
        }
    }

    @SuppressWarnings("try") // a resource closed early on purpose
    @Test
    void twoVmsOnOneOvsBridgePingEachOtherAndTheirPortsAreGoneAfterExit() throws Exception {
        try (VmmProcess second = VmmProcess.start(ovs.prefix(), "run", "--bridge", "ovs:" + BRIDGE, "--tap", "vtovsb",
                "--guest-ip", "10.0.3.12", "--mac", "52:54:00:00:03:12", "--count", "0", "--serve", "20", "--json")) {
            second.awaitOutput("guest: serving at 10.0.3.12", 30);
            try (VmmProcess first = VmmProcess.start(ovs.prefix(), "run", "--bridge", "ovs:" + BRIDGE, "--tap", "vtovsa",
                    "--guest-ip", "10.0.3.11", "--mac", "52:54:00:00:03:11", "--ping", "10.0.3.12", "--count", "5", "--json")) {
                first.awaitOutput("guest: virtio-net up", 30);
                assertEquals(List.of("vtovsa", "vtovsb"), ovs.ports(BRIDGE).stream().sorted().toList(), "both taps are ports");
                assertEquals(0, first.waitFor(60), first.describe());
                assertEquals(5, first.json().get("ping").get("received").asInt(), first.describe());
                assertTrue(first.stderr().contains("tap vtovsa is a port of Open vSwitch bridge " + BRIDGE), first.describe());
            }
            assertEquals(List.of("vtovsb"), ovs.ports(BRIDGE), "the first VM's port went with it");
            assertEquals(SIGTERM_EXIT, second.terminate(30), "SIGTERM ends the serving VM: " + second.describe());
        }
        assertEquals(List.of(), ovs.ports(BRIDGE), "the second VM's port went with its SIGTERM");
        assertFalse(ns.exec("ip", "link", "show", "vtovsa").succeeded(), "tap vtovsa is gone");
        assertFalse(ns.exec("ip", "link", "show", "vtovsb").succeeded(), "tap vtovsb is gone");
        assertEquals("", ovs.vsctl("--bare", "--columns=name", "find", "Interface", "name=vtovsa"), "no Interface row is left");
        assertFalse(ovs.log().contains("error receiving data from vtovs"), "each tap was up before it became a port and stayed up "
                + "until ovs-vswitchd had dropped it (a down tap answers OVS with ENETDOWN):\n" + ovs.log());
    }

    @Test
    void theVhostUserDaemonsTapOnOvsCarriesAVmsPingsToAVmOnATapAndItsPortGoesWithSigterm() throws Exception {
        Path socket = ovs.dir().resolve("vu.sock");
        try (VmmProcess daemon = VmmProcess.start(ovs.prefix(), "vhost-user-backend", "--socket", socket.toString(), "--tap", "vtovsd",
                "--bridge", "ovs:" + BRIDGE);
             VmmProcess served = VmmProcess.start(ovs.prefix(), "run", "--bridge", "ovs:" + BRIDGE, "--tap", "vtovsb",
                     "--guest-ip", "10.0.3.12", "--mac", "52:54:00:00:03:12", "--count", "0", "--serve", "20", "--json")) {
            daemon.awaitOutput("listening on " + socket, 30);
            assertTrue(daemon.stdout().contains("tap vtovsd is a port of Open vSwitch bridge " + BRIDGE), daemon.describe());
            served.awaitOutput("guest: serving at 10.0.3.12", 30);
            try (VmmProcess pinger = VmmProcess.start(ovs.prefix(), "run", "--backend", "vhost-user", "--socket", socket.toString(),
                    "--guest-ip", "10.0.3.11", "--mac", "52:54:00:00:03:11", "--ping", "10.0.3.12", "--count", "5", "--json")) {
                assertEquals(0, pinger.waitFor(60), pinger.describe() + "\ndaemon:\n" + daemon.describe());
                assertEquals(5, pinger.json().get("ping").get("received").asInt(), pinger.describe());
            }
            assertEquals(SIGTERM_EXIT, daemon.terminate(30), daemon.describe());
            assertEquals(List.of("vtovsb"), ovs.ports(BRIDGE), "the daemon's port went with its SIGTERM");
            served.terminate(30);
        }
        assertEquals(List.of(), ovs.ports(BRIDGE));
    }

    @SuppressWarnings("try") // the blocker only holds the port
    @Test
    void aStartUpThatFailsAfterThePortWasAddedDeletesThePort() throws Exception {
        // the metrics endpoint starts after the NIC: a port already taken fails the start-up once the OVS port exists
        ns.ip("bring lo up", "link", "set", "lo", "up");
        // a fresh namespace has every port free: take one for the metrics endpoint inside it
        try (VmmProcess blocker = VmmProcess.startRaw(List.of("ip", "netns", "exec", ns.name(), "socat", "TCP-LISTEN:19464,bind=127.0.0.1",
                "-"))) {
            Thread.sleep(500);
            try (VmmProcess vmm = VmmProcess.start(ovs.prefix(), "run", "--bridge", "ovs:" + BRIDGE, "--tap", "vtovsf",
                    "--metrics", "127.0.0.1:19464", "--count", "1")) {
                int exit = vmm.waitFor(60);
                assertNotEquals(0, exit, vmm.describe());
                assertTrue(vmm.describe().contains("tap vtovsf is a port of Open vSwitch bridge"), "the port was added first: "
                        + vmm.describe());
            }
        }
        assertEquals(List.of(), ovs.ports(BRIDGE), "the failed start-up removed its port");
    }

    @Test
    void aMissingBridgeOrOvsIsRefusedNamingTheFlag() throws Exception {
        try (VmmProcess vmm = VmmProcess.start(ovs.prefix(), "run", "--bridge", "ovs:nosuchbr", "--count", "1")) {
            assertNotEquals(0, vmm.waitFor(60));
            assertTrue(vmm.stderr().contains("--bridge ovs:nosuchbr: Open vSwitch has no bridge nosuchbr (its bridges: " + BRIDGE
                    + "); create it first: ovs-vsctl add-br nosuchbr"), vmm.describe());
        }
        try (VmmProcess vmm = VmmProcess.start(List.of("ip", "netns", "exec", ns.name(), "env", "OVS_RUNDIR=/nonexistent"), "run",
                "--bridge", "ovs:" + BRIDGE, "--count", "1")) {
            assertNotEquals(0, vmm.waitFor(60));
            assertTrue(vmm.stderr().contains("--bridge ovs:" + BRIDGE + ": cannot reach Open vSwitch's database"), vmm.describe());
        }
        try (VmmProcess daemon = VmmProcess.start(ovs.prefix(), "vhost-user-backend", "--socket", ovs.dir().resolve("x.sock").toString(),
                "--tap", "vtovsx", "--bridge", "ovs:nosuchbr")) {
            assertNotEquals(0, daemon.waitFor(60));
            assertTrue(daemon.describe().contains("--bridge ovs:nosuchbr: Open vSwitch has no bridge nosuchbr"), daemon.describe());
        }
        assertFalse(ns.exec("ip", "link", "show", "vtovsx").succeeded(), "the daemon's tap is gone");
        assertEquals(List.of(), ovs.ports(BRIDGE));
    }

    @Test
    void aVswitchdThatDiesUnderARunningVmDoesNotHoldUpItsExitAndItsPortRowGoes() throws Exception {
        try (VmmProcess vmm = VmmProcess.start(ovs.prefix(), "run", "--bridge", "ovs:" + BRIDGE, "--tap", "vtovsk",
                "--count", "0", "--serve", "30")) {
            vmm.awaitOutput("guest: serving at", 30);
            assertEquals(List.of("vtovsk"), ovs.ports(BRIDGE));
            ovs.stopVswitchd(); // the port's deletion now finds nobody to wait for
            long start = System.nanoTime();
            assertEquals(SIGTERM_EXIT, vmm.terminate(30), vmm.describe());
            long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - start);
            assertTrue(seconds < 15, "the exit waited " + seconds + " s on a dead ovs-vswitchd: " + vmm.describe());
            assertFalse(vmm.describe().contains("on exit,"), "the port's deletion did not fail: " + vmm.describe());
        }
        assertEquals(List.of(), ovs.ports(BRIDGE), "the row went without ovs-vswitchd");
    }

    @Test
    void aVswitchdThatIsNotRunningIsSaidAndLeavesNoPortRow() throws Exception {
        ovs.stopVswitchd(); // the database answers, nobody applies what it is told
        try (VmmProcess vmm = VmmProcess.start(ovs.prefix(), "run", "--bridge", "ovs:" + BRIDGE, "--tap", "vtovsn", "--count", "1")) {
            assertNotEquals(0, vmm.waitFor(60));
            assertTrue(vmm.stderr().contains("--bridge ovs:" + BRIDGE + ": Open vSwitch's database took port vtovsn on " + BRIDGE
                    + " but ovs-vswitchd did not apply it within 8 s"), vmm.describe());
        }
        assertEquals(List.of(), ovs.ports(BRIDGE), "the row the database took is deleted again");
    }
}
