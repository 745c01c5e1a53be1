package io.vmm4j.vhost;

import io.vmm4j.virtio.net.NetActivation;
import io.vmm4j.virtio.net.NetBackend;
import io.vmm4j.virtio.net.QueuePositions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A data plane whose rings the vhost protocol hands to a worker outside the VMM (the kernel's
 * vhost-net, a vhost-user back-end), and what both do with the link: while it is down a
 * {@link LinkDownPlane} holds the rings, and link up hands them back where that plane stopped.
 * Subclasses say how their rings start, stop and are enabled; this class keeps the order of
 * those steps and the link state, under its own lock.
 */
public abstract class VhostDataPlane implements NetBackend {
    private static final Logger LOG = LoggerFactory.getLogger(VhostDataPlane.class);

    private final LinkDownPlane linkDown;
    private NetActivation active;
    /** Rings left as they are while the outside worker is away ({@link #parksRingsWhileAway}), to be resumed where they stand. */
    private NetActivation parked;
    private boolean linkUp = true;

    protected VhostDataPlane(LinkDownPlane linkDown) {
        this.linkDown = linkDown;
    }

    /** Who holds the rings while the link is up, for log lines: "the kernel", "the back-end at PATH". */
    protected abstract String ringHolder();

    /**
     * Hands every ring of {@code a} to the outside worker, resuming at {@code a.resume()}, with only
     * {@code a.activePairs()} pairs enabled; leaves nothing half-started if it throws.
     */
    protected abstract void startRings(NetActivation a);

    /** Stops the outside worker's rings of {@code a} and says where each stopped. */
    protected abstract QueuePositions stopRings(NetActivation a);

    /** Lets the first {@code pairs} queue pairs carry frames and stops the rest; {@code a} is null while nothing runs outside. */
    protected abstract void enablePairs(NetActivation a, int pairs);

    /**
     * Whether link down should leave the rings untouched instead of handing them to the link-down
     * plane: a worker that comes back resubmits what it had in flight (vhost-user's inflight
     * tracking), so nothing the guest posted meanwhile may be consumed here.
     */
    protected boolean parksRingsWhileAway() {
        return false;
    }

    /** Why the rings cannot go back to the outside worker now (null: they can). */
    protected String cannotResume() {
        return null;
    }

    @Override
    public final synchronized void start(NetActivation a) {
        if (active != null || linkDown.serving() || parked != null) {
            throw new IllegalStateException(ringHolder() + " already serves the device's rings");
        }
        if (!linkUp) {
            linkDown.takeOver(a, a.resume()); // the rings go outside when the link comes up
            return;
        }
        startRings(a);
        active = a;
    }

    @Override
    public final synchronized QueuePositions stop() {
        if (linkDown.serving()) {
            return linkDown.stop();
        }
        if (parked != null) {
            QueuePositions at = parked.resume();
            parked = null;
            return at;
        }
        NetActivation a = active;
        if (a == null) {
            return null;
        }
        QueuePositions at = stopRings(a);
        active = null;
        return at;
    }

    /**
     * Link down (set_link off, or the back-end hung up): the outside rings stop and an emulated
     * plane with no carrier consumes them, dropping frames both ways (counted), as QEMU stops vhost
     * while the link is down; link up hands the rings back where that plane stopped.
     */
    @Override
    public final synchronized void setLinkUp(boolean up) {
        if (up == linkUp) {
            return;
        }
        linkUp = up;
        if (!up && active != null && parksRingsWhileAway()) {
            NetActivation a = active;
            QueuePositions at = stop();
            parked = new NetActivation(a.memory(), a.ackedFeatures(), a.mtu(), a.pairs(), a.activePairs(), at, a.counters(), a.host());
            LOG.info("{}: link down, the rings {} served are left as they stand ({}) until it is back; nothing is consumed meanwhile",
                    name(), ringHolder(), at);
        } else if (!up && active != null) {
            NetActivation a = active;
            QueuePositions at = stop();
            linkDown.takeOver(a, at);
            LOG.info("{}: link down, the rings {} served stopped at {}; frames are dropped both ways until the link is up", name(),
                    ringHolder(), at);
        } else if (up && parked != null) {
            String why = cannotResume();
            if (why != null) {
                LOG.warn("{}: link up asked, but {}; the rings stay parked", name(), why);
                linkUp = false;
                return;
            }
            NetActivation resumed = parked;
            parked = null;
            try {
                start(resumed);
            } catch (RuntimeException e) {
                parked = resumed; // the outside worker refused: the rings stay as they stand
                linkUp = false;
                throw e;
            }
            LOG.info("{}: link up, {} serves the rings again from {}", name(), ringHolder(), resumed.resume());
        } else if (up && linkDown.serving()) {
            String why = cannotResume();
            if (why != null) {
                LOG.warn("{}: link up asked, but {}; the rings stay with the link-down plane", name(), why);
                linkUp = false;
                return;
            }
            NetActivation resumed = linkDown.handBack();
            try {
                start(resumed);
            } catch (RuntimeException e) {
                // the outside worker refused the rings: they go back to the link-down plane where it stopped, nothing lost
                linkDown.takeOver(resumed, resumed.resume());
                linkUp = false;
                throw e;
            }
            LOG.info("{}: link up, {} serves the rings again from {}", name(), ringHolder(), resumed.resume());
        }
    }

    /** The driver changed the active queue pairs (VIRTIO_NET_CTRL_MQ), whoever holds the rings now. */
    @Override
    public final synchronized void setActivePairs(int pairs) {
        linkDown.setActivePairs(pairs);
        if (parked != null) {
            NetActivation p = parked;
            parked = new NetActivation(p.memory(), p.ackedFeatures(), p.mtu(), p.pairs(), pairs, p.resume(), p.counters(), p.host());
        }
        enablePairs(active, pairs);
    }
}
