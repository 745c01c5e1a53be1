package io.vmm4j.virtio.driver.net;

import static io.vmm4j.virtio.driver.net.EthernetFrame.readUnsignedShort;
import static io.vmm4j.virtio.driver.net.EthernetFrame.writeShort;

/**
 * An ARP packet for IPv4 over Ethernet (RFC 826): the only combination this stack speaks, so
 * hardware type 1 with 6-byte addresses and protocol type 0x0800 with 4-byte addresses.
 */
public record ArpPacket(int operation, MacAddress senderMac, int senderIp, MacAddress targetMac, int targetIp) {
    public static final int LENGTH = 28;
    public static final int REQUEST = 1;
    public static final int REPLY = 2;
    public static final int HARDWARE_ETHERNET = 1;

    /** A request for {@code targetIp}; the target hardware address is unknown and sent as zero (RFC 826). */
    public static ArpPacket request(MacAddress senderMac, int senderIp, int targetIp) {
        return new ArpPacket(REQUEST, senderMac, senderIp, MacAddress.ZERO, targetIp);
    }

    /** The reply to {@code request} from the owner of its target address: sender and target swapped (RFC 826). */
    public static ArpPacket replyTo(ArpPacket request, MacAddress ownMac) {
        return new ArpPacket(REPLY, ownMac, request.targetIp, request.senderMac, request.senderIp);
    }

    /**
     * Decodes and validates {@code length} bytes at {@code offset} (trailing Ethernet padding is allowed);
     * null (and counted) if malformed or not Ethernet/IPv4.
     */
    public static ArpPacket decode(byte[] buffer, int offset, int length, DropCounters drops) {
        if (length < 8) {
            drops.count(DropReason.ARP_TRUNCATED);
            return null;
        }
        // RFC 826: ar$hrd, ar$hln must be Ethernet/6 and ar$pro, ar$pln IPv4/4 for this stack to understand the rest.
        if (readUnsignedShort(buffer, offset) != HARDWARE_ETHERNET || (buffer[offset + 4] & 0xFF) != MacAddress.LENGTH) {
            drops.count(DropReason.ARP_BAD_HARDWARE);
            return null;
        }
        if (readUnsignedShort(buffer, offset + 2) != EthernetFrame.TYPE_IPV4
                || (buffer[offset + 5] & 0xFF) != Ipv4Address.LENGTH) {
            drops.count(DropReason.ARP_BAD_PROTOCOL);
            return null;
        }
        if (length < LENGTH) {
            drops.count(DropReason.ARP_TRUNCATED);
            return null;
        }
        int operation = readUnsignedShort(buffer, offset + 6);
        if (operation != REQUEST && operation != REPLY) {
            drops.count(DropReason.ARP_BAD_OPERATION);
            return null;
        }
        return new ArpPacket(operation, MacAddress.readFrom(buffer, offset + 8), Ipv4Address.readFrom(buffer, offset + 14),
                MacAddress.readFrom(buffer, offset + 18), Ipv4Address.readFrom(buffer, offset + 24));
    }

    /** Writes the 28 bytes at {@code offset}; returns {@link #LENGTH}. */
    public int writeTo(byte[] buffer, int offset) {
        writeShort(buffer, offset, HARDWARE_ETHERNET);
        writeShort(buffer, offset + 2, EthernetFrame.TYPE_IPV4);
        buffer[offset + 4] = MacAddress.LENGTH;
        buffer[offset + 5] = Ipv4Address.LENGTH;
        writeShort(buffer, offset + 6, operation);
        senderMac.writeTo(buffer, offset + 8);
        Ipv4Address.writeTo(senderIp, buffer, offset + 14);
        targetMac.writeTo(buffer, offset + 18);
        Ipv4Address.writeTo(targetIp, buffer, offset + 24);
        return LENGTH;
    }

    /** In tcpdump's words: {@code ARP who-has 10.0.0.1 tell 10.0.0.2} or {@code ARP reply 10.0.0.1 is-at ...}. */
    @Override
    public String toString() {
        return operation == REQUEST
                ? "ARP who-has " + Ipv4Address.format(targetIp) + " tell " + Ipv4Address.format(senderIp)
                : "ARP reply " + Ipv4Address.format(senderIp) + " is-at " + senderMac;
    }
}
