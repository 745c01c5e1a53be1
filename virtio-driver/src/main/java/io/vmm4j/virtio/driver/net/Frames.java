package io.vmm4j.virtio.driver.net;

/** One-line, tcpdump-like descriptions of Ethernet frames for logs. */
public final class Frames {
    private Frames() {
    }

    /**
     * Describes {@code length} bytes at {@code offset}, e.g.
     * {@code 52:54:00:12:34:56 > ff:ff:ff:ff:ff:ff, ARP who-has 10.0.0.1 tell 10.0.0.2}; a malformed
     * layer is named by its {@link DropReason}. Never throws for malformed content.
     */
    public static String describe(byte[] frame, int offset, int length) {
        DropCounters reason = new DropCounters();
        EthernetFrame ethernet = EthernetFrame.decode(frame, offset, length, reason);
        if (ethernet == null) {
            return malformed(reason);
        }
        String link = ethernet.source() + " > " + ethernet.destination() + ", ";
        return switch (ethernet.etherType()) {
            case EthernetFrame.TYPE_ARP -> {
                ArpPacket arp = ArpPacket.decode(frame, ethernet.payloadOffset(), ethernet.payloadLength(), reason);
                yield link + (arp == null ? malformed(reason) : arp.toString());
            }
            case EthernetFrame.TYPE_IPV4 -> link + describeIpv4(frame, ethernet, reason);
            default -> link + String.format("ethertype 0x%04x, length %d", ethernet.etherType(), length);
        };
    }

    private static String describeIpv4(byte[] frame, EthernetFrame ethernet, DropCounters reason) {
        Ipv4Packet packet = Ipv4Packet.decode(frame, ethernet.payloadOffset(), ethernet.payloadLength(), reason);
        if (packet == null) {
            return malformed(reason);
        }
        String addresses = "IPv4 " + Ipv4Address.format(packet.source()) + " > "
                + Ipv4Address.format(packet.destination()) + ": ";
        return switch (packet.protocol()) {
            case Ipv4Packet.PROTOCOL_ICMP -> {
                IcmpMessage icmp = IcmpMessage.decode(frame, packet.payloadOffset(), packet.payloadLength(), reason);
                yield addresses + (icmp == null ? malformed(reason) : icmp.toString());
            }
            case Ipv4Packet.PROTOCOL_UDP -> {
                UdpDatagram udp = UdpDatagram.decode(frame, packet.payloadOffset(), packet.payloadLength(),
                        packet.source(), packet.destination(), reason);
                yield addresses + (udp == null ? malformed(reason) : udp.toString());
            }
            default -> addresses + "protocol " + packet.protocol() + ", length " + packet.payloadLength();
        };
    }

    private static String malformed(DropCounters reason) {
        return "malformed (" + reason.nonZero().keySet().iterator().next() + ")";
    }
}
