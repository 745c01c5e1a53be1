package io.vmm4j.vhost.engine;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.Errno;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.tap.InProcessPort;
import io.vmm4j.tap.PacketPort;
import io.vmm4j.virtio.QueueDoorbell;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetActivation;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.NetQueueCounters;
import io.vmm4j.virtio.net.VirtioNetHeader;
import io.vmm4j.virtio.queue.ChainHandler;
import io.vmm4j.virtio.queue.DescriptorChain;
import io.vmm4j.virtio.queue.Virtqueue;
import io.vmm4j.virtio.queue.VirtqueueException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * The queue engine: one virtio-net queue pair served by a thread of this process, moving frames
 * between the guest's rings and the packet port. The VMM's emulated data plane runs one per pair
 * on its I/O threads; the vhost-user back-end daemon runs the same engine over the memory and
 * eventfds a front-end passed. TX chains go out with one write (one buffer) or writev straight
 * from guest memory (the guest's virtio_net_hdr_v1 is the tap's vnet header); RX frames come in with one readv
 * straight into guest buffers, spread over several when MRG_RXBUF is on. Nothing is allocated
 * per packet. Kicks arrive from the transport (ioeventfd on this loop, or the vCPU thread in
 * synchronous mode), port readiness from epoll (edge-triggered: a kick re-reads the port).
 *
 * <p>An {@link InProcessPort} (the discard port) has no fd: the same iovecs go to its
 * transmit/receive methods instead of writev/readv, nothing is registered with epoll, and receive
 * buffers are filled when the guest's receive kick (or the start) says they were posted.
 */
public final class QueuePairWorker {
    private static final Logger LOG = LoggerFactory.getLogger(QueuePairWorker.class);
    /** Largest frame a GSO-capable guest may receive: 64 KiB of IP plus Ethernet and VLAN headers. */
    private static final int MAX_GSO_FRAME = 65535 + 14 + 4;
    private static final int MAX_IOV = 1024;
    /** What a ring error says when an access to guest memory faulted rather than the guest breaking a ring rule. */
    private static final String MEMORY_FAULT_TEXT = "an access to guest memory faulted";

    private final int pair;
    private final EventLoop loop;
    private final PacketPort port;
    /** The port's fd for readv/writev and epoll, or -1 for an in-process port. */
    private final int fd;
    /** The port when it is served in this process (no fd, no syscall), else null: checked once, here. */
    private final InProcessPort inProcess;
    private final GuestMemory memory;
    private final QueueDoorbell rxDoorbell;
    private final QueueDoorbell txDoorbell;
    private final Virtqueue rx;
    private final Virtqueue tx;
    private final NetQueueCounters rxCounters;
    private final NetQueueCounters txCounters;
    private final boolean mergeable;
    private final int headerSize;
    private final int maxFrame;
    private final Arena arena = Arena.ofShared();
    /*
     * Each direction has its own scratch (iovecs, capture copy, progress count): in synchronous mode a
     * vCPU thread serves transmit kicks while this loop serves the port's frames, both at once.
     */
    private final Lane txLane = new Lane();
    private final Lane rxLane = new Lane();
    private final MemorySegment bounce;
    /** One iovec covering {@link #bounce}, for an in-process port's receive into it. */
    private final MemorySegment bounceIov = arena.allocate(LibC.IOVEC, 1);
    private final List<DescriptorChain> rxChains = new ArrayList<>();
    private final DescriptorChain txChain;
    private final byte[] numBuffers = new byte[2];
    private final ReentrantLock rxLock = new ReentrantLock();
    private final ReentrantLock txLock = new ReentrantLock();
    private final Consumer<RingError> onRingError;
    private final ChainHandler transmit = new TransmitChains();
    /** A frame read from the port into the bounce buffer that waits for more receive buffers (its length, 0: none). */
    private long pendingLength;
    private boolean dropLogged;
    private boolean txBlocked;
    private volatile boolean running;
    private volatile boolean enabled = true;
    private volatile boolean linkUp = true;
    private QueueDoorbell.Subscription rxKicks;
    private QueueDoorbell.Subscription txKicks;
    private EventLoop.Registration portReady;
    private EventLoop.PollerRegistration poller;
    /** The last receive pass stopped for want of buffers, not because the port was empty: a busy-polling loop looks again. */
    private boolean rxWantsBuffers;
    private volatile FrameObserver frameObserver;

