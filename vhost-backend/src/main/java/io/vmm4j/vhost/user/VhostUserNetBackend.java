package io.vmm4j.vhost.user;

import io.vmm4j.core.event.EventFd;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.LinkDownPlane;
import io.vmm4j.virtio.QueueBinding;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetActivation;
import io.vmm4j.virtio.net.NetBackend;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.QueuePositions;
import io.vmm4j.virtio.queue.SplitRing;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

import static io.vmm4j.vhost.user.VhostUserProtocol.F_PROTOCOL_FEATURES;
import static io.vmm4j.vhost.user.VhostUserProtocol.PROTOCOL_F_MQ;
import static io.vmm4j.vhost.user.VhostUserProtocol.PROTOCOL_F_NET_MTU;
import static io.vmm4j.vhost.user.VhostUserProtocol.PROTOCOL_F_REPLY_ACK;

/**
 * The vhost-user data plane as the VMM sees it: the rings go to a back-end process over a UNIX
 * socket and no VMM thread touches them. The guest's notify writes signal the transport's kick
 * eventfds, which the back-end polls; it signals the call eventfds, which the transport turns into
 * MSI-X messages. The control queue stays in the VMM ({@code VirtioNet}).
 *
 * <p>The back-end's features are asked for when this object is made (GET_FEATURES, protocol
 * features, GET_QUEUE_NUM), because the device's offer to the guest depends on them. If the back-end
 * hangs up later, the listeners hear it once (the VMM sets the link down) and the VMM goes on.
 */
public final class VhostUserNetBackend implements NetBackend {
    private static final Logger LOG = LoggerFactory.getLogger(VhostUserNetBackend.class);

    /** Device features the VMM's control plane implements, whatever the back-end says: config space and the control queue. */
    static final long CONTROL_PLANE_FEATURES = VirtioFeatures.bit(NetFeatures.MAC) | VirtioFeatures.bit(NetFeatures.STATUS)
            | VirtioFeatures.bit(NetFeatures.CTRL_VQ) | VirtioFeatures.bit(NetFeatures.CTRL_RX);
    /**
     * Never offered to the guest over vhost-user: no vhost-user message changes the back-end's
     * receive offloads at run time (CTRL_GUEST_OFFLOADS), and bit 30 is the protocol's, not virtio's.
     */
    static final long NOT_OFFERED = VirtioFeatures.bit(NetFeatures.CTRL_GUEST_OFFLOADS) | VhostUserProtocol.bit(F_PROTOCOL_FEATURES);
    /** The protocol features this front-end uses. */
    static final long WANTED_PROTOCOL_FEATURES = VhostUserProtocol.bit(PROTOCOL_F_MQ) | VhostUserProtocol.bit(PROTOCOL_F_REPLY_ACK)
            | VhostUserProtocol.bit(PROTOCOL_F_NET_MTU);

    private final VhostUserFrontend frontend;
    private final long backendFeatures;
    private final long protocolFeatures;
    private final int maxQueuePairs;
    private final EventLoop watchLoop;
    private final List<Consumer<String>> hangupListeners = new CopyOnWriteArrayList<>();
    private final List<EventFd> errFds = new ArrayList<>();
    private final List<EventLoop.Registration> errWatches = new ArrayList<>();
    private final LinkDownPlane linkDown = new LinkDownPlane(VhostUserNetBackend::portWithNothingBehindIt, true);
    private volatile String hangup;
    private boolean owner;
    private boolean linkUp = true;
    private NetActivation active;

    /**
     * Connects to the back-end at {@code socket} and learns what it offers.
     *
     * @param watchLoop where the socket is watched for a hang-up and the rings' error eventfds are read
     * @throws VhostUserException naming the socket if nobody listens there or the back-end misbehaves
     */
    public VhostUserNetBackend(Path socket, EventLoop watchLoop) {
        this.watchLoop = watchLoop;
        this.frontend = VhostUserFrontend.connect(socket, VhostUserFrontend.DEFAULT_REPLY_TIMEOUT_MILLIS);
        try {
            backendFeatures = frontend.getFeatures();
            long protocol = 0;
            if (VhostUserProtocol.has(backendFeatures, F_PROTOCOL_FEATURES)) {
                protocol = frontend.getProtocolFeatures() & WANTED_PROTOCOL_FEATURES;
                frontend.setProtocolFeatures(protocol);
            }
            protocolFeatures = protocol;
            int pairs = 1;
            if (VhostUserProtocol.has(protocol, PROTOCOL_F_MQ)) {
                long queues = frontend.getQueueNum();
                // "Multiple queue support": the number of queues (vrings); a pair is two of them
                pairs = (int) Math.max(1, Math.min(queues / 2, 256));
            }
            maxQueuePairs = pairs;
            frontend.watchHangup(watchLoop, this::hungUp);
        } catch (RuntimeException e) {
            frontend.close();
            throw e;
        }
        LOG.debug("vhost-user back-end at {}: features {} protocol {} pairs {}", socket, NetFeatures.names(backendFeatures),
                VhostUserProtocol.protocolFeatureNames(protocolFeatures), maxQueuePairs);
    }

