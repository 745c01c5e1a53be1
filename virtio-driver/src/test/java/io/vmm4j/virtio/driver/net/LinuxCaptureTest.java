package io.vmm4j.virtio.driver.net;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static io.vmm4j.virtio.driver.net.LinuxCaptures.LINUX_IP;
import static io.vmm4j.virtio.driver.net.LinuxCaptures.LINUX_MAC;
import static io.vmm4j.virtio.driver.net.LinuxCaptures.PEER_IP;
import static io.vmm4j.virtio.driver.net.LinuxCaptures.PEER_MAC;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Frames a real Linux kernel sent (see {@link LinuxCaptures}): decoded, answered, and compared with ours. */
class LinuxCaptureTest {
    private final DropCounters drops = new DropCounters();

    @Test
    void decodesLinuxArpReply() {
        byte[] frame = Hex.bytes(LinuxCaptures.LINUX_ARP_REPLY);
        EthernetFrame ethernet = EthernetFrame.decode(frame, 0, frame.length, drops);
        assertNotNull(ethernet);
        assertEquals(PEER_MAC, ethernet.destination());
        assertEquals(LINUX_MAC, ethernet.source());
        assertEquals(EthernetFrame.TYPE_ARP, ethernet.etherType());
        assertEquals(14, ethernet.payloadOffset());
        assertEquals(28, ethernet.payloadLength());

        ArpPacket arp = ArpPacket.decode(frame, ethernet.payloadOffset(), ethernet.payloadLength(), drops);
        assertEquals(new ArpPacket(ArpPacket.REPLY, LINUX_MAC, LINUX_IP, PEER_MAC, PEER_IP), arp);
        assertEquals("ARP reply 10.0.0.1 is-at 52:54:00:12:34:56", arp.toString());
        assertEquals(0, drops.total());
    }

    @Test
    void decodesLinuxEchoReply() {
        byte[] frame = Hex.bytes(LinuxCaptures.LINUX_ECHO_REPLY);
        EthernetFrame ethernet = EthernetFrame.decode(frame, 0, frame.length, drops);
        assertEquals(EthernetFrame.TYPE_IPV4, ethernet.etherType());

        Ipv4Packet ip = Ipv4Packet.decode(frame, ethernet.payloadOffset(), ethernet.payloadLength(), drops);
        assertNotNull(ip);
        assertEquals(20, ip.headerLength());
        assertEquals(84, ip.totalLength());
        assertEquals(0xc0b5, ip.identification());
        assertFalse(ip.dontFragment(), "Linux sends echo replies without DF");
        assertEquals(64, ip.timeToLive());
        assertEquals(Ipv4Packet.PROTOCOL_ICMP, ip.protocol());
        assertEquals(LINUX_IP, ip.source());
        assertEquals(PEER_IP, ip.destination());
        assertEquals(34, ip.payloadOffset());
        assertEquals(64, ip.payloadLength());

        IcmpMessage icmp = IcmpMessage.decode(frame, ip.payloadOffset(), ip.payloadLength(), drops);
        assertNotNull(icmp);
        assertEquals(IcmpMessage.TYPE_ECHO_REPLY, icmp.type());
        assertEquals(0, icmp.code());
        assertEquals(1234, icmp.identifier());
        assertEquals(1, icmp.sequence());
        assertEquals(42, icmp.dataOffset());
        assertEquals(56, icmp.dataLength());
        byte[] request = Hex.bytes(LinuxCaptures.PEER_ECHO_REQUEST);
        assertArrayEquals(ReferenceChecksum.slice(request, 42, 98), ReferenceChecksum.slice(frame, 42, 98),
                "RFC 792: the echo data comes back unchanged");
        assertEquals(0, drops.total());
    }

    @Test
    void decodesLinuxUdpAndVerifiesItsChecksum() {
        byte[] frame = Hex.bytes(LinuxCaptures.LINUX_UDP);
        Ipv4Packet ip = Ipv4Packet.decode(frame, 14, frame.length - 14, drops);
        assertEquals(Ipv4Packet.PROTOCOL_UDP, ip.protocol());
        assertTrue(ip.dontFragment());
        UdpDatagram udp = UdpDatagram.decode(frame, ip.payloadOffset(), ip.payloadLength(), ip.source(),
                ip.destination(), drops);
        assertEquals(new UdpDatagram(40000, 7, 42, 16, true), udp);
        assertEquals("hello from linux", new String(frame, udp.payloadOffset(), udp.payloadLength()));

        frame[frame.length - 1] ^= 0x20; // "linuX": same length, so only the checksum can notice
        assertEquals(null, UdpDatagram.decode(frame, ip.payloadOffset(), ip.payloadLength(), ip.source(),
                ip.destination(), drops));
        assertEquals(1, drops.get(DropReason.UDP_BAD_CHECKSUM));
    }

