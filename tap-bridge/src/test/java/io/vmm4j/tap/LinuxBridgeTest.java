package io.vmm4j.tap;

import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Two "VMs" (taps) on one software bridge in a private namespace: the kernel switches frames between them. */
class LinuxBridgeTest {
    private static final int HEADER = TapDevice.VNET_HEADER_V1_SIZE;

    @BeforeEach
    void requireTap() {
        HostRequirements.requireRoot("creating taps, bridges and network namespaces needs CAP_NET_ADMIN");
        HostRequirements.requireFile(TapDevice.TUN_PATH, "load the tun module: modprobe tun");
    }

    @Test
    void bridgeFloodsABroadcastFromOneTapToTheOtherAndForwardsTheUnicastAnswer() {
        HostRequirements.requireCommand("bridge", "iproute2");
        byte[] macA = Frames.randomGuestMac();
        byte[] macB = Frames.randomGuestMac();
        byte[] ipA = Frames.ipv4("10.77.7.11");
        byte[] ipB = Frames.ipv4("10.77.7.12");
        try (NetNamespace ns = NetNamespace.create(ScratchNames.namespace());
             TapDevice vmA = TapDevice.open(ScratchNames.tap(), 1, HEADER);
             TapDevice vmB = TapDevice.open(ScratchNames.tap(), 1, HEADER);
             LinuxBridge bridge = LinuxBridge.create(ScratchNames.bridge(), ns)) {
            for (TapDevice tap : new TapDevice[] {vmA, vmB}) {
                tap.moveToNamespace(ns);
                bridge.addInterface(tap.name());
                tap.setUp();
            }
            bridge.up();
            String ports = ns.ip("list bridge ports", "-br", "link", "show", "master", bridge.name()).stdout();
            assertTrue(ports.contains(vmA.name()) && ports.contains(vmB.name()), ports);

            byte[] request = Frames.arpRequest(macA, ipA, ipB);
            vmA.send(0, Frames.withZeroHeader(HEADER, request));
            byte[] atB = FrameWaiter.await(vmB, 0, f -> Arrays.equals(f, request), 1000, "A's ARP broadcast");
            assertArrayEquals(new byte[HEADER], Arrays.copyOf(atB, HEADER), "plain frame, zero vnet header");

            // the bridge learned A's MAC from the broadcast, so B's unicast answer goes to A's port
            byte[] reply = Frames.ethernet(macA, macB, Frames.ETHERTYPE_ARP, arpReplyBody(macB, ipB, macA, ipA));
            vmB.send(0, Frames.withZeroHeader(HEADER, reply));
            FrameWaiter.await(vmA, 0, f -> Arrays.equals(f, reply), 1000, "B's unicast ARP reply");
            String fdb = ns.exec("bridge", "fdb", "show", "br", bridge.name()).orThrow("read the bridge's forwarding table").stdout();
            assertTrue(fdb.contains(Frames.mac(macA) + " dev " + vmA.name()), "bridge learned A's MAC on A's port:\n" + fdb);
        }
    }

    @Test
    void failuresNameTheIpCommandAndItsError() {
        try (NetNamespace ns = NetNamespace.create(ScratchNames.namespace());
             LinuxBridge bridge = LinuxBridge.create(ScratchNames.bridge(), ns)) {
            TapException e = assertThrows(TapException.class, () -> bridge.addInterface("vtnosuchdev"));
            assertTrue(e.getMessage().contains("could not add vtnosuchdev to bridge " + bridge.name()), e.getMessage());
            assertTrue(e.getMessage().contains("link set dev vtnosuchdev master " + bridge.name()), e.getMessage());
            assertTrue(e.getMessage().contains("Cannot find device"), e.getMessage());

            TapException twice = assertThrows(TapException.class, () -> LinuxBridge.create(bridge.name(), ns));
            assertTrue(twice.getMessage().contains("File exists"), twice.getMessage());

            bridge.delete();
            bridge.delete();
            assertFalse(ns.exec("ip", "link", "show", "dev", bridge.name()).succeeded(), "bridge is gone");
            assertThrows(IllegalStateException.class, bridge::up);
        }
    }

    private static byte[] arpReplyBody(byte[] senderMac, byte[] senderIp, byte[] targetMac, byte[] targetIp) {
        return ByteBuffer.allocate(28).putShort((short) 1).putShort((short) Frames.ETHERTYPE_IPV4)
                .put((byte) 6).put((byte) 4).putShort((short) 2)
                .put(senderMac).put(senderIp).put(targetMac).put(targetIp).array();
    }

    @Test
    void bridgeNameIsChecked() {
        assertEquals("bridge name 'a b' contains ' ', which Linux forbids in interface names ('/', ':', whitespace): "
                        + "choose another name",
                assertThrows(IllegalArgumentException.class, () -> LinuxBridge.create("a b")).getMessage());
    }
}
