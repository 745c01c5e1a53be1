package io.vmm4j.vhost.user;

import io.vmm4j.virtio.queue.PackedRing;
import io.vmm4j.virtio.queue.RingLayout;

import io.vmm4j.core.linux.LibC;
import io.vmm4j.virtio.queue.SplitRing;

import static io.vmm4j.vhost.user.VhostUserProtocol.VRING_F_LOG;

/**
 * The vrings of one session and the ring messages, each checked against the ring's state before
 * it changes anything ("Ring states"): a ring is stopped until its kick fd arrives and again after
 * GET_VRING_BASE; its size, addresses and base change only while it is stopped; SET_VRING_ENABLE
 * enables it. A ring starting or stopping starts or stops its queue pair. The session has checked
 * each message's payload and fds; this checks their values.
 */
final class Vrings {
    private final VhostUserNetDaemon daemon;
    private final int session;
    private final Vring[] rings;
    private final QueuePairs pairs;

    /** @param session the front-end's number, for log lines */
    Vrings(VhostUserNetDaemon daemon, int session, Vring[] rings, QueuePairs pairs) {
        this.daemon = daemon;
        this.session = session;
        this.rings = rings;
        this.pairs = pairs;
    }

    int count() {
        return rings.length;
    }

    /** The vring {@code request} names; refused if there is none with that index. */
    Vring ring(int index, VhostUserRequest request) {
        if (index < 0 || index >= rings.length) {
            throw new VhostUserException(request + " names vring " + Integer.toUnsignedString(index) + ", out of range: this back-end has "
                    + rings.length + " vrings (0.." + (rings.length - 1) + ")");
        }
        return rings[index];
    }

    private void requireStopped(Vring r, VhostUserRequest request) {
        if (r.started && pairs.running(r.index / 2)) {
            throw new VhostUserException(request + " for vring " + r.index + " while it runs; GET_VRING_BASE stops it first");
        }
    }

    void setNum(VhostUserMessage.VringState s) {
        Vring r = ring(s.index(), VhostUserRequest.SET_VRING_NUM);
        requireStopped(r, VhostUserRequest.SET_VRING_NUM);
        if (pairs.layout() == RingLayout.PACKED) {
            if (s.num() > PackedRing.MAX_QUEUE_SIZE || !PackedRing.isValidQueueSize((int) s.num())) {
                throw new VhostUserException("SET_VRING_NUM for vring " + r.index + " is " + s.num()
                        + ", not in 1.." + PackedRing.MAX_QUEUE_SIZE + " (virtio 1.2 §2.8, packed ring)");
            }
        } else if (s.num() > SplitRing.MAX_QUEUE_SIZE || !SplitRing.isValidQueueSize((int) s.num())) {
            throw new VhostUserException("SET_VRING_NUM for vring " + r.index + " is " + s.num()
                    + ", not a power of two in 1.." + SplitRing.MAX_QUEUE_SIZE + " (virtio 1.2 §2.7)");
        }
        r.size = (int) s.num();
    }

    void setAddr(VhostUserMessage.VringAddressDescription a) {
        Vring r = ring(a.index(), VhostUserRequest.SET_VRING_ADDR);
        requireStopped(r, VhostUserRequest.SET_VRING_ADDR);
        if ((a.flags() & VRING_F_LOG) != 0) {
            throw new VhostUserException("SET_VRING_ADDR for vring " + r.index + " asks for used-ring logging (VHOST_VRING_F_LOG), "
                    + "but this back-end offers no LOG_ALL");
        }
        if (a.flags() != 0) {
            throw new VhostUserException("SET_VRING_ADDR for vring " + r.index + " has unknown flags 0x" + Integer.toHexString(a.flags()));
        }
        MappedMemoryTable memory = pairs.memory();
        if (memory == null) {
            throw new VhostUserException("SET_VRING_ADDR for vring " + r.index + " before SET_MEM_TABLE: its addresses cannot be translated");
        }
        // translate now so a bad address is refused here, not at the kick; the sizes are checked again at start
        memory.toGuestAreas(a.address(), Math.max(r.size, 1), r.index, pairs.layout());
        r.address = a.address();
    }

    void setBase(VhostUserMessage.VringState s) {
        Vring r = ring(s.index(), VhostUserRequest.SET_VRING_BASE);
        requireStopped(r, VhostUserRequest.SET_VRING_BASE);
        if (pairs.layout() == RingLayout.SPLIT && s.num() > 0xFFFF) {
            throw new VhostUserException("SET_VRING_BASE for vring " + r.index + " is " + s.num()
                    + "; a split ring index is 16 bits (virtio 1.2 §2.7.6)");
        }
        r.base = s.num(); // packed: both halves, checked against the ring when it starts
    }

    /** GET_VRING_BASE: stops the ring (and so its pair) and answers where it stopped. */
    byte[] getBase(VhostUserMessage.VringState s) {
        Vring r = ring(s.index(), VhostUserRequest.GET_VRING_BASE);
        int pair = r.index / 2;
        if (pairs.running(pair)) {
            // "Ring states": GET_VRING_BASE stops the ring; the engine serves both rings of a pair, so both stop
            pairs.stop(pair);
            daemon.log("front-end %d: queue pair %d stopped by GET_VRING_BASE(%d): rx at %s, tx at %s", session, pair,
                    r.index, pairs.describeBase(rings[2 * pair].base), pairs.describeBase(rings[2 * pair + 1].base));
        }
        r.started = false;
        LibC.closeQuietly(r.kickFd);
        r.kickFd = -1;
        return VhostUserMessage.vringState(r.index, r.base);
    }

    void setEnable(VhostUserMessage.VringState s) {
        Vring r = ring(s.index(), VhostUserRequest.SET_VRING_ENABLE);
        if (s.num() > 1) {
            throw new VhostUserException("SET_VRING_ENABLE for vring " + r.index + " is " + s.num() + "; it takes 0 or 1");
        }
        r.enabled = s.num() == 1;
        pairs.applyEnable(r.index / 2);
    }

    /** SET_VRING_KICK with an eventfd the ring owns from now on: "Ring states": the ring starts with its kick fd. */
    void setKick(Vring r, int fd) {
        int pair = r.index / 2;
        if (pairs.running(pair)) {
            pairs.stop(pair); // the engine listens on the old fd: restart it on the new one
        }
        LibC.closeQuietly(r.kickFd);
        r.kickFd = fd;
        r.started = true;
        try {
            pairs.tryStart(pair);
        } catch (RuntimeException e) {
            r.started = false;
            throw e;
        }
    }

    /** SET_VRING_CALL with an eventfd (or -1: none) the ring owns from now on; swapped where the engine cannot be signalling. */
    void setCall(Vring r, int fd) {
        int old = r.callFd;
        pairs.onLoop(r.index / 2, () -> r.callFd = fd);
        LibC.closeQuietly(old);
    }

    /** SET_VRING_ERR with an eventfd (or -1: none) the ring owns from now on; swapped where the engine cannot be signalling. */
    void setErr(Vring r, int fd) {
        int old = r.errFd;
        pairs.onLoop(r.index / 2, () -> r.errFd = fd);
        LibC.closeQuietly(old);
    }

    void closeFds() {
        for (Vring r : rings) {
            r.closeFds();
        }
    }
}
