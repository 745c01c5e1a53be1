package io.vmm4j.virtio;

import io.vmm4j.core.event.EventFd;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.queue.PackedQueue;
import io.vmm4j.virtio.queue.RingLayout;
import io.vmm4j.virtio.queue.SplitQueue;
import io.vmm4j.virtio.queue.Virtqueue;

/**
 * One enabled queue as the driver configured it, plus its doorbells: {@code kick} is the
 * ioeventfd a notify write signals, {@code call} the irqfd whose signal becomes the queue's
 * interrupt. Data planes in another thread, process or the kernel use the fds and addresses
 * directly; in-process devices use it as their {@link QueueDoorbell}.
 */
public final class QueueBinding implements QueueDoorbell {
    private final int index;
    private final int size;
    private final long descTable;
    private final long availRing;
    private final long usedRing;
    private final boolean eventIdx;
    private final RingLayout layout;
    private final boolean inOrder;
    private final GuestMemory memory;
    private final EventFd kick;
    private final EventFd call;
    private final boolean synchronous;
    private final Runnable interrupt;
    private volatile Runnable syncHandler;
    private EventLoop.Registration registration;

    /** A split queue; for transports and tests. */
    public QueueBinding(int index, int size, long descTable, long availRing, long usedRing, boolean eventIdx, GuestMemory memory,
                 EventFd kick, EventFd call, boolean synchronous, Runnable interrupt) {
        this(index, size, RingLayout.SPLIT, false, descTable, availRing, usedRing, eventIdx, memory, kick, call, synchronous, interrupt);
    }

    /**
     * For transports; {@code interrupt} is what {@link #signalUsed} runs in synchronous mode (the
     * queue's interrupt, at once). The three addresses are queue_desc, queue_driver and queue_device
     * (virtio 1.2 §4.1.4.3): for a packed ring the descriptor ring and the driver and device event
     * suppression structures.
     */
    public QueueBinding(int index, int size, RingLayout layout, boolean inOrder, long descTable, long availRing, long usedRing,
                        boolean eventIdx, GuestMemory memory, EventFd kick, EventFd call, boolean synchronous, Runnable interrupt) {
        this.layout = layout;
        this.inOrder = inOrder;
        this.index = index;
        this.size = size;
        this.descTable = descTable;
        this.availRing = availRing;
        this.usedRing = usedRing;
        this.eventIdx = eventIdx;
        this.memory = memory;
        this.kick = kick;
        this.call = call;
        this.synchronous = synchronous;
        this.interrupt = interrupt;
    }

    public int index() {
        return index;
    }

    public int size() {
        return size;
    }

    /** Split or packed (whether the driver accepted VIRTIO_F_RING_PACKED). */
    public RingLayout layout() {
        return layout;
    }

    /** Whether VIRTIO_F_IN_ORDER was negotiated. */
    public boolean inOrder() {
        return inOrder;
    }

    /** Guest-physical address of the descriptor table (packed: the descriptor ring). */
    public long descTable() {
        return descTable;
    }

    /** Guest-physical address of the driver area: the avail ring (packed: the driver event suppression structure). */
    public long availRing() {
        return availRing;
    }

    /** Guest-physical address of the device area: the used ring (packed: the device event suppression structure). */
    public long usedRing() {
        return usedRing;
    }

    public boolean eventIdx() {
        return eventIdx;
    }

    /** The kick eventfd (ioeventfd): signalled on each notify write unless the transport is synchronous. */
    public EventFd kick() {
        return kick;
    }

    /** The call eventfd (irqfd): signal it to interrupt the driver for this queue. */
    public EventFd call() {
        return call;
    }

    /** Whether notify writes run the handler on the notifying (vCPU) thread instead of signalling {@link #kick()}. */
    public boolean synchronous() {
        return synchronous;
    }

    /** A device-side engine over this queue's rings in its layout, at the start of the ring. */
    public Virtqueue openQueue() {
        return switch (layout) {
            case SPLIT -> new SplitQueue(memory, size, descTable, availRing, usedRing, eventIdx);
            case PACKED -> new PackedQueue(memory, size, descTable, availRing, usedRing, eventIdx, inOrder);
        };
    }

    /**
     * Runs {@code handler} for every kick: on {@code loop}'s thread when the transport uses
     * ioeventfds, or right on the notifying thread in synchronous mode. Stops when the returned
     * subscription is closed (a backend switch) or at reset.
     */
    @Override
    public synchronized Subscription onKick(EventLoop loop, Runnable handler) {
        if (synchronous) {
            syncHandler = handler;
            return () -> {
                synchronized (QueueBinding.this) {
                    if (syncHandler == handler) {
                        syncHandler = null;
                    }
                }
            };
        }
        EventLoop.Registration r = loop.register(kick.fd(), LibC.EPOLLIN, ready -> {
            kick.drain();
            handler.run();
        });
        registration = r;
        return () -> {
            synchronized (QueueBinding.this) {
                r.close();
                if (registration == r) {
                    registration = null;
                }
            }
        };
    }

    /**
     * Tells the driver about used buffers the way this queue is wired: through the call eventfd
     * (irqfd) with ioeventfds, or directly on the notifying thread in synchronous mode.
     */
    @Override
    public void signalUsed() {
        if (synchronous) {
            interrupt.run();
        } else {
            call.signal();
        }
    }

    /** For transports: called on a notify write in synchronous mode; returns whether a handler ran. */
    public boolean runSyncHandler() {
        Runnable h = syncHandler;
        if (h == null) {
            return false;
        }
        h.run();
        return true;
    }

    /** For transports: stop dispatching kicks (reset). */
    public synchronized void close() {
        syncHandler = null;
        if (registration != null) {
            registration.close();
            registration = null;
        }
    }
}
