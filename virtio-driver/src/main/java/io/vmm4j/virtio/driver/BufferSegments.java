package io.vmm4j.virtio.driver;

/** The well-formedness of a buffer a driver adds, whichever ring it goes to: the checks both driver queues share. */
final class BufferSegments {
    private BufferSegments() {
    }

    /**
     * At least one segment, a length per address, {@code readableCount} within them, no negative
     * length (the raw hooks write such values on purpose; {@code add} does not).
     */
    static void check(long[] addrs, int[] lens, int readableCount) {
        if (addrs.length == 0 || addrs.length != lens.length) {
            throw new IllegalArgumentException(String.format(
                    "a buffer needs at least one segment and one length per address, got %d addresses and %d lengths",
                    addrs.length, lens.length));
        }
        if (readableCount < 0 || readableCount > addrs.length) {
            throw new IllegalArgumentException(String.format(
                    "readable count %d is outside 0..%d segments", readableCount, addrs.length));
        }
        for (int len : lens) {
            if (len < 0) {
                throw new IllegalArgumentException("segment length " + len + " is negative; a raw value needs the ring's raw hooks");
            }
        }
    }
}
