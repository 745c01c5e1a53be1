package io.vmm4j.vhost.kernel;

import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.LinkDownPlane;
import io.vmm4j.vhost.TapOffloads;
import io.vmm4j.vhost.VhostDataPlane;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetActivation;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.QueuePositions;
import io.vmm4j.virtio.queue.SplitRing;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;

/**
 * The kernel data plane — the article's "after": at DRIVER_OK the VMM hands each queue pair's
 * rings to a /dev/vhost-net instance (memory table, ring sizes, host addresses, bases, the very
 * kick and call eventfds of the transport) and attaches the tap; from then on the kernel thread
 * {@code vhost-PID} moves the frames and no VMM thread touches a data ring.
 */
public final class VhostNetBackend extends VhostDataPlane {
    private static final Logger LOG = LoggerFactory.getLogger(VhostNetBackend.class);

    /**
     * Feature bits vhost-net implements itself (QEMU's kernel_feature_bits): these pass only if the
     * kernel reports them; every other bit is the VMM's or the tap's business and passes through.
     */
    static final long KERNEL_BITS = VirtioFeatures.bit(24) | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC)
            | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX) | VirtioFeatures.bit(NetFeatures.MRG_RXBUF)
            | VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(NetFeatures.MTU)
            | VirtioFeatures.bit(VirtioFeatures.ACCESS_PLATFORM) | VirtioFeatures.bit(VirtioFeatures.RING_PACKED)
            | VirtioFeatures.bit(VirtioFeatures.RING_RESET) | VirtioFeatures.bit(57);

    private final TapDevice tap;
    private final long kernelFeatures;
    private final List<VhostKernel> instances = new ArrayList<>();

    /** Probes /dev/vhost-net (failing with a clear message when it is missing). */
    public VhostNetBackend(TapDevice tap) {
        super(new LinkDownPlane(pairs -> tap, false));
        this.tap = tap;
        try (VhostKernel probe = VhostKernel.open()) {
            this.kernelFeatures = probe.getFeatures();
        }
        LOG.debug("vhost-net: kernel features 0x{}", Long.toHexString(kernelFeatures));
    }

    /** What VHOST_GET_FEATURES said. */
    public long kernelFeatures() {
        return kernelFeatures;
    }

    @Override
    public String name() {
        return "vhost-net";
    }

    @Override
    public long supportedFeatures() {
        return offer(kernelFeatures);
    }

    /**
     * What the device may offer over a kernel that reports {@code kernelFeatures}: its bits among
     * KERNEL_BITS, every other bit, never UFO (see {@link TapOffloads#UFO}). VIRTIO_NET_F_MTU is a
     * kernel bit as in QEMU, and vhost-net does not report it: no MTU offer over vhost-net.
     */
    static long offer(long kernelFeatures) {
        return (~KERNEL_BITS | (KERNEL_BITS & kernelFeatures)) & ~TapOffloads.UFO;
    }

    @Override
    public int maxQueuePairs() {
        return tap.queueCount();
    }

    @Override
    protected String ringHolder() {
        return "the kernel";
    }

    @Override
    protected void startRings(NetActivation a) {
        // only the ring/transport bits go to the kernel; never VHOST_NET_F_VIRTIO_NET_HDR with a vnet-header tap
        long kernelAcked = a.ackedFeatures() & KERNEL_BITS & kernelFeatures;
        tap.setOffloads(TapOffloads.fromGuestFeatures(a.ackedFeatures()));
        try {
            for (NetActivation.QueuePair pair : a.pairs()) {
                if (pair.rx().synchronous() || pair.tx().synchronous()) {
                    throw new IllegalStateException("vhost-net needs the transport's ioeventfd notify mode: the kernel waits on the "
                            + "kick eventfd");
                }
                VhostKernel v = VhostKernel.open();
                instances.add(v);
                v.setOwner();
                v.setFeatures(kernelAcked);
                v.setMemTable(a.memory());
                v.setUpVring(0, pair.rx(), a.memory(), a.resume().nextAvail(2 * pair.index()), null);
                v.setUpVring(1, pair.tx(), a.memory(), a.resume().nextAvail(2 * pair.index() + 1), null);
                v.setBackend(0, tap.fd(pair.index()));
                v.setBackend(1, tap.fd(pair.index()));
                // a kick the previous data plane drained while stopping would otherwise be lost: with
                // EVENT_IDX the driver does not kick again until the rings move, so start with one
                pair.rx().kick().signal();
                pair.tx().kick().signal();
            }
        } catch (RuntimeException e) {
            instances.forEach(VhostKernel::close);
            instances.clear();
            throw e;
        }
        enablePairs(a, a.activePairs());
        LOG.debug("vhost-net: {} queue pair(s) handed to the kernel, features 0x{}", instances.size(), Long.toHexString(kernelAcked));
    }

    /** Detaches the tap first (the rings are busy while it is attached), then asks where each ring stopped. */
    @Override
    protected QueuePositions stopRings(NetActivation a) {
        QueuePositions.Builder at = QueuePositions.builder(2 * a.pairs().size());
        for (int p = 0; p < instances.size(); p++) {
            VhostKernel v = instances.get(p);
            NetActivation.QueuePair pair = a.pairs().get(p);
            v.setBackend(0, -1);
            v.setBackend(1, -1);
            at.set(2 * p, v.getVringBase(0), SplitRing.usedIdx(a.memory(), pair.rx().usedRing()));
            at.set(2 * p + 1, v.getVringBase(1), SplitRing.usedIdx(a.memory(), pair.tx().usedRing()));
            v.close();
        }
        instances.clear();
        return at.build();
    }

    /** A multi-queue tap's queues beyond the active pairs are detached (TUNSETQUEUE), whoever serves the rings. */
    @Override
    protected void enablePairs(NetActivation a, int pairs) {
        for (int p = 0; p < tap.queueCount() && tap.queueCount() > 1; p++) {
            if (tap.isQueueEnabled(p) != p < pairs) {
                tap.setQueueEnabled(p, p < pairs);
            }
        }
    }

    @Override
    public void setGuestOffloads(long guestOffloads) {
        tap.setOffloads(TapOffloads.fromGuestFeatures(guestOffloads));
    }

    @Override
    public synchronized void close() {
        stop();
    }
}
