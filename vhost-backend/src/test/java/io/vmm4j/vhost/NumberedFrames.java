package io.vmm4j.vhost;

import io.vmm4j.core.linux.Errno;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.tap.PacketPort;
import io.vmm4j.tap.TapException;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Ethernet frames that carry a sequence number, so a test can tell that every frame arrived once
 * and in order, and tell them from the frames a host network adds by itself (IPv6 neighbour
 * discovery, MLD): they use the IEEE 802 local experimental EtherType 0x88B5 and a marker.
 */
public final class NumberedFrames {
    public static final int ETHERTYPE = 0x88B5;
    /** The minimum Ethernet frame without FCS. */
    public static final int LENGTH = 60;
    private static final byte[] DESTINATION = {0x02, 0, 0, 0, 0, 0x02};
    private static final byte[] SOURCE = {0x02, 0, 0, 0, 0, 0x01};
    private static final int MARKER = 0x766D_6D34; // "vmm4"
    private static final int VNET_HEADER = 12;

    private NumberedFrames() {
    }

    /** Frame number {@code n}. */
    public static byte[] frame(int n) {
        return ByteBuffer.allocate(LENGTH).put(DESTINATION).put(SOURCE).putShort((short) ETHERTYPE)
                .putInt(MARKER).putInt(n).array();
    }

    /** The number {@code frame} carries, or -1 if it is not a numbered frame. */
    public static int number(byte[] frame) {
        if (frame == null || frame.length < 22) {
            return -1;
        }
        ByteBuffer b = ByteBuffer.wrap(frame);
        if ((b.getShort(12) & 0xFFFF) != ETHERTYPE || b.getInt(14) != MARKER) {
            return -1;
        }
        return b.getInt(18);
    }

    /** {@code frame} behind a zeroed 12-byte vnet header, as a packet port takes it. */
    public static byte[] withHeader(byte[] frame) {
        byte[] b = new byte[VNET_HEADER + frame.length];
        System.arraycopy(frame, 0, b, VNET_HEADER, frame.length);
        return b;
    }

    /** Writes {@code frameWithHeader} to queue {@code queue} of {@code wire}, waiting while the port is full (EAGAIN). */
    public static void sendWhenRoom(PacketPort wire, int queue, byte[] frameWithHeader) throws InterruptedException {
        while (true) {
            try {
                wire.send(queue, frameWithHeader);
                return;
            } catch (TapException e) {
                if (e.errno() != Errno.EAGAIN) {
                    throw e;
                }
                Thread.sleep(1);
            }
        }
    }

    /** Writes frames {@code from} to {@code to - 1} to queue {@code queue} of {@code wire}: the host sends them to the guest. */
    public static void send(PacketPort wire, int queue, int from, int to) {
        for (int n = from; n < to; n++) {
            wire.send(queue, withHeader(frame(n)));
        }
    }

    /**
     * The numbers of the numbered frames that arrive on queue {@code queue} of {@code wire} until
     * {@code count} have come or {@code millis} pass; other frames are skipped.
     */
    public static List<Integer> receive(PacketPort wire, int queue, int count, long millis) {
        List<Integer> got = new ArrayList<>();
        byte[] buf = new byte[65536 + 64];
        long deadline = System.currentTimeMillis() + millis;
        while (got.size() < count) {
            int n = wire.receive(queue, buf);
            if (n > VNET_HEADER) {
                byte[] frame = java.util.Arrays.copyOfRange(buf, VNET_HEADER, n);
                int number = number(frame);
                if (number >= 0) {
                    got.add(number);
                }
                continue;
            }
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) {
                break;
            }
            LibC.pollOne(wire.fd(queue), LibC.POLLIN, (int) Math.min(left, 50));
        }
        return got;
    }

    /** The numbers of the numbered frames the guest receives on {@code pair} until {@code count} have come or {@code millis} pass. */
    public static List<Integer> receive(DriverQueuePairs guest, int pair, int count, long millis) {
        List<Integer> got = new ArrayList<>();
        long deadline = System.currentTimeMillis() + millis;
        while (got.size() < count) {
            byte[] f = guest.awaitReceived(pair, Math.max(deadline - System.currentTimeMillis(), 0));
            if (f == null) {
                break;
            }
            int number = number(f);
            if (number >= 0) {
                got.add(number);
            }
        }
        return got;
    }

    /** The guest transmits frames {@code from} to {@code to - 1} on {@code pair}. */
    public static void transmit(DriverQueuePairs guest, int pair, int from, int to) {
        for (int n = from; n < to; n++) {
            guest.transmit(pair, frame(n));
        }
    }

    /** [from, to) as a list, for comparing with what arrived. */
    public static List<Integer> range(int from, int to) {
        List<Integer> r = new ArrayList<>();
        for (int n = from; n < to; n++) {
            r.add(n);
        }
        return r;
    }
}