    @Test
    void decodesLinuxArpRequestAndEchoRequest() {
        byte[] arpFrame = Hex.bytes(LinuxCaptures.LINUX_ARP_REQUEST);
        assertEquals(ArpPacket.request(LINUX_MAC, LINUX_IP, PEER_IP), ArpPacket.decode(arpFrame, 14, 28, drops));

        byte[] ping = Hex.bytes(LinuxCaptures.LINUX_ECHO_REQUEST);
        Ipv4Packet ip = Ipv4Packet.decode(ping, 14, ping.length - 14, drops);
        IcmpMessage icmp = IcmpMessage.decode(ping, ip.payloadOffset(), ip.payloadLength(), drops);
        assertEquals(new IcmpMessage(IcmpMessage.TYPE_ECHO_REQUEST, 0, 0x321f, 1, 42, 56), icmp);
        assertEquals(0, drops.total());
    }

    @Test
    void ethernetPaddingAfterTheDatagramIsIgnored() {
        // A NIC pads short frames to 60 bytes (IEEE 802.3 minimum without FCS); IPv4 total length says where data ends.
        byte[] udp = Hex.bytes(LinuxCaptures.LINUX_UDP);
        byte[] padded = new byte[udp.length + 10];
        System.arraycopy(udp, 0, padded, 0, udp.length);
        Ipv4Packet ip = Ipv4Packet.decode(padded, 14, padded.length - 14, drops);
        assertEquals(44, ip.totalLength());
        assertEquals(24, ip.payloadLength());
        assertEquals(16, UdpDatagram.decode(padded, ip.payloadOffset(), ip.payloadLength(), ip.source(),
                ip.destination(), drops).payloadLength());

        byte[] arp = Hex.bytes(LinuxCaptures.LINUX_ARP_REPLY);
        byte[] paddedArp = new byte[60];
        System.arraycopy(arp, 0, paddedArp, 0, arp.length);
        assertEquals(ArpPacket.REPLY, ArpPacket.decode(paddedArp, 14, 46, drops).operation());
        assertEquals(0, drops.total());
    }

    @Test
    void describesCapturedFrames() {
        assertEquals("52:54:00:12:34:56 > ff:ff:ff:ff:ff:ff, ARP who-has 10.0.0.2 tell 10.0.0.1",
                describe(LinuxCaptures.LINUX_ARP_REQUEST));
        assertEquals("52:54:00:12:34:56 > 52:54:00:ab:cd:ef, ARP reply 10.0.0.1 is-at 52:54:00:12:34:56",
                describe(LinuxCaptures.LINUX_ARP_REPLY));
        assertEquals("52:54:00:12:34:56 > 52:54:00:ab:cd:ef, IPv4 10.0.0.1 > 10.0.0.2: ICMP echo reply id 1234 seq 1"
                + " length 56", describe(LinuxCaptures.LINUX_ECHO_REPLY));
        assertEquals("52:54:00:12:34:56 > 52:54:00:ab:cd:ef, IPv4 10.0.0.1 > 10.0.0.2: UDP 40000 > 7 length 16",
                describe(LinuxCaptures.LINUX_UDP));
        assertEquals("52:54:00:12:34:56 > 33:33:00:00:00:16, ethertype 0x86dd, length 90",
                describe(LinuxCaptures.LINUX_MLD_REPORT));
        assertEquals("malformed (ETHERNET_TRUNCATED)", Frames.describe(new byte[13], 0, 13));

        byte[] broken = Hex.bytes(LinuxCaptures.LINUX_ECHO_REPLY);
        broken[24] ^= 1; // inside the IPv4 header checksum
        assertEquals("52:54:00:12:34:56 > 52:54:00:ab:cd:ef, malformed (IPV4_BAD_CHECKSUM)",
                Frames.describe(broken, 0, broken.length));
    }

