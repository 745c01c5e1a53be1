package io.vmm4j.core.event;

import io.vmm4j.core.linux.Errno;
import io.vmm4j.core.linux.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A Linux eventfd: the "kick" (ioeventfd) and "call" (irqfd) doorbells between the VMM, its
 * data planes and the guest. Non-blocking and close-on-exec. {@link #signal()} is safe from any
 * thread; {@link #drain()} is for the one consumer.
 */
public final class EventFd implements AutoCloseable {
    private final int fd;
    private final MemorySegment one;
    private final MemorySegment scratch;
    private final Arena arena = Arena.ofShared();
    private volatile boolean closed;

    private EventFd(int fd) {
        this.fd = fd;
        this.one = arena.allocate(ValueLayout.JAVA_LONG);
        this.one.set(ValueLayout.JAVA_LONG, 0, 1L);
        this.scratch = arena.allocate(ValueLayout.JAVA_LONG);
    }

    public static EventFd create() {
        return new EventFd(LibC.eventfd(0, LibC.EFD_NONBLOCK | LibC.EFD_CLOEXEC));
    }

    public int fd() {
        return fd;
    }

    /** Adds 1 to the counter, waking whoever polls the fd. */
    public void signal() {
        long r = LibC.writeRaw(fd, one, 8);
        // EAGAIN only when the counter would overflow: the reader has a wake-up pending anyway.
        if (r < 0 && r != -Errno.EAGAIN) {
            LibC.check(r, "write", "eventfd=" + fd);
        }
    }

    /** Reads and resets the counter; returns how many signals were pending (0 if none). */
    public long drain() {
        long r = LibC.readRaw(fd, scratch, 8);
        if (r == -Errno.EAGAIN) {
            return 0;
        }
        if (r < 0) {
            LibC.check(r, "read", "eventfd=" + fd); // the message only on failure: a drain per wake-up allocates nothing
        }
        return scratch.get(ValueLayout.JAVA_LONG, 0);
    }

    /** Waits up to {@code timeoutMillis} for a signal, then drains; returns the count (0 on timeout). */
    public long await(int timeoutMillis) {
        if (LibC.pollOne(fd, LibC.POLLIN, timeoutMillis) == 0) {
            return 0;
        }
        return drain();
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            LibC.closeQuietly(fd);
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "EventFd(" + fd + ")";
    }
}
