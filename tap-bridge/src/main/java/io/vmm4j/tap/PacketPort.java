package io.vmm4j.tap;

import io.vmm4j.core.linux.Errno;
import io.vmm4j.core.linux.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * A frame port for a virtio-net device: every frame carries a virtio-net header of
 * {@link #vnetHeaderSize()} bytes in front of the Ethernet frame, on both directions.
 *
 * <p>Each queue is one non-blocking, close-on-exec fd on which one read(2) or readv(2) yields
 * exactly one frame (header first) and one write(2) or writev(2) sends exactly one frame. The data
 * plane does readv/writev on {@link #fd(int)} straight from guest memory and polls it with epoll;
 * {@link #send} and {@link #receive} are the same calls through a copy, for tests and control paths.
 * The port owns its fds: stop polling them before {@link #close()}.
 */
public interface PacketPort extends AutoCloseable {
    /** The interface name (a tap's netdev name) or a descriptive name for an in-memory port. */
    String name();

    /** How many queue fds the port has (queue pairs of the virtio-net device). */
    int queueCount();

    /** The fd of {@code queue}: non-blocking, one frame per read/write, header first. */
    int fd(int queue);

    /** Bytes of virtio-net header in front of each frame: 10 (legacy virtio_net_hdr) or 12 (virtio_net_hdr_v1). */
    int vnetHeaderSize();

    /**
     * Tells the port which offloaded frames the reader (the guest) can receive, as TUN_F_* flags of
     * {@link TunIoctls}. The caller derives them from the negotiated VIRTIO_NET_F_GUEST_* features.
     * Ports that cannot produce offloaded frames ignore this.
     */
    default void setOffloads(int tunFlags) {
    }

    /**
     * Whether frames may carry offload requests in their header (partial checksums, GSO) both
     * ways. A port whose peer expects complete frames says no, and the device offers no offloads.
     */
    default boolean supportsOffloads() {
        return false;
    }

    /**
     * Enables or disables a queue (the guest's set of active queue pairs). A disabled queue gets
     * no frames. Ports without per-queue steering ignore this.
     */
    default void setQueueEnabled(int queue, boolean enabled) {
    }

    /** Closes every queue fd. Idempotent. */
    @Override
    void close();

    /**
     * Writes one frame ({@code frameWithHeader} starts with the vnet header) to {@code queue}.
     *
     * @throws TapException if the write fails, including EAGAIN when the queue cannot take the frame now
     */
    default void send(int queue, byte[] frameWithHeader) {
        if (frameWithHeader.length < vnetHeaderSize()) {
            throw new IllegalArgumentException("frame of " + frameWithHeader.length + " bytes is shorter than the "
                    + vnetHeaderSize() + "-byte vnet header of " + name() + ": put the header in front of the frame");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocateFrom(JAVA_BYTE, frameWithHeader);
            long written = LibC.writeRaw(fd(queue), buffer, frameWithHeader.length);
            if (written < 0) {
                int errno = (int) -written;
                throw new TapException("writing a " + frameWithHeader.length + "-byte frame to queue " + queue + " of "
                        + name() + " failed: " + Errno.name(errno) + " (" + Errno.describe(errno) + ")"
                        + (errno == Errno.EAGAIN ? "; the queue is full, wait for POLLOUT and retry" : ""), errno, null);
            }
            if (written != frameWithHeader.length) {
                throw new TapException("queue " + queue + " of " + name() + " took " + written + " of "
                        + frameWithHeader.length + " bytes of a frame; a packet port must take whole frames");
            }
        }
    }

    /**
     * Reads one frame (header first) from {@code queue} into {@code buf}.
     *
     * @return the bytes read, -1 when no frame is ready, 0 when a {@link MemoryPort}'s peer has closed;
     *     a frame longer than {@code buf} is cut to its length and the rest dropped (by tun and AF_UNIX alike)
     * @throws TapException if the read fails for another reason than EAGAIN
     */
    default int receive(int queue, byte[] buf) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(Math.max(1, buf.length));
            long read = LibC.readRaw(fd(queue), buffer, buf.length);
            if (read == -Errno.EAGAIN) {
                return -1;
            }
            if (read < 0) {
                int errno = (int) -read;
                throw new TapException("reading a frame from queue " + queue + " of " + name() + " failed: "
                        + Errno.name(errno) + " (" + Errno.describe(errno) + ")", errno, null);
            }
            int length = (int) read;
            MemorySegment.copy(buffer, JAVA_BYTE, 0, buf, 0, length);
            return length;
        }
    }
}
