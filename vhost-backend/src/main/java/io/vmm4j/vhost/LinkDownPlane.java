package io.vmm4j.vhost;

import io.vmm4j.tap.PacketPort;
import io.vmm4j.vhost.emulated.EmulatedNetBackend;
import io.vmm4j.virtio.net.NetActivation;
import io.vmm4j.virtio.net.QueuePositions;

import java.util.function.IntFunction;

/**
 * What serves the rings of a data plane outside the VMM (kernel vhost-net, a vhost-user back-end)
 * while management holds the link down. QEMU stops the vhost rings when the link goes down
 * (virtio-net's status no longer has LINK_UP) and its own code then drops what the guest sends; this
 * does the same: the outside plane is stopped and reports its positions, and an emulated plane
 * with the link down consumes every transmitted frame and discards every arriving one, counting
 * both in the device's {@code dropsLinkDown}. When the link comes back the outside plane resumes
 * from where this one stopped, so no buffer is lost or returned twice and the guest is not reset.
 *
 * <p>Not thread-safe: the owning backend calls it under its own lock.
 */
public final class LinkDownPlane {
    private final IntFunction<PacketPort> ports;
    private final boolean ownsPorts;
    private EmulatedNetBackend plane;
    private PacketPort port;
    private NetActivation suspended;

    /**
     * @param ports     the port to drain while the link is down, for a number of queue pairs
     * @param ownsPorts whether this closes the ports it was given (an in-memory stand-in) or leaves
     *                  them to their owner (the VMM's tap)
     */
    public LinkDownPlane(IntFunction<PacketPort> ports, boolean ownsPorts) {
        this.ports = ports;
        this.ownsPorts = ownsPorts;
    }

    /** Whether this serves the rings now (the link is down and the device is active). */
    public boolean serving() {
        return plane != null;
    }

    /** Takes over the rings of {@code a} at {@code at}: the outside plane has stopped there. */
    public void takeOver(NetActivation a, QueuePositions at) {
        if (plane != null) {
            throw new IllegalStateException("the link-down plane already serves the rings");
        }
        port = ports.apply(a.pairs().size());
        plane = new EmulatedNetBackend(port);
        plane.setLinkUp(false);
        NetActivation resumed = resumedAt(a, at, a.activePairs());
        plane.start(resumed);
        suspended = resumed;
    }

    /** The driver changed the active queue pairs while the link was down. */
    public void setActivePairs(int pairs) {
        if (plane != null) {
            plane.setActivePairs(pairs);
            suspended = resumedAt(suspended, suspended.resume(), pairs);
        }
    }

    /** Stops serving and returns the activation the outside plane resumes with (positions where this stopped). */
    public NetActivation handBack() {
        QueuePositions at = stop();
        return resumedAt(suspended, at, suspended.activePairs());
    }

    /** Stops serving (a device reset or a backend stop while the link is down) and says where each ring stood. */
    public QueuePositions stop() {
        if (plane == null) {
            return null;
        }
        QueuePositions at = plane.stop();
        plane.close();
        plane = null;
        if (ownsPorts) {
            port.close();
        }
        port = null;
        return at;
    }

    private static NetActivation resumedAt(NetActivation a, QueuePositions at, int activePairs) {
        return new NetActivation(a.memory(), a.ackedFeatures(), a.mtu(), a.pairs(), activePairs, at, a.counters(), a.host());
    }
}
