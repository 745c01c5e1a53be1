package io.vmm4j.cli.vm;

import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.tap.CommandResult;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * VMs on two "hosts" (network namespaces joined by a veth underlay) talk across a VXLAN overlay
 * that {@code scripts/vxlan-hosts} builds: a Linux bridge with the kernel's vxlan device, or a
 * private Open vSwitch per host with a {@code type=vxlan} port (userspace datapath and userspace
 * tunnelling). The guests run with MTU 1450 (VIRTIO_NET_F_MTU, the 50 bytes of VXLAN over IPv4
 * taken off the underlay's 1500): 5 pings of 1400 bytes and 2 of 1422 (a full 1450-byte frame)
 * cross the tunnel. {@code down} leaves no namespace, daemon or directory behind.
 */
class VxlanHostsTest {
    private static final int OVERLAY_MTU = 1450;

    private static Path script() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path s = dir.resolve("scripts/vxlan-hosts");
            if (Files.isExecutable(s)) {
                return s;
            }
        }
        throw new AssertionError("scripts/vxlan-hosts not found above " + Path.of("").toAbsolutePath());
    }

    private static CommandResult vxlanHosts(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(script().toString()));
        cmd.addAll(List.of(args));
        return OvsSandbox.run(cmd);
    }

    @ParameterizedTest(name = "switch {0}")
    @ValueSource(strings = {"linux", "ovs"})
    void aVmOnHostAPingsAVmOnHostBAcrossVxlan(String sw) throws Exception {
        HostRequirements.requireTapsAndNamespaces("two hosts as network namespaces with a VXLAN overlay");
        HostRequirements.requireCommand("ethtool", "ethtool");
        if (sw.equals("ovs")) {
            OvsSandbox.require(false);
        }
        String name = ToyVmNetworkTest.unique("vx");
        Path dir = Files.createTempDirectory("vmm4j-vxlan").resolve(name);
        String switchFlag = sw.equals("ovs") ? "ovs:br-int" : "br-vx";
        try {
            CommandResult up = vxlanHosts("up", "--switch", sw, "--name", name, "--dir", dir.toString());
            assertTrue(up.succeeded(), up.stdout() + up.stderr());
            List<String> onA = List.of(script().toString(), "exec", "a", "--name", name, "--dir", dir.toString(), "--");
            List<String> onB = List.of(script().toString(), "exec", "b", "--name", name, "--dir", dir.toString(), "--");
            try (VmmProcess b = VmmProcess.start(onB, "run", "--bridge", switchFlag, "--mtu", "" + OVERLAY_MTU, "--guest-ip", "10.0.42.2",
                    "--mac", "52:54:00:00:42:02", "--count", "0", "--serve", "30", "--json")) {
                b.awaitOutput("guest: serving at 10.0.42.2", 30);
                assertTrue(b.stderr().contains("mtu " + OVERLAY_MTU), "the guest took the device's MTU: " + b.describe());
                try (VmmProcess a = VmmProcess.start(onA, "run", "--bridge", switchFlag, "--mtu", "" + OVERLAY_MTU, "--guest-ip",
                        "10.0.42.1", "--mac", "52:54:00:00:42:01", "--ping", "10.0.42.2", "--count", "5", "--ping-size", "1400", "--json")) {
                    assertEquals(0, a.waitFor(60), a.describe());
                    assertEquals(5, a.json().get("ping").get("received").asInt(), a.describe());
                    assertTrue(a.json().get("features").toString().contains("\"MTU\""), "VIRTIO_NET_F_MTU acked: " + a.describe());
                }
                // the largest ping the MTU allows: 1422 + 8 ICMP + 20 IPv4 = 1450, a full frame through the tunnel
                try (VmmProcess a = VmmProcess.start(onA, "run", "--bridge", switchFlag, "--mtu", "" + OVERLAY_MTU, "--guest-ip",
                        "10.0.42.1", "--mac", "52:54:00:00:42:01", "--ping", "10.0.42.2", "--count", "2", "--ping-size", "1422", "--json")) {
                    assertEquals(0, a.waitFor(60), a.describe());
                    assertEquals(2, a.json().get("ping").get("received").asInt(), a.describe());
                }
                b.terminate(30);
            }
            if (sw.equals("ovs")) {
                for (String host : List.of("a", "b")) {
                    String ports = OvsSandbox.run(List.of(script().toString(), "exec", host, "--name", name, "--dir", dir.toString(), "--",
                            "ovs-vsctl", "list-ports", "br-int")).stdout().strip();
                    assertEquals("vxlan42", ports, "host " + host + ": only the tunnel is left on br-int");
                }
            }
        } finally {
            CommandResult down = vxlanHosts("down", "--name", name, "--dir", dir.toString());
            assertTrue(down.succeeded(), "down: " + down.stdout() + down.stderr());
            Files.deleteIfExists(dir.getParent());
        }
        CommandResult check = vxlanHosts("check", "--name", name, "--dir", dir.toString());
        assertTrue(check.succeeded(), "nothing left after down: " + check.stdout());
        assertFalse(OvsSandbox.run(List.of("ip", "netns", "list")).stdout().contains(name), "no namespace " + name + "-a/b left");
        CommandResult again = vxlanHosts("down", "--name", name, "--dir", dir.toString());
        assertTrue(again.succeeded(), "down is idempotent: " + again.stderr());
    }
}
