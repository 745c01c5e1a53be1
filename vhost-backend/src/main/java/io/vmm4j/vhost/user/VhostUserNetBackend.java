package io.vmm4j.vhost.user;

import io.vmm4j.core.event.EventFd;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.LinkDownPlane;
import io.vmm4j.vhost.VhostDataPlane;
import io.vmm4j.virtio.QueueBinding;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetActivation;
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
public final class VhostUserNetBackend extends VhostDataPlane {
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
    private volatile String hangup;
    private boolean owner;

    /**
     * Connects to the back-end at {@code socket} and learns what it offers.
     *
     * @param watchLoop where the socket is watched for a hang-up and the rings' error eventfds are read
     * @throws VhostUserException naming the socket if nobody listens there or the back-end misbehaves
     */
    public VhostUserNetBackend(Path socket, EventLoop watchLoop) {
        super(new LinkDownPlane(VhostUserNetBackend::portWithNothingBehindIt, true));
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
    protected String ringHolder() {
        return "the back-end at " + socket();
    }

    @Override
    protected String cannotResume() {
        return frontend.connected() ? null : "the back-end at " + socket() + " is gone";
    }

    @Override
    protected void startRings(NetActivation a) {
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
        frontend.setMemTable(a.memory());
        try {
            for (NetActivation.QueuePair p : a.pairs()) {
                startRing(a, 2 * p.index(), p.rx(), "receiveq" + (p.index() + 1));
                startRing(a, 2 * p.index() + 1, p.tx(), "transmitq" + (p.index() + 1));
            }
            if (protocolFeaturesOn()) {
                // "Ring states": with protocol features rings start disabled
                setVringsEnabled(a, a.activePairs());
            }
        } catch (RuntimeException e) {
            releaseErrFds();
            throw e;
        }
        LOG.debug("vhost-user back-end at {} serves {} queue pair(s)", socket(), a.pairs().size());
    }

    private void startRing(NetActivation a, int index, QueueBinding q, String name) {
        EventFd err = EventFd.create();
        errFds.add(err);
        errWatches.add(watchLoop.register(err.fd(), LibC.EPOLLIN, ready -> {
            err.drain();
            a.host().deviceError("the vhost-user back-end at " + socket() + " reported an error on " + name
                    + " (its log says which)");
        }));
        // SET_VRING_ADDR takes this process's addresses of the rings; the back-end translates them through userspace_addr
        frontend.setUpVring(index, q, a.memory(), a.resume().nextAvail(index), err);
    }

    /**
     * GET_VRING_BASE on every ring (which stops it) gives the next avail index; the used index is
     * what the back-end last published in the used ring. With the back-end gone, both are the used idx.
     */
    @Override
    protected QueuePositions stopRings(NetActivation a) {
        QueuePositions.Builder at = QueuePositions.builder(2 * a.pairs().size());
        for (NetActivation.QueuePair p : a.pairs()) {
            for (QueueBinding q : List.of(p.rx(), p.tx())) {
                int index = q == p.rx() ? 2 * p.index() : 2 * p.index() + 1;
                int used = SplitRing.usedIdx(a.memory(), q.usedRing());
                int avail = used;
                if (frontend.connected()) {
                    try {
                        avail = frontend.getVringBase(index);
                        used = SplitRing.usedIdx(a.memory(), q.usedRing()); // what the back-end published before it stopped
                    } catch (VhostUserException e) {
                        LOG.warn("stopping ring {}: {}; taking the used index as its position", index, e.getMessage());
                    }
                }
                at.set(index, avail, used);
            }
        }
        releaseErrFds();
        return at.build();
    }

    private void releaseErrFds() {
        errWatches.forEach(EventLoop.Registration::close);
        errWatches.clear();
        errFds.forEach(EventFd::close);
        errFds.clear();
    }

    /** While the link is down the rings drain into an in-memory port whose peer is closed: nothing arrives, nothing is sent. */
    private static MemoryPort portWithNothingBehindIt(int pairs) {
        MemoryPort[] ends = MemoryPort.pair(pairs, TapDevice.VNET_HEADER_V1_SIZE);
        ends[1].close();
        return ends[0];
    }

    /** The driver changed the active pairs (VIRTIO_NET_CTRL_MQ): rings beyond them are disabled (SET_VRING_ENABLE 0). */
    @Override
    protected void enablePairs(NetActivation a, int pairs) {
        if (a == null || !protocolFeaturesOn() || !frontend.connected()) {
            return;
        }
        try {
            setVringsEnabled(a, pairs);
        } catch (VhostUserException e) {
            LOG.error("enabling {} queue pair(s) on the vhost-user back-end failed: {}", pairs, e.getMessage());
        }
    }

    private void setVringsEnabled(NetActivation a, int pairs) {
        for (NetActivation.QueuePair p : a.pairs()) {
            frontend.setVringEnable(2 * p.index(), p.index() < pairs);
            frontend.setVringEnable(2 * p.index() + 1, p.index() < pairs);
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
