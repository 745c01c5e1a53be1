package io.vmm4j.vhost.kernel;

import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.LinkDownPlane;
import io.vmm4j.vhost.TapOffloads;
import io.vmm4j.virtio.QueueBinding;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetActivation;
import io.vmm4j.virtio.net.NetBackend;
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
public final class VhostNetBackend implements NetBackend {
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
    private final LinkDownPlane linkDown;
    private NetActivation activation;
    private boolean linkUp = true;

    /** Probes /dev/vhost-net (failing with a clear message when it is missing). */
    public VhostNetBackend(TapDevice tap) {
        this.tap = tap;
        this.linkDown = new LinkDownPlane(pairs -> tap, false);
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
        return ~KERNEL_BITS | (KERNEL_BITS & kernelFeatures);
    }

    @Override
    public int maxQueuePairs() {
        return tap.queueCount();
    }

    @Override
    public synchronized void start(NetActivation a) {
        if (activation != null || linkDown.serving()) {
            throw new IllegalStateException("vhost-net is already running");
        }
        if (!linkUp) {
            linkDown.takeOver(a, a.resume()); // the kernel gets the rings when the link comes up
            return;
        }
        // only the ring/transport bits go to the kernel; never VHOST_NET_F_VIRTIO_NET_HDR with a vnet-header tap
        long kernelAcked = a.ackedFeatures() & KERNEL_BITS & kernelFeatures;
        tap.setOffloads(TapOffloads.fromGuestFeatures(a.ackedFeatures()));
        try {
            for (NetActivation.QueuePair pair : a.pairs()) {
                VhostKernel v = VhostKernel.open();
                instances.add(v);
                v.setOwner();
                v.setFeatures(kernelAcked);
                v.setMemTable(a.memory());
                program(v, 0, pair.rx(), a.memory(), a.resume().nextAvail(2 * pair.index()));
                program(v, 1, pair.tx(), a.memory(), a.resume().nextAvail(2 * pair.index() + 1));
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
        activation = a;
        setActivePairs(a.activePairs());
        LOG.debug("vhost-net: {} queue pair(s) handed to the kernel, features 0x{}", instances.size(), Long.toHexString(kernelAcked));
    }

    private static void program(VhostKernel v, int vring, QueueBinding b, GuestMemory memory, int base) {
        if (b.synchronous()) {
            throw new IllegalStateException("vhost-net needs the transport's ioeventfd notify mode: the kernel waits on the kick eventfd");
        }
        v.setVringNum(vring, b.size());
        v.setVringBase(vring, base);
        v.setVringAddr(vring,
                memory.hostAddress(b.descTable(), SplitRing.descriptorTableBytes(b.size())),
                memory.hostAddress(b.usedRing(), SplitRing.usedRingBytes(b.size())),
                memory.hostAddress(b.availRing(), SplitRing.availRingBytes(b.size())));
        v.setVringKick(vring, b.kick());
        v.setVringCall(vring, b.call());
    }

    /** Detaches the tap first (the rings are busy while it is attached), then asks where each ring stopped. */
    @Override
    public synchronized QueuePositions stop() {
        if (linkDown.serving()) {
            return linkDown.stop();
        }
        if (activation == null) {
            return null;
        }
        int queues = 2 * activation.pairs().size();
        int[] avail = new int[queues];
        int[] used = new int[queues];
        for (int p = 0; p < instances.size(); p++) {
            VhostKernel v = instances.get(p);
            NetActivation.QueuePair pair = activation.pairs().get(p);
            v.setBackend(0, -1);
            v.setBackend(1, -1);
            avail[2 * p] = v.getVringBase(0);
            avail[2 * p + 1] = v.getVringBase(1);
            used[2 * p] = usedIdx(activation.memory(), pair.rx());
            used[2 * p + 1] = usedIdx(activation.memory(), pair.tx());
            v.close();
        }
        instances.clear();
        activation = null;
        return new QueuePositions(avail, used);
    }

    private static int usedIdx(GuestMemory memory, QueueBinding b) {
        return Short.toUnsignedInt(memory.loadAcquireShort(b.usedRing() + SplitRing.RING_IDX));
    }

    /**
     * Link down (set_link off): the kernel worker is detached and an emulated plane with no carrier
     * consumes the rings, dropping frames both ways (counted), as QEMU stops vhost while the link is
     * down; link up hands the rings back to the kernel where that plane stopped.
     */
    @Override
    public synchronized void setLinkUp(boolean up) {
        if (up == linkUp) {
            return;
        }
        linkUp = up;
        if (!up && activation != null) {
            NetActivation a = activation;
            QueuePositions at = stop();
            linkDown.takeOver(a, at);
            LOG.info("vhost-net: link down, the kernel rings stopped at {}; frames are dropped both ways until the link is up", at);
        } else if (up && linkDown.serving()) {
            NetActivation resumed = linkDown.handBack();
            start(resumed);
            LOG.info("vhost-net: link up, the kernel serves the rings again from {}", resumed.resume());
        }
    }

    @Override
    public synchronized void setActivePairs(int pairs) {
        linkDown.setActivePairs(pairs);
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