    /** One direction's scratch, touched only under that direction's lock. */
    private final class Lane {
        final MemorySegment iov = arena.allocate(LibC.IOVEC, MAX_IOV);
        /** Where a frame is copied for the observer; made on first use. */
        MemorySegment capture;
        /** Chains or frames served so far (handled, dropped or refused): a poller's "found work" is a change in it. */
        long served;

        void setIov(int i, long address, long length) {
            LibC.setIovec(iov, i, address, length);
        }
    }

    /**
     * The engine's view of one pair: rings, doorbells, counters and what was negotiated.
     *
     * @param guestGso    whether the guest takes GSO frames (see {@link #receivesGso})
     * @param onRingError told (on the pair's loop) when the engine stopped itself on a ring error
     */
    public record Queues(GuestMemory memory, Virtqueue rx, Virtqueue tx, QueueDoorbell rxDoorbell, QueueDoorbell txDoorbell,
                  NetQueueCounters rxCounters, NetQueueCounters txCounters, boolean mergeable, boolean guestGso, int mtu,
                  Consumer<RingError> onRingError) {
        /** The pair as the VMM's transport hands it over at DRIVER_OK (or a backend switch). */
        public static Queues from(NetActivation a, int pair) {
            NetActivation.QueuePair q = a.pairs().get(pair);
            Virtqueue rx = q.rx().openQueue();
            Virtqueue tx = q.tx().openQueue();
            rx.setPosition(a.resume().nextAvail(2 * pair), a.resume().nextUsed(2 * pair));
            tx.setPosition(a.resume().nextAvail(2 * pair + 1), a.resume().nextUsed(2 * pair + 1));
            return new Queues(a.memory(), rx, tx, q.rx(), q.tx(), a.counters(2 * pair), a.counters(2 * pair + 1),
                    a.hasFeature(NetFeatures.MRG_RXBUF), receivesGso(a.ackedFeatures()), a.mtu(),
                    error -> a.host().deviceError(error.message()));
        }

        /** Whether a guest with these acked features takes GSO frames, up to 64 KiB (§5.1.6.4). */
        public static boolean receivesGso(long ackedFeatures) {
            return VirtioFeatures.has(ackedFeatures, NetFeatures.GUEST_TSO4) || VirtioFeatures.has(ackedFeatures, NetFeatures.GUEST_TSO6)
                    || VirtioFeatures.has(ackedFeatures, NetFeatures.GUEST_UFO);
        }
    }

    public QueuePairWorker(int pair, EventLoop loop, PacketPort port, Queues queues) {
        this.pair = pair;
        this.loop = loop;
        this.port = port;
        this.inProcess = port instanceof InProcessPort p ? p : null;
        this.fd = inProcess == null ? port.fd(pair) : -1;
        this.memory = queues.memory();
        this.rxDoorbell = queues.rxDoorbell();
        this.txDoorbell = queues.txDoorbell();
        this.rx = queues.rx();
        this.tx = queues.tx();
        this.rxCounters = queues.rxCounters();
        this.txCounters = queues.txCounters();
        this.mergeable = queues.mergeable();
        this.headerSize = port.vnetHeaderSize();
        this.maxFrame = headerSize + (queues.guestGso() ? MAX_GSO_FRAME : Math.max(queues.mtu(), 1500) + 14 + 4);
        this.bounce = arena.allocate(headerSize + MAX_GSO_FRAME, 8);
        LibC.setIovec(bounceIov, 0, bounce.address(), bounce.byteSize());
        this.txChain = new DescriptorChain(tx.maxChainSegments());
        this.onRingError = queues.onRingError();
    }

