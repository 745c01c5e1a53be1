package io.vmm4j.virtio.driver.net;

/**
 * An IPv4 address as the 32-bit big-endian value of RFC 791 §3.1 (first octet most significant).
 * The stack's API passes addresses as plain {@code int}; this record parses and prints them.
 */
public record Ipv4Address(int value) {
    public static final int LENGTH = 4;
    /** 255.255.255.255, the limited broadcast address (RFC 919). */
    public static final int LIMITED_BROADCAST = 0xFFFF_FFFF;

    /** Parses dotted-decimal {@code 10.0.0.1}: four decimal octets 0..255 without leading zeros, nothing else. */
    public static Ipv4Address parse(String text) {
        int value = 0;
        int octets = 0;
        int at = 0;
        while (at <= text.length()) {
            int end = text.indexOf('.', at);
            if (end < 0) {
                end = text.length();
            }
            int digits = end - at;
            // A leading zero is refused: inet_aton(3) would read "010" as octal 8.
            if (digits < 1 || digits > 3 || octets == LENGTH || digits > 1 && text.charAt(at) == '0') {
                throw new IllegalArgumentException("not a dotted-decimal IPv4 address: " + text);
            }
            int octet = 0;
            for (int i = at; i < end; i++) {
                char c = text.charAt(i);
                if (c < '0' || c > '9') {
                    throw new IllegalArgumentException("not a dotted-decimal IPv4 address: " + text);
                }
                octet = octet * 10 + (c - '0');
            }
            if (octet > 255) {
                throw new IllegalArgumentException("not a dotted-decimal IPv4 address: " + text);
            }
            value = value << 8 | octet;
            octets++;
            at = end + 1;
        }
        if (octets != LENGTH) {
            throw new IllegalArgumentException("not a dotted-decimal IPv4 address: " + text);
        }
        return new Ipv4Address(value);
    }

    /** The {@code int} form of {@link #parse}. */
    public static int parseValue(String text) {
        return parse(text).value();
    }

    public static String format(int value) {
        return (value >>> 24) + "." + (value >>> 16 & 0xFF) + "." + (value >>> 8 & 0xFF) + "." + (value & 0xFF);
    }

    /** Multicast (224.0.0.0/4, RFC 1112) or reserved class E (240.0.0.0/4) including broadcast. */
    public static boolean isMulticastOrReserved(int value) {
        return (value >>> 28) >= 0xE;
    }

    static int readFrom(byte[] buffer, int offset) {
        return (buffer[offset] & 0xFF) << 24 | (buffer[offset + 1] & 0xFF) << 16
                | (buffer[offset + 2] & 0xFF) << 8 | buffer[offset + 3] & 0xFF;
    }

    static void writeTo(int value, byte[] buffer, int offset) {
        buffer[offset] = (byte) (value >>> 24);
        buffer[offset + 1] = (byte) (value >>> 16);
        buffer[offset + 2] = (byte) (value >>> 8);
        buffer[offset + 3] = (byte) value;
    }

    @Override
    public String toString() {
        return format(value);
    }
}
