package io.vmm4j.tap;

import io.vmm4j.core.linux.LibC;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.fail;

/** Reads frames from a port's queue until one matches, ignoring the rest (IPv6 neighbour discovery, MLD, ...). */
final class FrameWaiter {
    /** Room for a 64 KiB GSO frame and its header. */
    static final int BUFFER = 65536 + 64;

    private FrameWaiter() {
    }

    /** The first frame on {@code queue}, vnet header included, whose Ethernet part matches, within {@code timeoutMillis}. */
    static byte[] await(PacketPort port, int queue, Predicate<byte[]> ethernetMatches, int timeoutMillis, String what) {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
        byte[] buf = new byte[BUFFER];
        List<String> seen = new ArrayList<>();
        while (true) {
            int n = port.receive(queue, buf);
            if (n > 0) {
                byte[] frame = Frames.ethernetPart(buf, n, port.vnetHeaderSize());
                if (ethernetMatches.test(frame)) {
                    return Arrays.copyOf(buf, n);
                }
                seen.add("ethertype 0x" + Integer.toHexString(Frames.ethertype(frame)) + " (" + n + " bytes)");
                continue;
            }
            long left = (deadline - System.nanoTime()) / 1_000_000L;
            if (left <= 0) {
                fail("no " + what + " on queue " + queue + " of " + port.name() + " within " + timeoutMillis
                        + " ms; other frames seen: " + seen);
            }
            LibC.pollOne(port.fd(queue), LibC.POLLIN, (int) left);
        }
    }

    /** Every frame now queued on {@code queue} (Ethernet parts only), without waiting. */
    static List<byte[]> drain(PacketPort port, int queue) {
        List<byte[]> frames = new ArrayList<>();
        byte[] buf = new byte[BUFFER];
        int n;
        while ((n = port.receive(queue, buf)) > 0) {
            frames.add(Frames.ethernetPart(buf, n, port.vnetHeaderSize()));
        }
        return frames;
    }
}
