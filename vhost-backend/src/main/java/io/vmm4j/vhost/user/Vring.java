package io.vmm4j.vhost.user;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.vhost.VringAddress;
import io.vmm4j.virtio.QueueDoorbell;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * What the back-end knows of one vring from the front-end's messages: size, addresses (front-end
 * user addresses), base, the kick/call/err eventfds (raw fds received by SCM_RIGHTS, owned here), and
 * its state ("Ring states": stopped until a kick fd arrives, stopped again by GET_VRING_BASE; enabled
 * or not). The fields are written by the session thread; the call and err fds are also read by the
 * ring's worker thread, so they change only on that thread while the ring runs.
 *
 * <p>It is the ring's {@link QueueDoorbell} for the queue engine: kicks from the kick fd, used-buffer
 * signals to the call fd. Both fds are the front-end's: their open file descriptions (and so
 * O_NONBLOCK) are shared with it, and are never changed here. The kick fd is watched edge-triggered
 * and its counter reset by a read that cannot block (preadv2 RWF_NOWAIT); the call fd is written
 * only when poll says a write cannot block.
 */
final class Vring implements QueueDoorbell {
    /** How often a wait for a ring's loop checks whether the loop is stuck on a full call counter. */
    static final int UNBLOCK_CHECK_MILLIS = 100;
    final int index;
    int size;
    /** The front-end's user addresses of the ring's areas (SET_VRING_ADDR), or null before one. */
    VringAddress address;
    /** SET_VRING_BASE's value: split, the avail index; packed, avail and used positions (16 bits each). */
    long base;
    boolean started;
    boolean enabled;
    volatile int kickFd = -1;
    volatile int callFd = -1;
    volatile int errFd = -1;
    /** The call or err fd the loop is writing to now (-1: none), for {@link #unblockingSignals}. */
    private volatile int writingFd = -1;
    private final MemorySegment one;
    /** An iovec over an 8-byte buffer, for reading an eventfd counter (the loop's, and the unblocker's). */
    private final MemorySegment kickIov;
    private final MemorySegment drainIov;
    /** One {@code struct pollfd}, used on the loop thread only. */
    private final MemorySegment pollFd;

    Vring(int index) {
        this.index = index;
        Arena arena = Arena.ofAuto();
        this.one = arena.allocate(ValueLayout.JAVA_LONG);
        this.one.set(ValueLayout.JAVA_LONG, 0, 1L);
        this.kickIov = iov(arena);
        this.drainIov = iov(arena);
        this.pollFd = arena.allocate(8, 4);
    }

    private static MemorySegment iov(Arena arena) {
        MemorySegment iov = arena.allocate(LibC.IOVEC);
        LibC.setIovec(iov, 0, arena.allocate(ValueLayout.JAVA_LONG)); // an eventfd counter
        return iov;
    }

    /** "rx0", "tx0", "rx1", ...: virtio-net's queue 2p receives, 2p + 1 transmits. */
    String name() {
        return (index % 2 == 0 ? "rx" : "tx") + index / 2;
    }

    /** Runs {@code handler} for every kick on the kick fd the ring has now. */
    @Override
    public Subscription onKick(EventLoop loop, Runnable handler) {
        int fd = kickFd;
        // eventfd(2): every write wakes the fd's waiters, so edge-triggered epoll sees each kick, and a
        // counter the read below could not reset (another reader got there first, or a kernel before 5.12
        // without RWF_NOWAIT for eventfds) cannot make the loop spin
        EventLoop.Registration r = loop.register(fd, LibC.EPOLLIN | LibC.EPOLLET, ready -> {
            LibC.preadv2Raw(fd, kickIov, 1, LibC.RWF_NOWAIT); // resets the counter; EAGAIN: already reset
            handler.run();
        });
        return r::close;
    }

    /** Signals the call fd (on the ring's loop thread). */
    @Override
    public void signalUsed() {
        signal(callFd);
    }

    /** Tells the front-end that this ring hit an error (SET_VRING_ERR's fd, if any). */
    void signalError() {
        signal(errFd);
    }

    /**
     * Adds 1 to a front-end's eventfd, on the ring's loop thread. eventfd(2): a write blocks only when the
     * counter would pass 0xfffffffffffffffe, and poll reports POLLOUT exactly while it would not; a saturated
     * counter already holds a wake-up for the front-end, so the signal is skipped. Only a front-end filling
     * its own counter between the poll and the write can still make the write block: {@link #unblockingSignals}.
     */
    private void signal(int fd) {
        if (fd < 0) {
            return;
        }
        pollFd.set(ValueLayout.JAVA_INT, 0, fd);
        pollFd.set(ValueLayout.JAVA_SHORT, 4, LibC.POLLOUT);
        pollFd.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
        if (LibC.pollRaw(pollFd, 1, 0) <= 0 || (pollFd.get(ValueLayout.JAVA_SHORT, 6) & LibC.POLLOUT) == 0) {
            return;
        }
        write(fd);
    }

    /** The write itself, marked for {@link #unblockingSignals} (tests call it directly to lose the race on purpose). */
    void write(int fd) {
        writingFd = fd;
        LibC.writeRaw(fd, one, 8);
        writingFd = -1;
    }

    /**
     * Runs {@code waitForLoop} (a wait, on the session thread, for the loop serving {@code rings}) while
     * a watcher frees the loop if it is stuck writing to a call or err fd whose counter is full: it reads
     * (resets) the counter, the write goes through, and the front-end still finds its wake-up. So a
     * hostile front-end cannot make stopping its rings, and with them the daemon, hang.
     */
    static void unblockingSignals(Runnable waitForLoop, Vring... rings) {
        Object lock = new Object();
        boolean[] done = {false};
        Thread watcher = Thread.ofVirtual().name("vring-unblock").start(() -> {
            while (true) {
                try {
                    Thread.sleep(UNBLOCK_CHECK_MILLIS);
                } catch (InterruptedException e) {
                    return;
                }
                synchronized (lock) {
                    if (done[0]) {
                        return; // the waiter may close the fds from now on
                    }
                    for (Vring r : rings) {
                        r.drainIfWriteBlocked();
                    }
                }
            }
        });
        try {
            waitForLoop.run();
        } finally {
            synchronized (lock) {
                done[0] = true;
            }
            watcher.interrupt();
        }
    }

    private void drainIfWriteBlocked() {
        int fd = writingFd;
        if (fd >= 0 && LibC.pollOne(fd, LibC.POLLOUT, 0) == 0) {
            LibC.preadv2Raw(fd, drainIov, 1, LibC.RWF_NOWAIT);
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
