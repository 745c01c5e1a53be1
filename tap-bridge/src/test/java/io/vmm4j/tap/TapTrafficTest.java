package io.vmm4j.tap;

import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.concurrent.ThreadLocalRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A real tap in a fresh network namespace, driven the way a guest drives it: frames with a
 * 12-byte virtio_net_hdr_v1 in front go in through the queue fd, and the kernel's answers come
 * out of it.
 */
class TapTrafficTest {
    private static final int HEADER = TapDevice.VNET_HEADER_V1_SIZE;

    @BeforeEach
    void requireTap() {
        HostRequirements.requireRoot("creating taps and network namespaces needs CAP_NET_ADMIN");
        HostRequirements.requireFile(TapDevice.TUN_PATH, "load the tun module: modprobe tun");
    }

    @Test
    void namespaceAnswersArpAndPingThroughTheTapFd() {
        int subnet = ThreadLocalRandom.current().nextInt(1, 255);
        byte[] hostIp = Frames.ipv4("10.77." + subnet + ".1");
        byte[] guestIp = Frames.ipv4("10.77." + subnet + ".2");
        byte[] guestMac = Frames.randomGuestMac();
        try (NetNamespace ns = NetNamespace.create(ScratchNames.namespace());
             TapDevice tap = TapDevice.open(ScratchNames.tap(), 1, HEADER)) {
            assertEquals(HEADER, tap.kernelVnetHeaderSize(), "TUNGETVNETHDRSZ after open");
            tap.moveToNamespace(ns);
            tap.addAddress("10.77." + subnet + ".1/24");
            tap.setUp();
            byte[] tapMac = macOf(ns, tap.name());

            tap.send(0, Frames.withZeroHeader(HEADER, Frames.arpRequest(guestMac, guestIp, hostIp)));
            byte[] arp = FrameWaiter.await(tap, 0, f -> Frames.isArpReply(f, hostIp, guestMac, guestIp), 1000,
                    "ARP reply for " + Arrays.toString(hostIp));
            // 12 bytes of header, all zero: nothing to checksum or segment; then the frame addressed to the guest
            assertArrayEquals(new byte[HEADER], Arrays.copyOf(arp, HEADER), "vnet header of the ARP reply");
            assertArrayEquals(guestMac, Frames.slice(arp, HEADER, 6), "Ethernet destination right after a 12-byte header");
            assertArrayEquals(tapMac, Frames.slice(arp, HEADER + 6, 6), "Ethernet source is the tap's MAC");
            assertEquals(Frames.ETHERTYPE_ARP, Frames.u16(arp, HEADER + 12));
            assertArrayEquals(tapMac, Frames.slice(arp, HEADER + Frames.ETH_HEADER + 8, 6), "ARP sender hardware address");

            byte[] payload = new byte[56];
            ThreadLocalRandom.current().nextBytes(payload);
            int id = ThreadLocalRandom.current().nextInt(1, 0xFFFF);
            tap.send(0, Frames.withZeroHeader(HEADER, Frames.icmpEchoRequest(guestMac, tapMac, guestIp, hostIp, id, 1, payload)));
            byte[] reply = FrameWaiter.await(tap, 0, f -> Frames.isIpv4To(f, 1, guestIp), 1000, "ICMP echo reply");
            byte[] frame = Frames.ethernetPart(reply, reply.length, HEADER);
            assertArrayEquals(new byte[HEADER], Arrays.copyOf(reply, HEADER), "vnet header of the echo reply");
            assertArrayEquals(guestMac, Frames.slice(frame, 0, 6));
            assertEquals(0, Frames.checksum(frame, Frames.ETH_HEADER, 20), "IPv4 header checksum");
            assertArrayEquals(hostIp, Frames.slice(frame, Frames.ETH_HEADER + 12, 4), "reply comes from the tap's address");
            int icmp = Frames.ipv4PayloadOffset(frame);
            assertEquals(0, frame[icmp], "ICMP type echo reply");
            assertEquals(id, Frames.u16(frame, icmp + 4), "echo identifier");
            assertEquals(1, Frames.u16(frame, icmp + 6), "echo sequence");
            assertArrayEquals(payload, Frames.slice(frame, icmp + 8, payload.length), "echo payload");
            assertEquals(0, Frames.checksum(frame, icmp, frame.length - icmp), "ICMP checksum");
        }
    }

    /** An empty name means {@value TapDevice#DEFAULT_NAME_PATTERN}; a test pattern with the vt prefix shows the kernel fills in %d. */
    @Test
    void kernelFillsInTheNumberOfANamePattern() {
        String pattern = ScratchNames.tap() + "%d";
        try (TapDevice tap = TapDevice.open(pattern, 1, HEADER)) {
            assertEquals(pattern.replace("%d", "0"), tap.name());
            assertTrue(Files.exists(Path.of("/sys/class/net", tap.name())), "the tap exists under its resolved name");
        }
        assertFalse(Files.exists(Path.of("/sys/class/net", pattern.replace("%d", "0"))), "closing the last fd removed the tap");
    }

    /** The interface's MAC as ip reports it, e.g. {@code link/ether 1e:66:cd:ba:ae:bb}. */
    static byte[] macOf(NetNamespace ns, String ifname) {
        String out = ns.exec("ip", "-br", "link", "show", "dev", ifname).orThrow("read the MAC of " + ifname).stdout();
        String[] fields = out.trim().split("\\s+");
        return HexFormat.ofDelimiter(":").parseHex(fields[2]);
    }
}
