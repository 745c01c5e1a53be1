package io.vmm4j.virtio.driver.net;

import static io.vmm4j.virtio.driver.net.EthernetFrame.readUnsignedShort;
import static io.vmm4j.virtio.driver.net.EthernetFrame.writeShort;

/**
 * A UDP datagram (RFC 768): ports, length, checksum, then the payload at {@code payloadOffset} in
 * the decoded buffer. {@code checksummed} is false when the sender left the checksum out (field 0).
 */
public record UdpDatagram(int sourcePort, int destinationPort, int payloadOffset, int payloadLength,
                          boolean checksummed) {
    public static final int HEADER_LENGTH = 8;

    /**
     * Decodes and verifies the datagram in the {@code length} bytes of IPv4 payload at {@code offset};
     * the addresses are those of the carrying IPv4 header, for the pseudo-header. Null (and counted) if malformed.
     */
    public static UdpDatagram decode(byte[] buffer, int offset, int length, int sourceIp, int destinationIp,
                                     DropCounters drops) {
        if (length < HEADER_LENGTH) {
            drops.count(DropReason.UDP_TRUNCATED);
            return null;
        }
        // RFC 768: the length counts header and data, so at least 8, and it cannot exceed what IP carried.
        int udpLength = readUnsignedShort(buffer, offset + 4);
        if (udpLength < HEADER_LENGTH || udpLength > length) {
            drops.count(DropReason.UDP_BAD_LENGTH);
            return null;
        }
        // RFC 768: an all-zero checksum field means the sender computed none.
        boolean checksummed = readUnsignedShort(buffer, offset + 6) != 0;
        if (checksummed) {
            long sum = InternetChecksum.pseudoHeader(sourceIp, destinationIp, Ipv4Packet.PROTOCOL_UDP, udpLength);
            if (InternetChecksum.finish(InternetChecksum.add(sum, buffer, offset, udpLength)) != 0) {
                drops.count(DropReason.UDP_BAD_CHECKSUM);
                return null;
            }
        }
        return new UdpDatagram(readUnsignedShort(buffer, offset), readUnsignedShort(buffer, offset + 2),
                offset + HEADER_LENGTH, udpLength - HEADER_LENGTH, checksummed);
    }

    /**
     * Writes the header at {@code offset} for the {@code payloadLength} bytes the caller has already put at
     * {@code offset + 8}, with the checksum over the pseudo-header, header and payload. Returns the datagram length.
     */
    public static int write(byte[] buffer, int offset, int sourceIp, int destinationIp, int sourcePort,
                            int destinationPort, int payloadLength) {
        int udpLength = HEADER_LENGTH + payloadLength;
        if (payloadLength < 0 || udpLength > 0xFFFF) {
            throw new IllegalArgumentException("UDP length out of range: " + udpLength);
        }
        writeShort(buffer, offset, sourcePort);
        writeShort(buffer, offset + 2, destinationPort);
        writeShort(buffer, offset + 4, udpLength);
        writeShort(buffer, offset + 6, 0);
        long sum = InternetChecksum.pseudoHeader(sourceIp, destinationIp, Ipv4Packet.PROTOCOL_UDP, udpLength);
        int checksum = InternetChecksum.finish(InternetChecksum.add(sum, buffer, offset, udpLength));
        // RFC 768: a computed zero is sent as all ones, since zero means "no checksum".
        writeShort(buffer, offset + 6, checksum == 0 ? 0xFFFF : checksum);
        return udpLength;
    }

    @Override
    public String toString() {
        return "UDP " + sourcePort + " > " + destinationPort + " length " + payloadLength
                + (checksummed ? "" : " no checksum");
    }
}
