package io.vmm4j.tap;

import io.vmm4j.core.linux.LibC;

import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One end of an in-VMM packet link, for machines without a tap (no CAP_NET_ADMIN, no tun
 * module) and for tests: {@link #pair} connects two ports queue by queue.
 *
 * <p>Each queue is an AF_UNIX SOCK_SEQPACKET socketpair, non-blocking and close-on-exec. Sequenced
 * packets keep message boundaries (one read, one frame; unix(7)), take readv/writev and poll like
 * a tap fd, so the data plane drives this port exactly as it drives a {@link TapDevice}. Nothing
 * here interprets the vnet header: what one side writes, header included, the other side reads.
 * A frame must fit the socket's send buffer (af_unix.c: at most sk_sndbuf - 32 bytes;
 * net.core.wmem_default is 208 KiB), ample for a 64 KiB GSO frame.
 */
public final class MemoryPort extends QueueFdPort {
    private static final AtomicInteger PAIRS = new AtomicInteger();

    private MemoryPort(String name, int[] fds, int vnetHeaderSize) {
        super("memory port", name, fds, vnetHeaderSize);
    }

    /**
     * Two connected ports with {@code queues} queues each: a frame written to queue q of one
     * arrives whole on queue q of the other.
     */
    public static MemoryPort[] pair(int queues, int vnetHeaderSize) {
        if (queues < 1) {
            throw new IllegalArgumentException("a memory port needs at least one queue, not " + queues);
        }
        if (vnetHeaderSize < TapDevice.MIN_VNET_HEADER_SIZE) {
            throw new IllegalArgumentException("vnet header size " + vnetHeaderSize + " is below the "
                    + TapDevice.MIN_VNET_HEADER_SIZE + " bytes of struct virtio_net_hdr: use 12 (virtio_net_hdr_v1) or 10 (legacy)");
        }
        int[] a = new int[queues];
        int[] b = new int[queues];
        Arrays.fill(a, -1);
        Arrays.fill(b, -1);
        try {
            for (int q = 0; q < queues; q++) {
                // unix(7): SOCK_SEQPACKET keeps record boundaries, like one frame per tap read
                int[] pair = LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET | LibC.SOCK_NONBLOCK | LibC.SOCK_CLOEXEC);
                a[q] = pair[0];
                b[q] = pair[1];
            }
        } catch (RuntimeException e) {
            for (int q = 0; q < queues; q++) {
                LibC.closeQuietly(a[q]);
                LibC.closeQuietly(b[q]);
            }
            throw e;
        }
        int n = PAIRS.getAndIncrement();
        return new MemoryPort[] {new MemoryPort("memory" + n + "a", a, vnetHeaderSize),
                new MemoryPort("memory" + n + "b", b, vnetHeaderSize)};
    }

    /** Closes this end; the peer then reads end-of-file (0) and its writes fail with EPIPE. Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (int fd : fds) {
            LibC.closeQuietly(fd);
        }
    }

    @Override
    public String toString() {
        return describe("");
    }
}