    public void start() {
        running = true;
        rxKicks = rxDoorbell.onKick(loop, () -> {
            rxCounters.kicks++;
            processRx();
        });
        txKicks = txDoorbell.onKick(loop, () -> {
            txCounters.kicks++;
            processTx();
        });
        if (inProcess == null) { // an in-process port is never full and makes frames when asked: nothing to wait on
            portReady = loop.register(fd, LibC.EPOLLIN | LibC.EPOLLOUT | LibC.EPOLLET, ready -> {
                if ((ready & LibC.EPOLLOUT) != 0 && txBlocked) {
                    processTx();
                }
                if ((ready & (LibC.EPOLLIN | LibC.EPOLLERR | LibC.EPOLLHUP)) != 0) {
                    processRx();
                }
            });
        }
        poller = loop.addPoller(new RingPoller());
        // after a switch the rings may already hold work nobody kicked for
        loop.execute(() -> {
            processTx();
            processRx();
        });
    }

    /** Stops serving; when this returns no thread touches the rings for this pair. */
    public void stop() {
        running = false;
        if (poller != null) {
            poller.close();
        }
        if (rxKicks != null) {
            rxKicks.close();
            txKicks.close();
            if (portReady != null) {
                portReady.close();
            }
        }
        // a handler already running (loop thread or, in synchronous mode, a vCPU) finishes first
        rxLock.lock();
        rxLock.unlock();
        txLock.lock();
        txLock.unlock();
        loop.executeAndWait(() -> { });
        if (pendingLength > 0) {
            // the frame waited for receive buffers the driver never posted; nobody will deliver it now
            rxCounters.dropsNoBuffer++;
            LOG.info("receiveq{}: stopped with a {}-byte frame waiting for receive buffers; it is dropped (counted in drops-no-buffer)",
                    pair + 1, pendingLength);
            pendingLength = 0;
        }
    }

    public void release() {
        arena.close();
    }

    public void setEnabled(boolean on) {
        boolean was = enabled;
        if (was == on) {
            return;
        }
        enabled = on;
        if (port.queueCount() > 1) {
            port.setQueueEnabled(pair, on); // a single-queue port has no queue to detach (TUNSETQUEUE needs IFF_MULTI_QUEUE)
        }
        if (on && !was && running) {
            loop.execute(() -> {
                processTx();
                processRx();
            });
        }
    }

    /** Shows every frame this pair moves to {@code observer} (null: none, the default). */
    public void setFrameObserver(FrameObserver observer) {
        frameObserver = observer;
    }

    /** With the link down, transmitted frames are consumed and dropped and arriving ones discarded. */
    public void setLinkUp(boolean up) {
        boolean was = linkUp;
        linkUp = up;
        if (up && !was && running) {
            loop.execute(() -> {
                processTx();
                processRx();
            });
        } else if (!up && running) {
            loop.execute(this::processRx); // empty the port now: a link-down NIC delivers nothing later
        }
    }

    public int rxNextAvail() {
        return rx.nextAvail();
    }

    public int rxNextUsed() {
        return rx.nextUsed();
    }

    public int txNextAvail() {
        return tx.nextAvail();
    }

    public int txNextUsed() {
        return tx.nextUsed();
    }

    // ---- transmit: guest -> port ----

    public void processTx() {
        serveTx(false);
    }

