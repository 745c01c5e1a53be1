package io.vmm4j.virtio.driver.net;

import static io.vmm4j.virtio.driver.net.EthernetFrame.readUnsignedShort;
import static io.vmm4j.virtio.driver.net.EthernetFrame.writeShort;

/**
 * An ICMP message (RFC 792): type, code, checksum, then four bytes that echo messages use as
 * identifier and sequence number, then data at {@code dataOffset} in the decoded buffer.
 */
public record IcmpMessage(int type, int code, int identifier, int sequence, int dataOffset, int dataLength) {
    public static final int HEADER_LENGTH = 8;
    public static final int TYPE_ECHO_REPLY = 0;
    public static final int TYPE_ECHO_REQUEST = 8;

    /** Decodes and verifies the message in {@code length} bytes at {@code offset}; null (and counted) if malformed. */
    public static IcmpMessage decode(byte[] buffer, int offset, int length, DropCounters drops) {
        if (length < HEADER_LENGTH) {
            drops.count(DropReason.ICMP_TRUNCATED);
            return null;
        }
        // RFC 792: the checksum covers the whole ICMP message, header and data.
        if (!InternetChecksum.verifies(buffer, offset, length)) {
            drops.count(DropReason.ICMP_BAD_CHECKSUM);
            return null;
        }
        return new IcmpMessage(buffer[offset] & 0xFF, buffer[offset + 1] & 0xFF, readUnsignedShort(buffer, offset + 4),
                readUnsignedShort(buffer, offset + 6), offset + HEADER_LENGTH, length - HEADER_LENGTH);
    }

    /**
     * Writes an echo header (RFC 792, code 0) at {@code offset} and checksums it together with the
     * {@code dataLength} bytes of data the caller has already put at {@code offset + 8}. Returns the message length.
     */
    public static int writeEcho(byte[] buffer, int offset, int type, int identifier, int sequence, int dataLength) {
        buffer[offset] = (byte) type;
        buffer[offset + 1] = 0;
        writeShort(buffer, offset + 2, 0); // RFC 792: the checksum field is zero while computing the checksum
        writeShort(buffer, offset + 4, identifier);
        writeShort(buffer, offset + 6, sequence);
        int length = HEADER_LENGTH + dataLength;
        writeShort(buffer, offset + 2, InternetChecksum.of(buffer, offset, length));
        return length;
    }

    @Override
    public String toString() {
        return switch (type) {
            case TYPE_ECHO_REQUEST -> "ICMP echo request id " + identifier + " seq " + sequence + " length " + dataLength;
            case TYPE_ECHO_REPLY -> "ICMP echo reply id " + identifier + " seq " + sequence + " length " + dataLength;
            default -> "ICMP type " + type + " code " + code + " length " + dataLength;
        };
    }
}