    public Path socket() {
        return frontend.path();
    }

    /** What GET_FEATURES returned. */
    public long backendFeatures() {
        return backendFeatures;
    }

    /** The protocol features both sides use. */
    public long protocolFeatures() {
        return protocolFeatures;
    }

    /** Why the back-end is gone, or null while it is there. */
    public String hangup() {
        return hangup;
    }

    /** Tells {@code listener} (once, on the watch loop) when the back-end hangs up, with a sentence saying so. */
    public void onHangup(Consumer<String> listener) {
        hangupListeners.add(listener);
    }

    private void hungUp(String reason) {
        hangup = reason;
        LOG.info("{}: the data plane stopped", reason); // the listeners tell the user (the VMM sets the link down)
        for (Consumer<String> l : hangupListeners) {
            try {
                l.accept(reason);
            } catch (RuntimeException e) {
                LOG.error("a hang-up listener failed", e);
            }
        }
    }

    @Override
    public String name() {
        return "vhost-user";
    }

    /** The back-end's bits (less those that cannot work over vhost-user) plus the control-plane bits the VMM serves itself. */
    @Override
    public long supportedFeatures() {
        return (backendFeatures & ~NOT_OFFERED & ~CONTROL_PLANE_FEATURES) | CONTROL_PLANE_FEATURES;
    }

    @Override
    public int maxQueuePairs() {
        return maxQueuePairs;
    }

    private boolean protocolFeaturesOn() {
        return VhostUserProtocol.has(backendFeatures, F_PROTOCOL_FEATURES);
    }

    @Override
    public synchronized void start(NetActivation a) {
        if (active != null || linkDown.serving()) {
            throw new IllegalStateException("the vhost-user back-end at " + socket() + " is already serving the device");
        }
        if (!linkUp) {
            linkDown.takeOver(a, a.resume()); // the back-end gets the rings when the link comes up
            return;
        }
        if (a.pairs().size() > maxQueuePairs) {
            throw new VhostUserException(a.pairs().size() + " queue pairs asked, but the vhost-user back-end at " + socket()
                    + " serves at most " + maxQueuePairs);
        }
        for (NetActivation.QueuePair p : a.pairs()) {
            if (p.rx().synchronous() || p.tx().synchronous()) {
                throw new IllegalStateException("vhost-user needs the transport's kick eventfds (ioeventfd notify mode), "
                        + "but the queues are handled synchronously on the vCPU thread");
            }
        }
        if (!owner) {
            frontend.setOwner(); // "SET_OWNER": the session starts
            owner = true;
        }
        // only the bits the back-end implements go to it; the control-plane bits stay here
        long features = a.ackedFeatures() & backendFeatures & ~VhostUserProtocol.bit(F_PROTOCOL_FEATURES);
        if (protocolFeaturesOn()) {
            features |= VhostUserProtocol.bit(F_PROTOCOL_FEATURES);
        }
        frontend.setFeatures(features);
        if (a.hasFeature(NetFeatures.MTU) && VhostUserProtocol.has(protocolFeatures, PROTOCOL_F_NET_MTU)) {
            frontend.setMtu(a.mtu());
        }
        GuestMemory memory = a.memory();
        frontend.setMemTable(memory);
        try {
            for (NetActivation.QueuePair p : a.pairs()) {
                startRing(a, 2 * p.index(), p.rx(), "receiveq" + (p.index() + 1));
                startRing(a, 2 * p.index() + 1, p.tx(), "transmitq" + (p.index() + 1));
            }
            if (protocolFeaturesOn()) {
                // "Ring states": with protocol features rings start disabled
                for (NetActivation.QueuePair p : a.pairs()) {
                    frontend.setVringEnable(2 * p.index(), p.index() < a.activePairs());
                    frontend.setVringEnable(2 * p.index() + 1, p.index() < a.activePairs());
                }
            }
        } catch (RuntimeException e) {
            releaseErrFds();
            throw e;
        }
        active = a;
        LOG.debug("vhost-user back-end at {} serves {} queue pair(s)", socket(), a.pairs().size());
    }

    private void startRing(NetActivation a, int index, QueueBinding q, String name) {
        GuestMemory memory = a.memory();
        int size = q.size();
        frontend.setVringNum(index, size);
        frontend.setVringBase(index, a.resume().nextAvail(index));
        // SET_VRING_ADDR takes this process's addresses of the rings; the back-end translates them through userspace_addr
        frontend.setVringAddr(index, memory.hostAddress(q.descTable(), SplitRing.descriptorTableBytes(size)),
                memory.hostAddress(q.usedRing(), SplitRing.usedRingBytes(size)),
                memory.hostAddress(q.availRing(), SplitRing.availRingBytes(size)));
        EventFd err = EventFd.create();
        errFds.add(err);
        errWatches.add(watchLoop.register(err.fd(), LibC.EPOLLIN, ready -> {
            err.drain();
            a.host().deviceError("the vhost-user back-end at " + socket() + " reported an error on " + name
                    + " (its log says which)");
        }));
        frontend.setVringErr(index, err);
        frontend.setVringCall(index, q.call());
        frontend.setVringKick(index, q.kick()); // "Ring states": a ring starts at its kick fd
    }

