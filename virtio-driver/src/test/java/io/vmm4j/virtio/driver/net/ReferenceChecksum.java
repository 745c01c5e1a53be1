package io.vmm4j.virtio.driver.net;

/**
 * A deliberately plain RFC 1071 checksum, independent of {@link InternetChecksum}: add 16-bit
 * big-endian words one at a time, folding the carry back in after each addition, then complement.
 */
final class ReferenceChecksum {
    private ReferenceChecksum() {
    }

    static int of(byte[]... parts) {
        int sum = 0;
        for (byte[] part : parts) {
            // Each part starts on a word boundary (the callers' parts all have even length but the last).
            for (int i = 0; i < part.length; i += 2) {
                int high = part[i] & 0xFF;
                int low = i + 1 < part.length ? part[i + 1] & 0xFF : 0;
                sum += high * 256 + low;
                if (sum > 0xFFFF) {
                    sum = sum - 0x10000 + 1;
                }
            }
        }
        return ~sum & 0xFFFF;
    }

    static byte[] slice(byte[] data, int from, int to) {
        return java.util.Arrays.copyOfRange(data, from, to);
    }

    /** Writes a checksum big-endian at {@code offset}. */
    static void put(byte[] data, int offset, int checksum) {
        data[offset] = (byte) (checksum >>> 8);
        data[offset + 1] = (byte) checksum;
    }

    /** The RFC 768 pseudo-header: source, destination, zero, protocol 17, UDP length. */
    static byte[] udpPseudoHeader(byte[] source, byte[] destination, int udpLength) {
        return new byte[] {source[0], source[1], source[2], source[3], destination[0], destination[1], destination[2],
                destination[3], 0, 17, (byte) (udpLength >>> 8), (byte) udpLength};
    }
}
