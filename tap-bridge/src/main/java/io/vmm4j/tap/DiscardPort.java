package io.vmm4j.tap;

import io.vmm4j.core.linux.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * A sink and a source for measuring a data plane without a kernel path, like DPDK testpmd's
 * rxonly and txonly: every transmitted frame is counted (frames and bytes) and dropped, and every
 * receive buffer the guest posts is filled at once with the same valid Ethernet/IPv4/UDP frame
 * (broadcast, 10.0.2.2:9 to 255.255.255.255:9, the discard service of RFC 863) of
 * {@link #frameSize()} bytes, behind a zeroed vnet header. It answers nothing: a guest's pings go
 * unanswered.
 *
 * <p>An {@link InProcessPort}: no fd, no system call, no allocation per frame. Counters are
 * written by each queue's own thread and may be read from any thread.
 */
public final class DiscardPort implements InProcessPort {
    /** What testpmd's txonly sends by default (--txpkts 64): the smallest frame worth measuring. */
    public static final int DEFAULT_FRAME_SIZE = 64;
    /** Ethernet's minimum without the FCS (IEEE 802.3 §3.2.8: 64 bytes with it). */
    public static final int MIN_FRAME_SIZE = 60;
    /** Ethernet's 1500-byte payload and 14-byte header. */
    public static final int MAX_FRAME_SIZE = 1514;
    private static final int TX_FRAMES = 0;
    private static final int TX_BYTES = 1;
    private static final int RX_FRAMES = 2;
    private static final int RX_BYTES = 3;
    private static final VarHandle COUNT = MethodHandles.arrayElementVarHandle(long[].class);
    /** All of the address space, to copy to and from iovec bases without making a segment per copy. */
    private static final MemorySegment EVERYTHING = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);

    private final String name;
    private final int queues;
    private final int vnetHeaderSize;
    private final int frameSize;
    private final Arena arena = Arena.ofShared();
    /** The vnet header (zero: no offloads, num_buffers is the engine's) and the frame, as each receive writes them. */
    private final MemorySegment template;
    private final byte[] frame;
    private final long[] counts;
    private volatile boolean closed;

    /** Counters of one queue: frames the guest sent (dropped) and frames the port made for it; bytes without the vnet header. */
    public record QueueStats(int queue, long txFrames, long txBytes, long rxFrames, long rxBytes) {
    }

    /** The port's counters, totals and per queue. */
    public record Stats(String port, int frameSize, long txFrames, long txBytes, long rxFrames, long rxBytes, List<QueueStats> queues) {
    }

    public DiscardPort(String name, int queues, int vnetHeaderSize, int frameSize) {
        if (queues < 1) {
            throw new IllegalArgumentException("a discard port needs at least one queue, not " + queues);
        }
        if (vnetHeaderSize < TapDevice.MIN_VNET_HEADER_SIZE) {
            throw new IllegalArgumentException("vnet header size " + vnetHeaderSize + " is below the "
                    + TapDevice.MIN_VNET_HEADER_SIZE + " bytes of struct virtio_net_hdr: use 12 (virtio_net_hdr_v1) or 10 (legacy)");
        }
        if (frameSize < MIN_FRAME_SIZE || frameSize > MAX_FRAME_SIZE) {
            throw new IllegalArgumentException("frame size " + frameSize + " is outside " + MIN_FRAME_SIZE + ".." + MAX_FRAME_SIZE
                    + " bytes (an Ethernet frame without its FCS); give a size in that range, e.g. " + DEFAULT_FRAME_SIZE);
        }
        this.name = name;
        this.queues = queues;
        this.vnetHeaderSize = vnetHeaderSize;
        this.frameSize = frameSize;
        this.frame = udpFrame(frameSize);
        this.template = arena.allocate(vnetHeaderSize + frameSize, 8);
        MemorySegment.copy(frame, 0, template, JAVA_BYTE, vnetHeaderSize, frameSize);
        // one cache line per queue, so two queues' threads do not share one
        this.counts = new long[queues * 8];
    }

    /** The frame each receive delivers, without the vnet header. */
    public byte[] frame() {
        return frame.clone();
    }

    public int frameSize() {
        return frameSize;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public int queueCount() {
        return queues;
    }

    @Override
    public int vnetHeaderSize() {
        return vnetHeaderSize;
    }

    @Override
    public long transmit(int queue, MemorySegment iov, int count) {
        long total = 0;
        for (int i = 0; i < count; i++) {
            total += LibC.iovecLength(iov, i);
        }
        add(queue, TX_FRAMES, 1);
        add(queue, TX_BYTES, Math.max(0, total - vnetHeaderSize));
        return total;
    }

    @Override
    public long receive(int queue, MemorySegment iov, int count) {
        if (closed) {
            return -1;
        }
        long length = template.byteSize();
        long done = 0;
        for (int i = 0; i < count && done < length; i++) {
            long n = Math.min(LibC.iovecLength(iov, i), length - done);
            MemorySegment.copy(template, done, EVERYTHING, LibC.iovecBase(iov, i), n);
            done += n;
        }
        add(queue, RX_FRAMES, 1);
        add(queue, RX_BYTES, Math.max(0, done - vnetHeaderSize));
        return done;
    }

    /** A frame sent on the control path: counted and dropped like one from the data plane. */
    @Override
    public void send(int queue, byte[] frameWithHeader) {
        if (frameWithHeader.length < vnetHeaderSize) {
            throw new IllegalArgumentException("frame of " + frameWithHeader.length + " bytes is shorter than the "
                    + vnetHeaderSize + "-byte vnet header of " + name + ": put the header in front of the frame");
        }
        add(queue, TX_FRAMES, 1);
        add(queue, TX_BYTES, frameWithHeader.length - vnetHeaderSize);
    }

    /** The generated frame, header first, cut to {@code buf}; counted like one the data plane received. */
    @Override
    public int receive(int queue, byte[] buf) {
        if (closed) {
            return 0;
        }
        int n = (int) Math.min(buf.length, template.byteSize());
        MemorySegment.copy(template, JAVA_BYTE, 0, buf, 0, n);
        add(queue, RX_FRAMES, 1);
        add(queue, RX_BYTES, Math.max(0, n - vnetHeaderSize));
        return n;
    }

    private void add(int queue, int counter, long delta) {
        int i = queue * 8 + counter;
        // one writer per queue (its thread): an opaque store is enough for readers to see whole, recent values
        COUNT.setOpaque(counts, i, (long) COUNT.getOpaque(counts, i) + delta);
    }

    private long get(int queue, int counter) {
        return (long) COUNT.getOpaque(counts, queue * 8 + counter);
    }

    public Stats stats() {
        List<QueueStats> perQueue = new ArrayList<>();
        long txF = 0;
        long txB = 0;
        long rxF = 0;
        long rxB = 0;
        for (int q = 0; q < queues; q++) {
            QueueStats s = new QueueStats(q, get(q, TX_FRAMES), get(q, TX_BYTES), get(q, RX_FRAMES), get(q, RX_BYTES));
            perQueue.add(s);
            txF += s.txFrames();
            txB += s.txBytes();
            rxF += s.rxFrames();
            rxB += s.rxBytes();
        }
        return new Stats(name, frameSize, txF, txB, rxF, rxB, List.copyOf(perQueue));
    }

    /** After close, receive makes no more frames; the counters stay readable. Idempotent. */
    @Override
    public void close() {
        closed = true;
    }

    @Override
    public String toString() {
        return "discard port " + name + " (" + queues + " queue(s), " + frameSize + "-byte frames)";
    }

    /**
     * A broadcast UDP datagram of {@code size} bytes with a valid IPv4 header checksum (RFC 791) and
     * no UDP checksum (0: none, allowed over IPv4 by RFC 768).
     */
    static byte[] udpFrame(int size) {
        byte[] f = new byte[size];
        for (int i = 0; i < 6; i++) {
            f[i] = (byte) 0xFF; // destination: broadcast
        }
        byte[] src = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02}; // locally administered, like the toy VMM's host side
        System.arraycopy(src, 0, f, 6, 6);
        f[12] = 0x08; // EtherType IPv4
        f[13] = 0x00;
        int ipLength = size - 14;
        f[14] = 0x45; // version 4, 5 words of header
        f[16] = (byte) (ipLength >> 8);
        f[17] = (byte) ipLength;
        f[20] = 0x40; // don't fragment
        f[22] = 64; // TTL
        f[23] = 17; // UDP
        byte[] addresses = {10, 0, 2, 2, (byte) 255, (byte) 255, (byte) 255, (byte) 255};
        System.arraycopy(addresses, 0, f, 26, 8);
        int sum = 0;
        for (int i = 14; i < 34; i += 2) {
            sum += ((f[i] & 0xFF) << 8) | (f[i + 1] & 0xFF);
        }
        sum = (sum & 0xFFFF) + (sum >>> 16);
        sum = (sum & 0xFFFF) + (sum >>> 16);
        int checksum = ~sum & 0xFFFF;
        f[24] = (byte) (checksum >> 8);
        f[25] = (byte) checksum;
        int udpLength = size - 34;
        f[34] = 0;
        f[35] = 9; // source port: discard
        f[36] = 0;
        f[37] = 9; // destination port: discard
        f[38] = (byte) (udpLength >> 8);
        f[39] = (byte) udpLength;
        for (int i = 42; i < size; i++) {
            f[i] = (byte) i; // a recognisable payload
        }
        return f;
    }
}
