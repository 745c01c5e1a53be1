package io.vmm4j.core.event;

import io.vmm4j.core.linux.Errno;
import io.vmm4j.core.linux.LibC;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * One thread waiting in epoll on raw fds (eventfds, taps, sockets) and running their handlers.
 *
 * <p>Our own epoll through FFM rather than Netty's IoHandle API: the fds we watch are raw kernel
 * objects that no Netty channel owns, the loop must run unchanged in the vhost-user daemon, and
 * dispatch here allocates nothing per event. Handlers run on the loop thread and must not block;
 * an exception from a handler is logged and the loop goes on.
 */
public final class EventLoop implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(EventLoop.class);
    private static final int MAX_EVENTS = 64;
    private static final long EVENT_SIZE = LibC.EPOLL_EVENT.byteSize();
    /** While busy-polling, passes over the pollers per look at epoll (fds, tasks' wake-ups). */
    private static final int POLLS_PER_EPOLL = 32;

    private final int epfd;
    private final Thread thread;
    private final EventFd wakeup = EventFd.create();
    private final Queue<Runnable> tasks = new ConcurrentLinkedQueue<>();
    private final Arena arena = Arena.ofShared();
    private final MemorySegment events = arena.allocate(EVENT_SIZE * MAX_EVENTS, 8);
    private final Object registrationLock = new Object();
    private volatile AtomicReferenceArray<Registration> slots = new AtomicReferenceArray<>(16);
    private int generation;
    private volatile boolean running = true;
    /** What the loop polls between events while it busy-polls; replaced whole on a change, so a pass reads it without allocating. */
    private volatile Poller[] pollers = new Poller[0];
    /** How long the loop keeps polling after the last work it found, in ns; 0: it never polls, it sleeps in epoll. */
    private volatile long busyPollNanos;

    /**
     * A source of work the loop looks at itself instead of waiting for an fd to tell it, while it
     * busy-polls (vhost-net's busyloop_timeout, a DPDK PMD's poll loop): a virtqueue whose driver
     * need not kick. Runs on the loop thread; must not block.
     */
    public interface Poller {
        /** Serves what is there now, leaving the driver's notifications off; true if it found any work. */
        boolean poll();

        /**
         * The loop is about to sleep in epoll: turn notifications back on and look once more; true if
         * work appeared meanwhile (the loop then polls on instead of sleeping).
         */
        boolean arm();
    }

    /** A poller the loop polls; close it to stop. */
    public interface PollerRegistration extends AutoCloseable {
        @Override
        void close();
    }

    /** Creates the loop and starts its thread, named {@code name}. */
    public EventLoop(String name) {
        this.epfd = LibC.epollCreate();
        addToEpoll(wakeup.fd(), LibC.EPOLLIN, -1L);
        this.thread = Thread.ofPlatform().name(name).daemon(true).unstarted(this::run);
        thread.start();
    }

    /** Whether the caller runs on this loop's thread. */
    public boolean inLoop() {
        return Thread.currentThread() == thread;
    }

    public Thread thread() {
        return thread;
    }

    /** Runs {@code task} on the loop thread, soon. */
    public void execute(Runnable task) {
        tasks.add(task);
        if (!inLoop()) {
            wakeup.signal();
        }
    }

    /**
     * Runs {@code task} on the loop thread and waits for it: a barrier after which no handler that
     * started earlier is still running. Runs directly when called on the loop thread.
     */
    public void executeAndWait(Runnable task) {
        if (inLoop() || !running) {
            task.run();
            return;
        }
        java.util.concurrent.CompletableFuture<Void> done = new java.util.concurrent.CompletableFuture<>();
        execute(() -> {
            try {
                task.run();
                done.complete(null);
            } catch (Throwable t) {
                done.completeExceptionally(t);
            }
        });
        try {
            done.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for " + thread.getName(), e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IllegalStateException("task on " + thread.getName() + " failed: " + e.getCause(), e.getCause());
        }
    }

    /** Watches {@code fd} for {@code events} (EPOLLIN, EPOLLOUT, EPOLLET, ...) until the registration is closed. */
    public Registration register(int fd, int events, FdHandler handler) {
        synchronized (registrationLock) {
            AtomicReferenceArray<Registration> table = slots;
            int slot = -1;
            for (int i = 0; i < table.length(); i++) {
                if (table.get(i) == null) {
                    slot = i;
                    break;
                }
            }
            if (slot < 0) {
                AtomicReferenceArray<Registration> bigger = new AtomicReferenceArray<>(table.length() * 2);
                for (int i = 0; i < table.length(); i++) {
                    bigger.set(i, table.get(i));
                }
                slot = table.length();
                slots = table = bigger;
            }
            Registration r = new Registration(fd, slot, ++generation & 0x7FFF_FFFF, handler);
            table.set(slot, r);
            try {
                addToEpoll(fd, events, r.key());
            } catch (RuntimeException e) {
                table.set(slot, null);
                throw e;
            }
            return r;
        }
    }

    /**
     * Keeps the loop polling its {@linkplain #addPoller pollers} for {@code nanos} after the last work
     * it found before it sleeps in epoll (0, the default: it never polls). Polling spends a CPU for
     * fewer kicks, wake-ups and interrupts per packet.
     */
    public void setBusyPoll(long nanos) {
        if (nanos < 0) {
            throw new IllegalArgumentException("busy-poll time must be >= 0 ns, was " + nanos);
        }
        busyPollNanos = nanos;
        if (!inLoop()) {
            wakeup.signal(); // a sleeping loop starts polling now
        }
    }

    /** Adds {@code poller} to what the loop polls while busy-polling; close the result to remove it. */
    public PollerRegistration addPoller(Poller poller) {
        synchronized (registrationLock) {
            Poller[] now = Arrays.copyOf(pollers, pollers.length + 1);
            now[now.length - 1] = poller;
            pollers = now;
        }
        return () -> {
            synchronized (registrationLock) {
                pollers = Arrays.stream(pollers).filter(p -> p != poller).toArray(Poller[]::new);
            }
        };
    }

    private void addToEpoll(int fd, int events, long key) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ev = a.allocate(LibC.EPOLL_EVENT);
            ev.set(ValueLayout.JAVA_INT, 0, events);
            ev.set(ValueLayout.JAVA_LONG_UNALIGNED, 4, key);
            LibC.epollCtl(epfd, LibC.EPOLL_CTL_ADD, fd, ev);
        }
    }

    private void run() {
        long pollUntil = 0; // while busy-polling: when the loop stops polling unless it finds work
        boolean polling = false;
        int passes = 0;
        while (running) {
            // polling, epoll is asked only every few passes: it is a syscall, and the pollers' rings need none
            int n = polling && ++passes % POLLS_PER_EPOLL != 0 ? 0 : LibC.epollWaitRaw(epfd, events, MAX_EVENTS, polling ? 0 : -1);
            if (n < 0) {
                if (n == -Errno.EINTR) {
                    continue;
                }
                LOG.error("epoll_wait failed on {}: {}; the event loop stops", thread.getName(), Errno.name(-n));
                return;
            }
            for (int i = 0; i < n; i++) {
                long base = i * EVENT_SIZE;
                int ready = events.get(ValueLayout.JAVA_INT, base);
                long key = events.get(ValueLayout.JAVA_LONG_UNALIGNED, base + 4);
                if (key == -1L) {
                    wakeup.drain();
                    continue;
                }
                Registration r = slots.get((int) key);
                if (r != null && r.key() == key) {
                    try {
                        r.handler.onReady(ready);
                    } catch (Throwable t) {
                        LOG.error("handler for fd {} on {} failed; the loop goes on", r.fd, thread.getName(), t);
                    }
                }
            }
            Runnable task;
            while ((task = tasks.poll()) != null) {
                try {
                    task.run();
                } catch (Throwable t) {
                    LOG.error("task on {} failed; the loop goes on", thread.getName(), t);
                }
            }
            long window = busyPollNanos;
            Poller[] sources = pollers;
            if (window == 0 || sources.length == 0) {
                polling = false;
                continue;
            }
            boolean found = poll(sources, false);
            long now = System.nanoTime();
            if (n > 0 || found || !polling) {
                pollUntil = now + window; // work, an event, or woken from sleep: poll on for the whole window
                polling = true;
            } else if (now - pollUntil >= 0) {
                polling = poll(sources, true); // the window is over: notifications on, and sleep unless work came meanwhile
                pollUntil = now + window;
            }
        }
    }

    /** One pass over the pollers ({@code arm}: arming them before a sleep); true if any found work. */
    private boolean poll(Poller[] sources, boolean arm) {
        boolean work = false;
        for (Poller p : sources) {
            try {
                work |= arm ? p.arm() : p.poll();
            } catch (Throwable t) {
                LOG.error("poller on {} failed; the loop goes on", thread.getName(), t);
            }
        }
        return work;
    }

    /** Stops the thread, waits for it, and releases the epoll fd. Registered fds stay open (their owners close them). */
    @Override
    public void close() {
        if (!running) {
            return;
        }
        running = false;
        wakeup.signal();
        if (!inLoop()) {
            try {
                thread.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        LibC.closeQuietly(epfd);
        wakeup.close();
        if (!thread.isAlive()) {
            arena.close();
        }
    }

    /** A watched fd; close it to stop watching (the fd itself stays open). */
    public final class Registration implements AutoCloseable {
        private final int fd;
        private final int slot;
        private final int gen;
        private final FdHandler handler;
        private boolean closed;

        private Registration(int fd, int slot, int gen, FdHandler handler) {
            this.fd = fd;
            this.slot = slot;
            this.gen = gen;
            this.handler = handler;
        }

        private long key() {
            return ((long) gen << 32) | slot;
        }

        public int fd() {
            return fd;
        }

        /** Changes the watched events. */
        public void modify(int events) {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment ev = a.allocate(LibC.EPOLL_EVENT);
                ev.set(ValueLayout.JAVA_INT, 0, events);
                ev.set(ValueLayout.JAVA_LONG_UNALIGNED, 4, key());
                LibC.epollCtl(epfd, LibC.EPOLL_CTL_MOD, fd, ev);
            }
        }

        @Override
        public void close() {
            synchronized (registrationLock) {
                if (closed) {
                    return;
                }
                closed = true;
                slots.set(slot, null);
                if (running) {
                    try {
                        LibC.epollCtl(epfd, LibC.EPOLL_CTL_DEL, fd, MemorySegment.NULL);
                    } catch (RuntimeException e) {
                        LOG.debug("epoll_ctl DEL for fd {} failed (fd already closed?): {}", fd, e.getMessage());
                    }
                }
            }
        }
    }
}