    @Test
    void ourArpReplyIsByteForByteWhatLinuxSent() {
        Wire wire = new Wire();
        GuestNetStack asLinux = new GuestNetStack(LINUX_MAC, LINUX_IP, wire);
        byte[] request = Hex.bytes(LinuxCaptures.PEER_ARP_REQUEST);
        asLinux.receive(request, 0, request.length);
        assertArrayEquals(Hex.bytes(LinuxCaptures.LINUX_ARP_REPLY), wire.last(), () -> Hex.of(wire.last()));
    }

    @Test
    void ourEchoReplyCarriesTheSameIcmpMessageAsLinux() {
        Wire wire = new Wire();
        GuestNetStack asLinux = new GuestNetStack(LINUX_MAC, LINUX_IP, wire);
        byte[] request = Hex.bytes(LinuxCaptures.PEER_ECHO_REQUEST);
        asLinux.receive(request, 0, request.length);

        byte[] ours = wire.last();
        byte[] linux = Hex.bytes(LinuxCaptures.LINUX_ECHO_REPLY);
        assertEquals(linux.length, ours.length);
        assertArrayEquals(ReferenceChecksum.slice(linux, 0, 18), ReferenceChecksum.slice(ours, 0, 18),
                "Ethernet header, version/IHL, TOS and total length");
        assertArrayEquals(ReferenceChecksum.slice(linux, 22, 24), ReferenceChecksum.slice(ours, 22, 24), "TTL, protocol");
        assertArrayEquals(ReferenceChecksum.slice(linux, 26, 34), ReferenceChecksum.slice(ours, 26, 34), "addresses");
        assertArrayEquals(ReferenceChecksum.slice(linux, 34, linux.length), ReferenceChecksum.slice(ours, 34, ours.length),
                "the ICMP message, checksum included");
        // Identification and flags are the sender's choice (we set DF); our header checksum must still verify.
        assertEquals(0, ReferenceChecksum.of(ReferenceChecksum.slice(ours, 14, 34)));
    }

    @Test
    void answersLinuxArpRequestAndPingAndDeliversItsUdp() {
        Wire wire = new Wire();
        GuestNetStack peer = new GuestNetStack(PEER_MAC, PEER_IP, wire);
        List<String> udp = new ArrayList<>();
        peer.setUdpListener((sourceIp, sourcePort, destinationPort, payload) -> udp.add(Ipv4Address.format(sourceIp)
                + ":" + sourcePort + " > " + destinationPort + " " + new String(payload, StandardCharsets.US_ASCII)));

        byte[] arpRequest = Hex.bytes(LinuxCaptures.LINUX_ARP_REQUEST);
        peer.receive(arpRequest, 0, arpRequest.length);
        assertArrayEquals(Hex.bytes(LinuxCaptures.PEER_ARP_REPLY), wire.last(), "the reply Linux accepted");
        assertEquals(LINUX_MAC, peer.cachedMac(LINUX_IP));

        byte[] datagram = Hex.bytes(LinuxCaptures.LINUX_UDP);
        peer.receive(datagram, 0, datagram.length);
        assertEquals(List.of("10.0.0.1:40000 > 7 hello from linux"), udp);

        byte[] ping = Hex.bytes(LinuxCaptures.LINUX_ECHO_REQUEST);
        peer.receive(ping, 0, ping.length);
        byte[] reply = wire.last();
        DropCounters strict = new DropCounters();
        Ipv4Packet ip = Ipv4Packet.decode(reply, 14, reply.length - 14, strict);
        assertEquals(LINUX_IP, ip.destination());
        IcmpMessage icmp = IcmpMessage.decode(reply, ip.payloadOffset(), ip.payloadLength(), strict);
        assertEquals(new IcmpMessage(IcmpMessage.TYPE_ECHO_REPLY, 0, 0x321f, 1, 42, 56), icmp);
        assertArrayEquals(ReferenceChecksum.slice(ping, 42, 98), ReferenceChecksum.slice(reply, 42, 98));
        assertEquals(0, strict.total());
        assertEquals(0, peer.dropped());
    }

    private static String describe(String hex) {
        byte[] frame = Hex.bytes(hex);
        return Frames.describe(frame, 0, frame.length);
    }
}