    /** A transmit pass: with {@code polling}, notifications stay off and a full port is left to its EPOLLOUT. */
    private void serveTx(boolean polling) {
        txLock.lock();
        try {
            // a pair beyond the active count is not the driver's to use (§5.1.6.5.5); tun would still take the frames
            if (!running || !enabled || (polling && txBlocked)) {
                return;
            }
            if (polling) {
                tx.disableNotifications();
                tx.servePass(txChain, transmit);
            } else {
                txBlocked = false;
                tx.serve(txChain, transmit);
            }
        } catch (VirtqueueException e) {
            fail(2 * pair + 1, RingError.Cause.RING_BROKEN, e.getMessage());
        } catch (GuestMemoryFault e) {
            fail(2 * pair + 1, RingError.Cause.GUEST_MEMORY_FAULT, e.getMessage());
        } catch (InternalError e) {
            // HotSpot's report of a faulting guest-memory access (its backing file shrank): the pair stops, the thread lives
            fail(2 * pair + 1, RingError.Cause.GUEST_MEMORY_FAULT, MEMORY_FAULT_TEXT + " (" + e.getMessage() + ")");
        } finally {
            txLock.unlock();
        }
    }

    /** The transmit ring's side of the service loop: each chain is one frame, written to the port from guest memory. */
    private final class TransmitChains implements ChainHandler {
        @Override
        public boolean serving() {
            return running;
        }

        @Override
        public int handle(DescriptorChain chain) {
            txLane.served++;
            MemorySegment iov = txLane.iov;
            int count = 0;
            long total = 0;
            for (int i = 0; i < chain.readableCount() && count < MAX_IOV; i++, count++) {
                txLane.setIov(count, memory.hostAddress(chain.address(i), chain.length(i)), chain.length(i));
                total += chain.length(i);
            }
            if (total < headerSize) {
                txCounters.portErrors++; // §5.1.6.2: every frame starts with a header; drop and return the buffer
            } else if (!linkUp) {
                txCounters.dropsLinkDown++; // no carrier: the frame is consumed, never sent
            } else {
                // one buffer (DPDK puts the header in front of the frame): write(2), without an iovec for the kernel to copy in
                long n = inProcess != null ? inProcess.transmit(pair, iov, count)
                        : count == 1 ? LibC.writeAtRaw(fd, LibC.iovecBase(iov, 0), total) : LibC.writevRaw(fd, iov, count);
                if (n == -Errno.EAGAIN) {
                    txBlocked = true; // the port is full: resend this chain when it drains (EPOLLOUT)
                    txLane.served--;
                    return DEFER;
                }
                if (n == -Errno.EFAULT) {
                    // the kernel could not read a buffer: that part of guest memory is gone (its file shrank)
                    throw new GuestMemoryFault("write to the port: EFAULT");
                }
                if (n < 0) {
                    txCounters.portErrors++;
                } else {
                    moved(txCounters, FrameObserver.Direction.TX, txLane, count, total);
                }
            }
            return 0;
        }

        @Override
        public void published(boolean notifyDriver) {
            notifyUsed(notifyDriver, txDoorbell, txCounters);
        }
    }

    // ---- receive: port -> guest ----

    public void processRx() {
        serveRx(false);
    }

    /** A receive pass: with {@code polling}, notifications stay off when buffers run out (the loop looks again itself). */
    private void serveRx(boolean polling) {
        rxLock.lock();
        try {
            if (!running || !enabled) {
                return;
            }
            if (!linkUp) {
                // no carrier: whatever the host sends is lost, and the guest's buffers stay posted (an in-process port has no backlog)
                while (running && inProcess == null && LibC.readRaw(fd, bounce, bounce.byteSize()) > 0) {
                    rxCounters.dropsLinkDown++;
                }
                pendingLength = 0;
                return;
            }
            // not Virtqueue.serve: one frame may take several chains, and a frame short of buffers waits with kicks on
            rx.disableNotifications();
            int delivered = 0; // frames pushed but not yet published
            rxWantsBuffers = false;
            while (running) { // stop() ends a long run of frames here rather than waiting for the port to drain
                int r = receiveOne();
                if (r > 0) {
                    rxLane.served++;
                    if (++delivered == Virtqueue.PUBLISH_BATCH) {
                        publishReceived(); // the driver takes these while the port still has more
                        delivered = 0;
                    }
                    continue;
                }
                if (r < 0 && polling) {
                    rxWantsBuffers = true;
                } else if (r < 0) {
                    // out of buffers: ask the driver to kick when it posts more, then look once more; buffers
                    // looked at and given back do not count as more (§2.7.10), so a frame they cannot hold sleeps
                    if (delivered > 0) {
                        publishReceived();
                        delivered = 0;
                    }
                    if (rx.enableNotifications()) {
                        rx.disableNotifications();
                        continue;
                    }
                }
                break;
            }
            if (delivered > 0) {
                publishReceived();
            }
        } catch (VirtqueueException e) {
            fail(2 * pair, RingError.Cause.RING_BROKEN, e.getMessage());
        } catch (GuestMemoryFault e) {
            fail(2 * pair, RingError.Cause.GUEST_MEMORY_FAULT, e.getMessage());
        } catch (InternalError e) {
            // HotSpot's report of a faulting guest-memory access (its backing file shrank): the pair stops, the thread lives
            fail(2 * pair, RingError.Cause.GUEST_MEMORY_FAULT, MEMORY_FAULT_TEXT + " (" + e.getMessage() + ")");
        } finally {
            rxLock.unlock();
        }
    }

