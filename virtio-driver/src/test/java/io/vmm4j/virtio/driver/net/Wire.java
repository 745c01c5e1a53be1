package io.vmm4j.virtio.driver.net;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A test link: keeps a copy of every frame sent and, once {@link #to} is set, hands the sender's own
 * buffer straight to the receiving stack, re-entrantly, as back-to-back wiring does.
 */
final class Wire implements FrameSink {
    final List<byte[]> frames = new ArrayList<>();
    GuestNetStack to;

    @Override
    public void send(byte[] frame, int offset, int length) {
        frames.add(Arrays.copyOfRange(frame, offset, offset + length));
        if (to != null) {
            to.receive(frame, offset, length);
        }
    }

    byte[] last() {
        return frames.getLast();
    }

    long countEtherType(int etherType) {
        return frames.stream().filter(f -> ((f[12] & 0xFF) << 8 | f[13] & 0xFF) == etherType).count();
    }
}
