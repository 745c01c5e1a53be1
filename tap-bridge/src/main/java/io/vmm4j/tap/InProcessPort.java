package io.vmm4j.tap;

import java.lang.foreign.MemorySegment;

/**
 * A {@link PacketPort} served inside this process, with no fd: the data plane hands it the guest
 * buffers of one frame as the same {@code struct iovec} array ({@code io.vmm4j.core.linux.LibC#IOVEC})
 * it would give writev(2)/readv(2), and the port reads or writes guest memory directly. The engine
 * checks for this interface once, when it is built; tap and memory ports keep the fd path.
 *
 * <p>Rules the engine relies on, so that it needs neither epoll nor a wake-up from the port:
 * <ul>
 * <li>{@link #transmit} always takes the frame (counts it, drops it, copies it): it never answers
 *     "full" and never blocks.</li>
 * <li>{@link #receive} makes a frame when asked, or says none; a port that says none is asked again
 *     only at the guest's next receive kick, so it must not depend on being polled. There is no
 *     backlog: with the link down nothing is drained.</li>
 * <li>Both run on the queue pair's thread, allocate nothing and make no system call, per frame.</li>
 * </ul>
 * Offsets and lengths in the iovecs are host addresses of guest memory the engine has bounds-checked.
 */
public interface InProcessPort extends PacketPort {
    /**
     * Takes one frame, vnet header first, spread over the first {@code count} iovecs of {@code iov}.
     *
     * @return the bytes taken (the iovecs' total)
     */
    long transmit(int queue, MemorySegment iov, int count);

    /**
     * Writes one frame, vnet header first, into the first {@code count} iovecs of {@code iov}: a
     * frame longer than they hold is cut to their length (as readv(2) from a tap cuts it).
     *
     * @return the bytes written, or -1 when the port has no frame for this queue now
     */
    long receive(int queue, MemorySegment iov, int count);

    /** There is no fd: the data plane uses {@link #transmit} and {@link #receive} instead. */
    @Override
    default int fd(int queue) {
        throw new UnsupportedOperationException(name() + " is an in-process port and has no fd: a data plane that needs one"
                + " (vhost-net) cannot use it; use a tap");
    }
}