    private void publishReceived() {
        rx.publish();
        notifyUsed(rx.needsNotification(), rxDoorbell, rxCounters);
    }

    private DescriptorChain rxChain(int i) {
        while (rxChains.size() <= i) {
            // a receive buffer must fit the iovec array whole (§2.7.4.1 lets a device limit a chain's descriptors)
            rxChains.add(new DescriptorChain(Math.min(rx.maxChainSegments(), MAX_IOV)));
        }
        return rxChains.get(i);
    }

    /**
     * Moves one frame into guest buffers: 1 if one moved (or was dropped: it can never fit), 0 if the
     * port is empty, -1 if the buffers posted now are not enough (the frame, if read, stays pending).
     *
     * @throws VirtqueueException if the driver posted a buffer the device cannot use (the ring is then broken)
     */
    private int receiveOne() {
        long need = pendingLength > 0 ? pendingLength : maxFrame;
        int chains = 0;
        int count = 0;
        long space = 0;
        boolean iovFull = false;
        while (space < need) {
            DescriptorChain c = rxChain(chains);
            if (!rx.pop(c)) {
                break;
            }
            checkReceiveBuffer(c);
            if (count + c.writableCount() > MAX_IOV) {
                rx.rewind(1); // the next frame takes it; this one cannot have more iovecs
                iovFull = true;
                break;
            }
            chains++;
            for (int i = c.readableCount(); i < c.segmentCount(); i++, count++) {
                rxLane.setIov(count, memory.hostAddress(c.address(i), c.length(i)), c.length(i));
                space += c.length(i);
            }
            if (!mergeable) {
                break; // §5.1.6.3.1: without MRG_RXBUF a frame goes into one buffer
            }
        }
        if (chains == 0) {
            return -1;
        }
        long n;
        if (pendingLength == 0 && space >= maxFrame) {
            n = inProcess != null ? received(inProcess.receive(pair, rxLane.iov, count)) : LibC.readvRaw(fd, rxLane.iov, count);
            if (n == -Errno.EFAULT) {
                // the kernel could not write a buffer: that part of guest memory is gone (its file shrank)
                throw new GuestMemoryFault("readv from the port: EFAULT");
            }
            if (n < 0) {
                rx.rewind(chains);
                if (n != -Errno.EAGAIN) {
                    rxCounters.portErrors++;
                }
                return 0;
            }
        } else {
            // not room for the largest frame: read into the bounce buffer, then see whether it fits
            if (pendingLength == 0) {
                n = inProcess != null ? received(inProcess.receive(pair, bounceIov, 1)) : LibC.readRaw(fd, bounce, bounce.byteSize());
                if (n < 0) {
                    rx.rewind(chains);
                    if (n != -Errno.EAGAIN) {
                        rxCounters.portErrors++;
                    }
                    return 0;
                }
                pendingLength = n;
            }
            if (pendingLength > space) {
                rx.rewind(chains);
                // §5.1.6.3: without MRG_RXBUF one buffer holds the frame; with it, at most the whole ring (or MAX_IOV segments)
                if (!mergeable || iovFull || chains == rx.size()) {
                    dropTooLarge(chains, count, space);
                    return 1;
                }
                return -1; // legal but too few buffers yet: wait for the driver's next kick; the frame stays pending
            }
            scatterBounce(count, pendingLength);
            n = pendingLength;
            pendingLength = 0;
        }
        long left = n;
        int used = 0;
        while (used < chains && (left > 0 || used == 0)) {
            DescriptorChain c = rxChains.get(used);
            long len = Math.min(left, c.writableBytes());
            rx.push(c.head(), (int) len);
            left -= len;
            used++;
        }
        rx.rewind(chains - used);
        // VERSION_1 headers always carry num_buffers (§5.1.6.4): the port leaves those bytes alone
        numBuffers[0] = (byte) used;
        numBuffers[1] = (byte) (used >> 8);
        rxChains.getFirst().copyToWritable(memory, VirtioNetHeader.NUM_BUFFERS, numBuffers, 0, 2);
        moved(rxCounters, FrameObserver.Direction.RX, rxLane, count, n);
        return 1;
    }

