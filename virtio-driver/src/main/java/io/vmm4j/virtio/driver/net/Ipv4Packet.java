package io.vmm4j.virtio.driver.net;

import static io.vmm4j.virtio.driver.net.EthernetFrame.readUnsignedShort;
import static io.vmm4j.virtio.driver.net.EthernetFrame.writeShort;

/**
 * An IPv4 header (RFC 791 §3.1). Decoding validates it fully; the payload is the range
 * {@code payloadOffset .. payloadOffset + payloadLength()} of the decoded buffer, Ethernet padding excluded.
 */
public record Ipv4Packet(int headerLength, int totalLength, int identification, boolean dontFragment,
                         int timeToLive, int protocol, int source, int destination, int payloadOffset) {
    public static final int MIN_HEADER_LENGTH = 20;
    public static final int PROTOCOL_ICMP = 1;
    public static final int PROTOCOL_UDP = 17;
    public static final int DEFAULT_TTL = 64;
    public static final int MAX_TOTAL_LENGTH = 0xFFFF;
    private static final int FLAG_DONT_FRAGMENT = 0x4000;
    private static final int FLAG_MORE_FRAGMENTS = 0x2000;
    private static final int FRAGMENT_OFFSET_MASK = 0x1FFF;

    public int payloadLength() {
        return totalLength - headerLength;
    }

    /**
     * Decodes and validates the datagram in {@code length} bytes at {@code offset}; null (and counted) if
     * malformed or a fragment. Options are accepted and skipped.
     */
    public static Ipv4Packet decode(byte[] buffer, int offset, int length, DropCounters drops) {
        if (length < MIN_HEADER_LENGTH) {
            drops.count(DropReason.IPV4_TRUNCATED);
            return null;
        }
        int versionAndIhl = buffer[offset] & 0xFF;
        if (versionAndIhl >>> 4 != 4) {
            drops.count(DropReason.IPV4_BAD_VERSION);
            return null;
        }
        // RFC 791: IHL counts 32-bit words and the minimum value for a correct header is 5.
        int headerLength = (versionAndIhl & 0xF) * 4;
        if (headerLength < MIN_HEADER_LENGTH || headerLength > length) {
            drops.count(DropReason.IPV4_BAD_HEADER_LENGTH);
            return null;
        }
        // RFC 791: the checksum covers the header only; summed with the field in place it verifies as zero (RFC 1071).
        if (!InternetChecksum.verifies(buffer, offset, headerLength)) {
            drops.count(DropReason.IPV4_BAD_CHECKSUM);
            return null;
        }
        // The frame may carry Ethernet padding after the datagram, but never less than the datagram.
        int totalLength = readUnsignedShort(buffer, offset + 2);
        if (totalLength < headerLength || totalLength > length) {
            drops.count(DropReason.IPV4_BAD_TOTAL_LENGTH);
            return null;
        }
        int flagsAndOffset = readUnsignedShort(buffer, offset + 6);
        // No reassembly: any fragment (MF set, or a non-zero offset) is dropped rather than misread as whole.
        if ((flagsAndOffset & FLAG_MORE_FRAGMENTS) != 0 || (flagsAndOffset & FRAGMENT_OFFSET_MASK) != 0) {
            drops.count(DropReason.IPV4_FRAGMENT);
            return null;
        }
        return new Ipv4Packet(headerLength, totalLength, readUnsignedShort(buffer, offset + 4),
                (flagsAndOffset & FLAG_DONT_FRAGMENT) != 0, buffer[offset + 8] & 0xFF, buffer[offset + 9] & 0xFF,
                Ipv4Address.readFrom(buffer, offset + 12), Ipv4Address.readFrom(buffer, offset + 16),
                offset + headerLength);
    }

    /**
     * Writes a 20-byte header without options at {@code offset}: TOS 0, DF set (this stack never
     * fragments), TTL 64, and the header checksum. Returns {@link #MIN_HEADER_LENGTH}.
     */
    public static int writeHeader(byte[] buffer, int offset, int identification, int protocol, int source,
                                  int destination, int payloadLength) {
        int totalLength = MIN_HEADER_LENGTH + payloadLength;
        if (payloadLength < 0 || totalLength > MAX_TOTAL_LENGTH) {
            throw new IllegalArgumentException("IPv4 total length out of range: " + totalLength);
        }
        buffer[offset] = 0x45; // version 4, IHL 5 words
        buffer[offset + 1] = 0; // type of service: routine
        writeShort(buffer, offset + 2, totalLength);
        writeShort(buffer, offset + 4, identification);
        writeShort(buffer, offset + 6, FLAG_DONT_FRAGMENT);
        buffer[offset + 8] = (byte) DEFAULT_TTL;
        buffer[offset + 9] = (byte) protocol;
        writeShort(buffer, offset + 10, 0); // RFC 791: the checksum field is zero while computing the checksum
        Ipv4Address.writeTo(source, buffer, offset + 12);
        Ipv4Address.writeTo(destination, buffer, offset + 16);
        writeShort(buffer, offset + 10, InternetChecksum.of(buffer, offset, MIN_HEADER_LENGTH));
        return MIN_HEADER_LENGTH;
    }

    @Override
    public String toString() {
        return "IPv4 " + Ipv4Address.format(source) + " > " + Ipv4Address.format(destination) + " proto " + protocol
                + " length " + totalLength + " id " + identification + " ttl " + timeToLive
                + (dontFragment ? " DF" : "");
    }
}