    /**
     * GET_VRING_BASE on every ring (which stops it) gives the next avail index; the used index is
     * what the back-end last published in the used ring. With the back-end gone, both are the used idx.
     */
    @Override
    public synchronized QueuePositions stop() {
        if (linkDown.serving()) {
            return linkDown.stop();
        }
        NetActivation a = active;
        if (a == null) {
            return null;
        }
        active = null;
        int queues = 2 * a.pairs().size();
        int[] avail = new int[queues];
        int[] used = new int[queues];
        for (NetActivation.QueuePair p : a.pairs()) {
            for (QueueBinding q : List.of(p.rx(), p.tx())) {
                int index = q == p.rx() ? 2 * p.index() : 2 * p.index() + 1;
                used[index] = Short.toUnsignedInt(a.memory().loadAcquireShort(q.usedRing() + SplitRing.RING_IDX));
                avail[index] = used[index];
                if (frontend.connected()) {
                    try {
                        avail[index] = frontend.getVringBase(index);
                        used[index] = Short.toUnsignedInt(a.memory().loadAcquireShort(q.usedRing() + SplitRing.RING_IDX));
                    } catch (VhostUserException e) {
                        LOG.warn("stopping ring {}: {}; taking the used index as its position", index, e.getMessage());
                    }
                }
            }
        }
        releaseErrFds();
        return new QueuePositions(avail, used);
    }

    private void releaseErrFds() {
        errWatches.forEach(EventLoop.Registration::close);
        errWatches.clear();
        errFds.forEach(EventFd::close);
        errFds.clear();
    }

    /** The driver changed the active pairs (VIRTIO_NET_CTRL_MQ): rings beyond them are disabled (SET_VRING_ENABLE 0). */
    /**
     * Link down (set_link off, or the back-end hung up): the back-end's rings are stopped
     * (GET_VRING_BASE) and an emulated plane with no carrier consumes them, dropping what the guest
     * sends (counted), as QEMU stops vhost while the link is down; link up gives the rings back to
     * the back-end (the whole ring setup again) where that plane stopped.
     */
    @Override
    public synchronized void setLinkUp(boolean up) {
        if (up == linkUp) {
            return;
        }
        linkUp = up;
        if (!up && active != null) {
            NetActivation a = active;
            QueuePositions at = stop();
            linkDown.takeOver(a, at);
            LOG.info("vhost-user: link down, the back-end's rings stopped at {}; frames are dropped until the link is up", at);
        } else if (up && linkDown.serving()) {
            if (!frontend.connected()) {
                LOG.warn("vhost-user: link up asked, but the back-end at {} is gone; the rings stay with the link-down plane", socket());
                linkUp = false;
                return;
            }
            NetActivation resumed = linkDown.handBack();
            start(resumed);
            LOG.info("vhost-user: link up, the back-end serves the rings again from {}", resumed.resume());
        }
    }

    /** While the link is down the rings drain into an in-memory port whose peer is closed: nothing arrives, nothing is sent. */
    private static MemoryPort portWithNothingBehindIt(int pairs) {
        MemoryPort[] ends = MemoryPort.pair(pairs, TapDevice.VNET_HEADER_V1_SIZE);
        ends[1].close();
        return ends[0];
    }

    @Override
    public synchronized void setActivePairs(int pairs) {
        linkDown.setActivePairs(pairs);
        if (active == null || !protocolFeaturesOn() || !frontend.connected()) {
            return;
        }
        try {
            for (NetActivation.QueuePair p : active.pairs()) {
                frontend.setVringEnable(2 * p.index(), p.index() < pairs);
                frontend.setVringEnable(2 * p.index() + 1, p.index() < pairs);
            }
        } catch (VhostUserException e) {
            LOG.error("enabling {} queue pair(s) on the vhost-user back-end failed: {}", pairs, e.getMessage());
        }
    }

    /** Not offered (CTRL_GUEST_OFFLOADS is masked), so a well-behaved driver never gets here. */
    @Override
    public void setGuestOffloads(long guestOffloads) {
        LOG.warn("vhost-user cannot change the back-end's receive offloads at run time; ignored 0x{}", Long.toHexString(guestOffloads));
    }

    @Override
    public void close() {
        try {
            stop();
        } catch (RuntimeException e) {
            LOG.debug("stopping the vhost-user rings at close failed: {}", e.getMessage());
        }
        frontend.close();
    }
}
