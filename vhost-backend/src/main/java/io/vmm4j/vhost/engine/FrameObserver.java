package io.vmm4j.vhost.engine;

import java.lang.foreign.MemorySegment;

/**
 * Sees each frame the in-process data plane moves between the guest's rings and the packet port:
 * the hook for packet capture. Only the emulated data plane can offer it; with vhost-net or
 * vhost-user the frames move in the kernel or in another process and never pass through the VMM.
 *
 * <p>With no observer set the data path pays nothing but one field read per frame; with one set,
 * each frame is copied out of guest memory once (header stripped) before the call.
 */
@FunctionalInterface
public interface FrameObserver {
    /** Which way the frame went. */
    enum Direction {
        /** Port to guest: the frame landed in the guest's receive buffers. */
        RX,
        /** Guest to port: the frame left the guest's transmit ring and the port took it. */
        TX
    }

    /**
     * Called on the data-plane thread of queue pair {@code pair} right after the frame moved.
     *
     * @param frame       the Ethernet frame (no virtio-net header), valid only during the call: copy to keep it
     * @param wireLength  the frame's full length; {@code frame.byteSize()} is smaller only for frames above 64 KiB
     */
    void frame(int pair, Direction direction, MemorySegment frame, long wireLength);
}
