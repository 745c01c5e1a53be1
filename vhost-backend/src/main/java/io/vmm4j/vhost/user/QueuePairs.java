package io.vmm4j.vhost.user;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.vhost.engine.QueuePairWorker;
import io.vmm4j.vhost.engine.RingError;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.NetQueueCounters;
import io.vmm4j.virtio.queue.PackedQueue;
import io.vmm4j.virtio.queue.PackedRing;
import io.vmm4j.virtio.queue.RingLayout;
import io.vmm4j.virtio.queue.SplitQueue;
import io.vmm4j.virtio.queue.SplitRing;
import io.vmm4j.virtio.queue.Virtqueue;
import io.vmm4j.virtio.queue.VirtqueueException;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

import static io.vmm4j.vhost.user.VhostUserProtocol.F_PROTOCOL_FEATURES;

/**
 * The queue engines of one session, over the memory table the front-end sent last: the engine
 * ({@link QueuePairWorker}) serves a receive and a transmit ring together, so a pair runs once both
 * of its rings have started ("Ring states"), stops when either is stopped (keeping where each ring
 * stood as its base), and carries frames while both are enabled. A new memory table stops the
 * running pairs, swaps the mapping and starts them again.
 *
 * <p>Used on the session thread, except {@link #memory()} and the ring-error path, which run on a
 * pair's loop.
 */
final class QueuePairs {
    private final VhostUserNetDaemon daemon;
    private final int session;
    private final Vring[] rings;
    private final SessionPort port;
    private final QueuePairWorker[] workers;
    private final NetQueueCounters[] counters;
    private final Consumer<String> memoryFaulted;
    private volatile MappedMemoryTable memory; // read by a faulting engine on its loop thread
    private long ackedFeatures;
    private boolean featuresSet;
    private int mtu = 1500;
    /** The inflight record (GET_INFLIGHT_FD/SET_INFLIGHT_FD), or null: rings start from their base alone. */
    private InflightRegion inflight;

    /**
     * @param session       the front-end's number, for log lines
     * @param memoryFaulted told (on a pair's loop) when guest memory faulted under an engine, with where
     */
    QueuePairs(VhostUserNetDaemon daemon, int session, Vring[] rings, SessionPort port, Consumer<String> memoryFaulted) {
        this.daemon = daemon;
        this.session = session;
        this.rings = rings;
        this.port = port;
        this.memoryFaulted = memoryFaulted;
        this.workers = new QueuePairWorker[rings.length / 2];
        this.counters = new NetQueueCounters[rings.length];
        for (int q = 0; q < counters.length; q++) {
            counters[q] = new NetQueueCounters(q, q % 2 == 0 ? "rx" : "tx");
        }
    }

    /** Each queue's counters, rx0, tx0, rx1, ... (they outlive the engines). */
    List<NetQueueCounters> counters() {
        return List.of(counters);
    }

    /** The memory table the engines run on, or null before SET_MEM_TABLE. */
    MappedMemoryTable memory() {
        return memory;
    }

    long ackedFeatures() {
        return ackedFeatures;
    }

    /** The features SET_FEATURES acked (checked by the session): the header layout and ring features the engines use. */
    void setFeatures(long features) {
        ackedFeatures = features;
        featuresSet = true;
    }

    boolean protocolNegotiated() {
        return VirtioFeatures.has(ackedFeatures, F_PROTOCOL_FEATURES);
    }

    /** NET_SET_MTU (checked by the session): the largest frame a pair started from now on receives without GSO. */
    void setMtu(int mtu) {
        this.mtu = mtu;
    }

    int mtu() {
        return mtu;
    }

    /** The inflight region rings started from now on record into (the old one is unmapped once no engine uses it). */
    void setInflight(InflightRegion region) {
        if (anyRunning()) {
            region.close();
            throw new VhostUserException("an inflight region cannot change while queue pairs run");
        }
        if (inflight != null) {
            inflight.close();
        }
        inflight = region;
    }

    boolean running(int pair) {
        return workers[pair] != null;
    }

    boolean anyRunning() {
        for (QueuePairWorker w : workers) {
            if (w != null) {
                return true;
            }
        }
        return false;
    }

    /** Whether {@code regions} is the table mapped now while pairs run (QEMU repeats the table for every queue pair). */
    boolean servesLayout(List<VhostUserMessage.Region> regions) {
        return memory != null && anyRunning() && memory.sameLayout(regions);
    }

