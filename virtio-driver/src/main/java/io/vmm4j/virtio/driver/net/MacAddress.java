package io.vmm4j.virtio.driver.net;

import java.util.concurrent.ThreadLocalRandom;
import java.util.random.RandomGenerator;

/**
 * A 48-bit IEEE 802 MAC address. The six octets are held in the low 48 bits of a {@code long}, first
 * octet (the one sent first on the wire) most significant, so equality and hashing are by value.
 */
public record MacAddress(long bits) {
    public static final int LENGTH = 6;
    private static final long MASK = 0xFFFF_FFFF_FFFFL;

    public static final MacAddress BROADCAST = new MacAddress(MASK);
    public static final MacAddress ZERO = new MacAddress(0);

    public MacAddress {
        if ((bits & ~MASK) != 0) {
            throw new IllegalArgumentException("a MAC address has 48 bits: 0x" + Long.toHexString(bits));
        }
    }

    /** From exactly six octets, first octet first. */
    public static MacAddress of(byte... octets) {
        if (octets.length != LENGTH) {
            throw new IllegalArgumentException("a MAC address has 6 octets, not " + octets.length);
        }
        return readFrom(octets, 0);
    }

    /** Parses the colon form {@code 52:54:00:12:34:56} (two hex digits per octet, either case). */
    public static MacAddress parse(String text) {
        if (text.length() != 17) {
            throw new IllegalArgumentException("not a MAC address (want xx:xx:xx:xx:xx:xx): " + text);
        }
        long bits = 0;
        for (int i = 0; i < LENGTH; i++) {
            int at = i * 3;
            if (i > 0 && text.charAt(at - 1) != ':') {
                throw new IllegalArgumentException("not a MAC address (want xx:xx:xx:xx:xx:xx): " + text);
            }
            int high = Character.digit(text.charAt(at), 16);
            int low = Character.digit(text.charAt(at + 1), 16);
            if (high < 0 || low < 0) {
                throw new IllegalArgumentException("not a MAC address (want xx:xx:xx:xx:xx:xx): " + text);
            }
            bits = bits << 8 | high << 4 | low;
        }
        return new MacAddress(bits);
    }

    /** A random unicast, locally administered address (IEEE 802: I/G bit clear, U/L bit set). */
    public static MacAddress randomLocallyAdministered(RandomGenerator random) {
        long bits = random.nextLong() & MASK;
        bits &= ~(0x01L << 40); // I/G bit of the first octet: 0 = individual (unicast)
        bits |= 0x02L << 40; // U/L bit of the first octet: 1 = locally administered
        return new MacAddress(bits);
    }

    public static MacAddress randomLocallyAdministered() {
        return randomLocallyAdministered(ThreadLocalRandom.current());
    }

    /** Reads six octets at {@code offset}; the caller has checked the bounds. */
    public static MacAddress readFrom(byte[] buffer, int offset) {
        return new MacAddress(readBits(buffer, offset));
    }

    static long readBits(byte[] buffer, int offset) {
        long bits = 0;
        for (int i = 0; i < LENGTH; i++) {
            bits = bits << 8 | (buffer[offset + i] & 0xFF);
        }
        return bits;
    }

    /** Writes the six octets at {@code offset}, first octet first. */
    public void writeTo(byte[] buffer, int offset) {
        writeBits(bits, buffer, offset);
    }

    static void writeBits(long bits, byte[] buffer, int offset) {
        for (int i = LENGTH - 1; i >= 0; i--) {
            buffer[offset + i] = (byte) bits;
            bits >>>= 8;
        }
    }

    public byte[] octets() {
        byte[] octets = new byte[LENGTH];
        writeTo(octets, 0);
        return octets;
    }

    public boolean isBroadcast() {
        return bits == MASK;
    }

    /** Group address, broadcast included: the I/G bit, the least significant bit of the first octet. */
    public boolean isMulticast() {
        return (bits & 0x01L << 40) != 0;
    }

    public boolean isLocallyAdministered() {
        return (bits & 0x02L << 40) != 0;
    }

    @Override
    public String toString() {
        StringBuilder text = new StringBuilder(17);
        for (int shift = 40; shift >= 0; shift -= 8) {
            int octet = (int) (bits >>> shift) & 0xFF;
            if (shift != 40) {
                text.append(':');
            }
            text.append(Character.forDigit(octet >>> 4, 16)).append(Character.forDigit(octet & 0xF, 16));
        }
        return text.toString();
    }
}
