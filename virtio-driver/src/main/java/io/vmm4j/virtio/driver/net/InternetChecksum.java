package io.vmm4j.virtio.driver.net;

/**
 * The Internet checksum of RFC 1071: the 16-bit one's complement of the one's complement sum of
 * the data taken as big-endian 16-bit words. IPv4, ICMP and UDP all use it.
 */
public final class InternetChecksum {
    private InternetChecksum() {
    }

    /**
     * Adds {@code length} bytes to a running sum. An odd final byte is the high half of a word
     * padded with zero (RFC 1071 §4.1). Partial sums can be chained only at even lengths.
     */
    public static long add(long sum, byte[] data, int offset, int length) {
        int end = offset + length;
        int i = offset;
        for (; i + 1 < end; i += 2) {
            sum += (data[i] & 0xFF) << 8 | data[i + 1] & 0xFF;
        }
        if (i < end) {
            sum += (data[i] & 0xFF) << 8;
        }
        return sum;
    }

    /** Adds a 32-bit value as two 16-bit words, as an IPv4 address in a pseudo-header. */
    public static long addInt(long sum, int value) {
        return sum + (value >>> 16) + (value & 0xFFFF);
    }

    /** Folds the carries back in (end-around carry, RFC 1071 §2 (B)) and complements: the checksum field value. */
    public static int finish(long sum) {
        while ((sum >>> 16) != 0) {
            sum = (sum & 0xFFFF) + (sum >>> 16);
        }
        return (int) ~sum & 0xFFFF;
    }

    /** The checksum of one contiguous range. */
    public static int of(byte[] data, int offset, int length) {
        return finish(add(0, data, offset, length));
    }

    /** Whether a range that includes its own checksum field verifies: its checksum is then zero (RFC 1071 §1). */
    public static boolean verifies(byte[] data, int offset, int length) {
        return of(data, offset, length) == 0;
    }

    /** The UDP/TCP pseudo-header sum (RFC 768): source, destination, zero, protocol, length. */
    public static long pseudoHeader(int source, int destination, int protocol, int length) {
        return addInt(addInt(0, source), destination) + protocol + length;
    }
}