    /**
     * The receive buffer rules the ring engine cannot know: the device only writes into receive
     * buffers, and with MRG_RXBUF each one holds at least the header. A buffer breaking them is a
     * driver bug, so the ring is broken (DEVICE_NEEDS_RESET), never retried.
     */
    private void checkReceiveBuffer(DescriptorChain c) {
        if (c.readableCount() > 0) {
            // §2.7.5.1: the device MUST NOT write to a device-readable buffer; a receive buffer is only written to (so vhost-net too)
            throw rx.markBroken(String.format("receive buffer (chain %d) has %d device-readable descriptor(s) of %d bytes; a receive"
                    + " buffer must be device-writable only (virtio 1.2 §2.7.5.1): the driver must set VIRTQ_DESC_F_WRITE on every"
                    + " descriptor it posts to a receive queue", c.head(), c.readableCount(), c.readableBytes()));
        }
        if (mergeable && c.writableBytes() < headerSize) {
            // §5.1.6.3.1: with MRG_RXBUF each buffer MUST be at least the size of struct virtio_net_hdr
            throw rx.markBroken(String.format("receive buffer (chain %d) holds %d bytes, less than the %d-byte virtio-net header"
                    + " every buffer must hold with MRG_RXBUF (virtio 1.2 §5.1.6.3.1)", c.head(), c.writableBytes(), headerSize));
        }
    }

    /** Drops the pending frame: no set of buffers the driver could post now would hold it. */
    private void dropTooLarge(int chains, int segments, long space) {
        rxCounters.dropsNoBuffer++;
        String why = !mergeable
                ? String.format("without MRG_RXBUF it must fit one receive buffer, and the next one holds %d bytes", space)
                : chains == rx.size()
                ? String.format("all %d buffers the %d-entry ring holds give %d bytes", chains, rx.size(), space)
                : String.format("the %d buffers (%d segments) that fit the %d segments a frame may take give %d bytes",
                        chains, segments, MAX_IOV, space);
        if (!dropLogged) {
            dropLogged = true; // once per queue: a driver that posts small buffers would otherwise log every frame
            LOG.warn("receiveq{}: dropped a {}-byte frame (counted in drops-no-buffer; further drops are only counted): {};"
                    + " the driver should post larger receive buffers (virtio 1.2 §5.1.6.3)", pair + 1, pendingLength, why);
        } else {
            LOG.debug("receiveq{}: dropped a {}-byte frame: {}", pair + 1, pendingLength, why);
        }
        pendingLength = 0;
    }

