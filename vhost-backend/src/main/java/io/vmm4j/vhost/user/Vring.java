package io.vmm4j.vhost.user;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.vhost.emulated.QueueSignals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * What the back-end knows of one vring from the front-end's messages: size, addresses (front-end
 * user addresses), base, the kick/call/err eventfds (raw fds received by SCM_RIGHTS, owned here), and
 * its state ("Ring states": stopped until a kick fd arrives, stopped again by GET_VRING_BASE; enabled
 * or not). The fields are written by the session thread; the call and err fds are also read by the
 * ring's worker thread, so they change only on that thread while the ring runs.
 */
final class Vring {
    final int index;
    int size;
    VhostUserMessage.VringAddress address;
    int base;
    boolean started;
    boolean enabled;
    volatile int kickFd = -1;
    volatile int callFd = -1;
    volatile int errFd = -1;
    private final MemorySegment one;
    private final MemorySegment scratch;

    Vring(int index) {
        this.index = index;
        Arena arena = Arena.ofAuto();
        this.one = arena.allocate(ValueLayout.JAVA_LONG);
        this.one.set(ValueLayout.JAVA_LONG, 0, 1L);
        this.scratch = arena.allocate(ValueLayout.JAVA_LONG);
    }

    /** "rx0", "tx0", "rx1", ...: virtio-net's queue 2p receives, 2p + 1 transmits. */
    String name() {
        return (index % 2 == 0 ? "rx" : "tx") + index / 2;
    }

    /** The ring's doorbells for the queue engine: kicks from the kick fd, used-buffer signals to the call fd. */
    QueueSignals signals() {
        return new QueueSignals() {
            @Override
            public Subscription onKick(EventLoop loop, Runnable handler) {
                EventLoop.Registration r = loop.register(kickFd, LibC.EPOLLIN, ready -> {
                    LibC.readRaw(kickFd, scratch, 8); // eventfd: reading resets the counter
                    handler.run();
                });
                return r::close;
            }

            @Override
            public void signalUsed() {
                int fd = callFd;
                if (fd >= 0) {
                    LibC.writeRaw(fd, one, 8); // EAGAIN: the counter is saturated, the front-end has a wake-up pending
                }
            }
        };
    }

    /** Tells the front-end that this ring hit an error (SET_VRING_ERR's fd, if any). */
    void signalError() {
        int fd = errFd;
        if (fd >= 0) {
            LibC.writeRaw(fd, one, 8);
        }
    }

    void closeFds() {
        LibC.closeQuietly(kickFd);
        LibC.closeQuietly(callFd);
        LibC.closeQuietly(errFd);
        kickFd = -1;
        callFd = -1;
        errFd = -1;
    }
}
