package io.vmm4j.virtio.driver.net;

/**
 * An Ethernet II header (IEEE 802.3 §3.1.1 with an EtherType): destination, source, type, then the
 * payload. The payload is described by offset and length into the decoded buffer, not copied. Frames
 * here carry no preamble and no FCS, as virtio-net and TAP devices exchange them.
 */
public record EthernetFrame(MacAddress destination, MacAddress source, int etherType, int payloadOffset,
                            int payloadLength) {
    public static final int HEADER_LENGTH = 14;
    public static final int TYPE_IPV4 = 0x0800;
    public static final int TYPE_ARP = 0x0806;

    /** Decodes the header of {@code length} bytes at {@code offset}; null (and counted) if too short. */
    public static EthernetFrame decode(byte[] buffer, int offset, int length, DropCounters drops) {
        if (length < HEADER_LENGTH) {
            drops.count(DropReason.ETHERNET_TRUNCATED);
            return null;
        }
        return new EthernetFrame(MacAddress.readFrom(buffer, offset), MacAddress.readFrom(buffer, offset + 6),
                readUnsignedShort(buffer, offset + 12), offset + HEADER_LENGTH, length - HEADER_LENGTH);
    }

    /** Writes the 14-byte header at {@code offset}; returns {@link #HEADER_LENGTH}. */
    public static int writeHeader(byte[] buffer, int offset, MacAddress destination, MacAddress source,
                                  int etherType) {
        destination.writeTo(buffer, offset);
        source.writeTo(buffer, offset + 6);
        writeShort(buffer, offset + 12, etherType);
        return HEADER_LENGTH;
    }

    static int readUnsignedShort(byte[] buffer, int offset) {
        return (buffer[offset] & 0xFF) << 8 | buffer[offset + 1] & 0xFF;
    }

    static void writeShort(byte[] buffer, int offset, int value) {
        buffer[offset] = (byte) (value >>> 8);
        buffer[offset + 1] = (byte) value;
    }

    @Override
    public String toString() {
        return source + " > " + destination + " type 0x" + String.format("%04x", etherType) + " length "
                + payloadLength;
    }
}