    /** Swaps in a new memory table: the running pairs stop, the old mapping goes, and they start again on the new one. */
    void replaceMemory(MappedMemoryTable next) {
        List<Integer> restart = new ArrayList<>();
        for (int p = 0; p < workers.length; p++) {
            if (workers[p] != null) {
                stop(p);
                restart.add(p);
            }
        }
        if (memory != null) {
            memory.close();
        }
        memory = next;
        daemon.log("front-end %d: memory table %s", session, next);
        for (int p : restart) {
            tryStart(p);
        }
    }

    /** "Ring states": without protocol features a ring is enabled as soon as it starts. */
    private boolean effectivelyEnabled(Vring r) {
        return !protocolNegotiated() || r.enabled;
    }

    private boolean pairEnabled(int pair) {
        return effectivelyEnabled(rings[2 * pair]) && effectivelyEnabled(rings[2 * pair + 1]);
    }

    /** A ring of the pair was enabled or disabled (SET_VRING_ENABLE): the pair carries frames while both are. */
    void applyEnable(int pair) {
        QueuePairWorker w = workers[pair];
        if (w == null) {
            return;
        }
        boolean on = pairEnabled(pair);
        w.setEnabled(on);
        port.pairEnabled(pair, on);
    }

    /** Starts the pair's engine once both of its rings have started. */
    void tryStart(int pair) {
        Vring rx = rings[2 * pair];
        Vring tx = rings[2 * pair + 1];
        if (!rx.started || !tx.started || workers[pair] != null) {
            return;
        }
        if (memory == null) {
            throw new VhostUserException("queue pair " + pair + " cannot start: no SET_MEM_TABLE yet");
        }
        if (!featuresSet) {
            throw new VhostUserException("queue pair " + pair + " cannot start: no SET_FEATURES yet (the header layout depends on them)");
        }
        Virtqueue rxQueue = open(rx);
        Virtqueue txQueue = open(tx);
        QueuePairWorker w = new QueuePairWorker(pair, daemon.loop(pair), port.port(), new QueuePairWorker.Queues(memory.memory(),
                rxQueue, txQueue, rx, tx, counters[2 * pair], counters[2 * pair + 1],
                VirtioFeatures.has(ackedFeatures, NetFeatures.MRG_RXBUF), QueuePairWorker.Queues.receivesGso(ackedFeatures), mtu,
                this::ringFailed));
        boolean on = pairEnabled(pair);
        if (!on) {
            w.setEnabled(false);
            port.pairEnabled(pair, false);
        }
        w.start();
        workers[pair] = w;
        daemon.log("front-end %d: queue pair %d started (%s rings: rx size %d at %s, tx size %d at %s)%s", session, pair,
                layout().label(), rx.size, describeBase(rx.base), tx.size, describeBase(tx.base),
                on ? "" : ", disabled until SET_VRING_ENABLE");
    }

    /** The ring layout the acked features select (VIRTIO_F_RING_PACKED). */
    RingLayout layout() {
        return RingLayout.of(ackedFeatures);
    }

    /** A ring base as the log shows it: the avail index, or for packed "avail offset/wrap, used offset/wrap". */
    String describeBase(long base) {
        if (layout() == RingLayout.SPLIT) {
            return Long.toString(base);
        }
        int avail = PackedRing.availPosition((int) base);
        int used = PackedRing.usedPosition((int) base);
        return String.format("avail %d wrap %d, used %d wrap %d", avail & 0x7FFF, avail >> 15, used & 0x7FFF, used >> 15);
    }

    private Virtqueue open(Vring r) {
        if (r.size == 0) {
            throw new VhostUserException("vring " + r.index + " cannot start: no SET_VRING_NUM");
        }
        if (r.address == null) {
            throw new VhostUserException("vring " + r.index + " cannot start: no SET_VRING_ADDR");
        }
        if (layout() == RingLayout.SPLIT) {
            return openSplit(r);
        }
        MappedMemoryTable.RingAreas at = memory.toGuestAreas(r.address, r.size, r.index, RingLayout.PACKED);
        try {
            PackedQueue q = new PackedQueue(memory.memory(), r.size, at.descTable(), at.availRing(), at.usedRing(),
                    VirtioFeatures.has(ackedFeatures, VirtioFeatures.EVENT_IDX), VirtioFeatures.has(ackedFeatures, VirtioFeatures.IN_ORDER));
            if (inflight != null && inflight.covers(r.index, r.size)) {
                // the region's layout for packed rings differs (vhost-user.rst "Inflight I/O tracking"); we keep only split's
                daemon.log("front-end %d: vring %d is packed; inflight tracking covers split rings only, so it is not used for it",
                        session, r.index);
            }
            // SET_VRING_BASE's "descriptor indices" (vhost-user.rst): both positions, avail in the low half
            q.setPosition(PackedRing.availPosition((int) r.base), PackedRing.usedPosition((int) r.base));
            return q;
        } catch (VirtqueueException | IllegalArgumentException e) {
            throw new VhostUserException("vring " + r.index + " cannot start: " + e.getMessage());
        }
    }