    /** An in-process port's "no frame now" (-1) as readv's EAGAIN, so both ports share one path. */
    private static long received(long n) {
        return n < 0 ? -Errno.EAGAIN : n;
    }

    private void scatterBounce(int count, long length) {
        long done = 0;
        for (int i = 0; i < count && done < length; i++) {
            long base = LibC.iovecBase(rxLane.iov, i);
            long len = Math.min(LibC.iovecLength(rxLane.iov, i), length - done);
            MemorySegment.copy(bounce, done, MemorySegment.ofAddress(base).reinterpret(len), 0, len);
            done += len;
        }
    }

    /** Counts a frame that moved through the first {@code count} iovecs of {@code lane} ({@code total} bytes, header included) and shows it to the observer, if any. */
    private void moved(NetQueueCounters counters, FrameObserver.Direction direction, Lane lane, int count, long total) {
        counters.packets++;
        counters.bytes += total - headerSize;
        FrameObserver observer = frameObserver;
        if (observer != null) {
            observe(observer, direction, lane, count, total);
        }
    }

    /**
     * Copies the frame the first {@code count} iovecs hold ({@code total} bytes, virtio-net header
     * first) out of guest memory, header stripped, and shows it to {@code observer}.
     */
    private void observe(FrameObserver observer, FrameObserver.Direction direction, Lane lane, int count, long total) {
        long wireLength = total - headerSize;
        if (wireLength <= 0) {
            return;
        }
        if (lane.capture == null) {
            lane.capture = arena.allocate(MAX_GSO_FRAME, 8);
        }
        MemorySegment capture = lane.capture;
        MemorySegment iov = lane.iov;
        long limit = Math.min(wireLength, capture.byteSize());
        long skip = headerSize;
        long copied = 0;
        for (int i = 0; i < count && copied < limit; i++) {
            long base = LibC.iovecBase(iov, i);
            long len = LibC.iovecLength(iov, i);
            if (skip >= len) {
                skip -= len;
                continue;
            }
            long n = Math.min(len - skip, limit - copied);
            MemorySegment.copy(MemorySegment.ofAddress(base + skip).reinterpret(n), 0, capture, copied, n);
            copied += n;
            skip = 0;
        }
        try {
            observer.frame(pair, direction, capture.asSlice(0, copied), wireLength);
        } catch (RuntimeException e) {
            LOG.warn("frame observer failed on pair {}: {}", pair, e.toString()); // the data path goes on
        }
    }

    /**
     * The pair as a busy-polling loop sees it ({@link EventLoop#setBusyPoll}): both rings served with
     * the driver's kicks off, receive looked at again while it waits for buffers (an in-process port
     * always has a frame); armed, both get the event-driven pass that turns kicks back on.
     */
    private final class RingPoller implements EventLoop.Poller {
        @Override
        public boolean poll() {
            long before = served();
            serveTx(true);
            if (inProcess != null || rxWantsBuffers) {
                serveRx(true);
            }
            return served() != before;
        }

        @Override
        public boolean arm() {
            long before = served();
            processTx();
            processRx();
            return served() != before;
        }
    }

    /** Both directions' progress, as this loop sees it (a transmit pass on a vCPU thread may be under way). */
    private long served() {
        return txLane.served + rxLane.served;
    }

    private static void notifyUsed(boolean needed, QueueDoorbell doorbell, NetQueueCounters counters) {
        if (needed) {
            doorbell.signalUsed();
            counters.interrupts++;
        } else {
            counters.interruptsSuppressed++;
        }
    }

    private void fail(int queue, RingError.Cause cause, String detail) {
        running = false;
        onRingError.accept(new RingError(queue, cause, detail));
    }

    /** The kernel could not copy to or from a guest buffer (EFAULT): that part of guest memory is gone. */
    private static final class GuestMemoryFault extends RuntimeException {
        GuestMemoryFault(String where) {
            super(MEMORY_FAULT_TEXT + " (" + where + ")", null, false, false);
        }
    }
}