    private SplitQueue openSplit(Vring r) {
        MappedMemoryTable.RingAreas at = memory.toGuestAreas(r.address, r.size, r.index, RingLayout.SPLIT);
        try {
            SplitQueue q = new SplitQueue(memory.memory(), r.size, at.descTable(), at.availRing(), at.usedRing(),
                    VirtioFeatures.has(ackedFeatures, VirtioFeatures.EVENT_IDX));
            // the used index is whatever was last published there (zero for a fresh ring)
            int used = SplitRing.usedIdx(memory.memory(), at.usedRing());
            if (inflight != null && inflight.covers(r.index, r.size)) {
                InflightRegion.QueueTracker t = inflight.queue(r.index, r.size, used);
                if (t.resubmitted() > 0 || r.base != used) {
                    daemon.log("front-end %d: vring %d: %d chain(s) were in flight when the last back-end stopped; resubmitting from "
                            + "used index %d (base asked %d)", session, r.index, t.resubmitted(), used, r.base);
                }
                // "Inflight I/O tracking": in-order, so what was in flight is the avail entries from used idx on
                r.base = used;
                q.setPosition(used, used);
                q.setInflightLog(t);
                return q;
            }
            q.setPosition((int) r.base, used); // split: at most 16 bits (SET_VRING_BASE checks)
            return q;
        } catch (VirtqueueException | IllegalArgumentException e) {
            throw new VhostUserException("vring " + r.index + " cannot start: " + e.getMessage());
        }
    }

    /** Stops the pair's engine and keeps where each ring stood as its base. */
    void stop(int pair) {
        QueuePairWorker w = workers[pair];
        if (w == null) {
            return;
        }
        Vring.unblockingSignals(w::stop, rings[2 * pair], rings[2 * pair + 1]);
        boolean packed = layout() == RingLayout.PACKED;
        // split: the avail index (the used one is in guest memory); packed: both halves, there is no used index in memory
        rings[2 * pair].base = packed ? Integer.toUnsignedLong(PackedRing.vringBase(w.rxNextAvail(), w.rxNextUsed())) : w.rxNextAvail();
        rings[2 * pair + 1].base = packed ? Integer.toUnsignedLong(PackedRing.vringBase(w.txNextAvail(), w.txNextUsed()))
                : w.txNextAvail();
        w.release();
        workers[pair] = null;
        port.pairStopped(pair);
    }

    /** Runs {@code swap} where the pair's engine cannot be signalling at the same time (its loop), so the old fd can be closed after. */
    void onLoop(int pair, Runnable swap) {
        if (workers[pair] != null) {
            EventLoop loop = daemon.loop(pair);
            Vring.unblockingSignals(() -> loop.executeAndWait(swap), rings[2 * pair], rings[2 * pair + 1]);
        } else {
            swap.run();
        }
    }

    /** Called on the pair's loop when the guest broke a ring, or its memory faulted: the engine has stopped itself. */
    private void ringFailed(RingError error) {
        if (error.cause() == RingError.Cause.GUEST_MEMORY_FAULT) {
            memoryFaulted.accept("queue pair " + error.pair() + ": " + error.message());
            return;
        }
        daemon.log("front-end %d: queue pair %d stopped on a ring error: %s", session, error.pair(), error.message());
        rings[error.queue()].signalError();
    }

    /** Stops every pair (RESET_OWNER). */
    void stopAll() {
        for (int p = 0; p < workers.length; p++) {
            stop(p);
        }
    }

    /** Stops every pair (the session ends) and unmaps the memory. */
    void close() {
        for (int p = 0; p < workers.length; p++) {
            try {
                stop(p);
            } catch (RuntimeException e) {
                daemon.log("front-end %d: stopping queue pair %d failed: %s", session, p, e.getMessage());
            }
        }
        if (memory != null) {
            memory.close();
            memory = null;
        }
        if (inflight != null) {
            inflight.close();
            inflight = null;
        }
    }
}
