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
import io.vmm4j.virtio.queue.PackedRing;
import io.vmm4j.virtio.queue.RingLayout;
import io.vmm4j.virtio.queue.SplitRing;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.vmm4j.core.linux.LinuxException;
import io.vmm4j.core.linux.UnixListener;
import io.vmm4j.core.linux.UnixSocket;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
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
 *
 * <p>With an {@link Endpoint} that reconnects (a client with a retry period, QEMU's {@code
 * reconnect-ms}; or a server, QEMU's {@code server=on}, which accepts the back-end again) one
 * thread, {@code vhost-user-reconnect}, gets a new connection after a hang-up, checks that the new
 * back-end offers everything the device was built on, and tells the reconnect listeners, whose
 * link up replays the whole setup ({@link #startRings}) at the positions where the link-down plane
 * stopped. The rings, the guest's memory and the device are never reset.
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
    /** At most one refusal line per this period (the reconnect thread logs them). */
    private static final long REFUSAL_LOG_PERIOD_NANOS = TimeUnit.SECONDS.toNanos(10);
    /** The protocol features this front-end uses. */
    static final long WANTED_PROTOCOL_FEATURES = VhostUserProtocol.bit(PROTOCOL_F_MQ) | VhostUserProtocol.bit(PROTOCOL_F_REPLY_ACK)
            | VhostUserProtocol.bit(PROTOCOL_F_NET_MTU) | VhostUserProtocol.bit(VhostUserProtocol.PROTOCOL_F_INFLIGHT_SHMFD);

    /**
     * How the VMM reaches its back-end. A client connects to {@code socket}; with {@code
     * reconnectSeconds > 0} it retries that often until one is there, at start and after every
     * hang-up (QEMU's {@code reconnect-ms}, in seconds). A server ({@code listen}) binds {@code
     * socket}, waits for the back-end to connect, and accepts it again after it goes (QEMU's
     * {@code server=on}).
     */
    public record Endpoint(Path socket, boolean listen, int reconnectSeconds) {
        public Endpoint {
            if (listen && reconnectSeconds != 0) {
                throw new IllegalArgumentException("a listening front-end re-accepts its back-end; a reconnect period is for a client");
            }
            if (reconnectSeconds < 0) {
                throw new IllegalArgumentException("the reconnect period must be positive seconds (0: never), was " + reconnectSeconds);
            }
        }

        public static Endpoint client(Path socket) {
            return new Endpoint(socket, false, 0);
        }

        public static Endpoint client(Path socket, int reconnectSeconds) {
            return new Endpoint(socket, false, reconnectSeconds);
        }

        public static Endpoint server(Path socket) {
            return new Endpoint(socket, true, 0);
        }

        /** Whether a new back-end is looked for after one goes. */
        public boolean reconnects() {
            return listen || reconnectSeconds > 0;
        }

        public String mode() {
            return listen ? "server" : "client";
        }
    }

    /** The connection as management sees it: whether a back-end is there, how often one came back, and the last reason one went or was refused. */
    public record ConnectionStatus(String mode, Path socket, boolean connected, int reconnectSeconds, long disconnects, long reconnects,
                                   long refused, String lastProblem) {
    }

    private final Endpoint endpoint;
    private final UnixListener listener;
    private volatile VhostUserFrontend frontend;
    private final long backendFeatures;
    private final long protocolFeatures;
    private final int maxQueuePairs;
    private final EventLoop watchLoop;
    private final List<Consumer<String>> hangupListeners = new CopyOnWriteArrayList<>();
    private final List<Consumer<String>> reconnectListeners = new CopyOnWriteArrayList<>();
    private final List<EventFd> errFds = new ArrayList<>();
    private final List<EventLoop.Registration> errWatches = new ArrayList<>();
    private final Object connectionChanged = new Object();
    private final Thread reconnector;
    private volatile String hangup;
    private volatile String lastProblem;
    private volatile long disconnects;
    private volatile long reconnects;
    private volatile long refused;
    private long lastRefusalLogged;
    private long refusalsNotLogged;
    private volatile boolean closed;
    private boolean owner;
    /** The back-end's inflight record (GET_INFLIGHT_FD), kept here across its restarts; null before the first start. */
    private VhostUserFrontend.InflightArea inflight;
    /** Where the rings were parked when the back-end died: a start from exactly there hands the same record to the next one. */
    private int[] parkedAvail;

    /**
     * Connects to the back-end at {@code socket} and learns what it offers; never reconnects.
     *
     * @param watchLoop where the socket is watched for a hang-up and the rings' error eventfds are read
     * @throws VhostUserException naming the socket if nobody listens there or the back-end misbehaves
     */
    public VhostUserNetBackend(Path socket, EventLoop watchLoop) {
        this(Endpoint.client(socket), watchLoop);
    }

    /**
     * Gets the first back-end from {@code endpoint} (a client that reconnects retries until one is
     * there; a server waits for one to connect) and learns what it offers.
     *
     * @throws VhostUserException naming the socket if there is no back-end (and no retrying) or it misbehaves
     * @throws io.vmm4j.core.linux.SocketPathException for a server whose socket path cannot be bound
     */
    public VhostUserNetBackend(Endpoint endpoint, EventLoop watchLoop) {
        super(new LinkDownPlane(VhostUserNetBackend::portWithNothingBehindIt, true));
        this.endpoint = endpoint;
        this.watchLoop = watchLoop;
        this.listener = endpoint.listen() ? UnixListener.bind(endpoint.socket()) : null;
        VhostUserFrontend first;
        Handshake offer;
        try {
            first = firstConnection();
            try {
                offer = Handshake.of(first);
            } catch (RuntimeException e) {
                first.close();
                throw e;
            }
        } catch (RuntimeException e) {
            if (listener != null) {
                listener.close();
            }
            throw e;
        }
        backendFeatures = offer.features();
        protocolFeatures = offer.protocol();
        maxQueuePairs = offer.pairs();
        this.frontend = first;
        first.watchHangup(watchLoop, reason -> hungUp(first, reason));
        if (endpoint.reconnects()) {
            reconnector = Thread.ofPlatform().daemon().name("vhost-user-reconnect").start(this::reconnectWhileOpen);
        } else {
            reconnector = null;
        }
        LOG.debug("vhost-user back-end at {}: features {} protocol {} pairs {}", socket(), NetFeatures.names(backendFeatures),
                VhostUserProtocol.protocolFeatureNames(protocolFeatures), maxQueuePairs);
    }

    /** What a back-end offers, asked for on every new connection: GET_FEATURES, the protocol features both sides use, GET_QUEUE_NUM. */
    private record Handshake(long features, long protocol, int pairs) {
        static Handshake of(VhostUserFrontend f) {
            long features = f.getFeatures();
            long protocol = 0;
            if (VhostUserProtocol.has(features, F_PROTOCOL_FEATURES)) {
                protocol = f.getProtocolFeatures() & WANTED_PROTOCOL_FEATURES;
                f.setProtocolFeatures(protocol);
            }
            int pairs = 1;
            if (VhostUserProtocol.has(protocol, PROTOCOL_F_MQ)) {
                long queues = f.getQueueNum();
                // "Multiple queue support": the number of queues (vrings); a pair is two of them
                pairs = (int) Math.max(1, Math.min(queues / 2, 256));
            }
            return new Handshake(features, protocol, pairs);
        }
    }

    /** The first back-end: a client connects (and, when it reconnects, retries every period); a server waits for one to connect. */
    private VhostUserFrontend firstConnection() {
        if (listener != null) {
            LOG.info("waiting for a vhost-user back-end to connect to {}", endpoint.socket());
            return accept();
        }
        while (true) {
            try {
                return VhostUserFrontend.connect(endpoint.socket(), VhostUserFrontend.DEFAULT_REPLY_TIMEOUT_MILLIS);
            } catch (VhostUserException e) {
                if (!endpoint.reconnects()) {
                    throw e;
                }
                LOG.warn("{}; retrying every {} s (--reconnect)", e.getMessage(), endpoint.reconnectSeconds());
                pause(endpoint.reconnectSeconds());
            }
        }
    }

    private VhostUserFrontend accept() {
        UnixSocket s = listener.accept();
        return VhostUserFrontend.adopt(endpoint.socket(), s, VhostUserFrontend.DEFAULT_REPLY_TIMEOUT_MILLIS);
    }

    private static void pause(int seconds) {
        try {
            Thread.sleep(TimeUnit.SECONDS.toMillis(seconds));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new VhostUserException("interrupted while waiting to reconnect", e);
        }
    }

    /**
     * The reconnect thread: waits for a hang-up, then gets a new back-end (retrying every period as
     * a client, accepting as a server), checks its offer and hands it to the reconnect listeners,
     * until {@link #close}. One thread for the backend's life, whatever the number of cycles.
     */
    private void reconnectWhileOpen() {
        VhostUserFrontend waitedAfter = null;
        while (!closed) {
            synchronized (connectionChanged) {
                while (!closed && frontend.connected()) {
                    try {
                        connectionChanged.wait(1_000); // a failed exchange breaks the connection without a hang-up event
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            }
            if (closed) {
                return;
            }
            VhostUserFrontend gone = frontend;
            if (hangup == null) {
                hungUp(gone, "the vhost-user back-end at " + socket() + " stopped answering");
            }
            if (listener == null && waitedAfter != gone) {
                // the first retry after the period too, as QEMU's reconnect timer: a dying back-end's listener may still take a connection
                waitedAfter = gone;
                sleepQuietly(endpoint.reconnectSeconds());
                continue;
            }
            VhostUserFrontend next = nextConnection();
            if (next == null) {
                continue; // refused or failed: the old one stays broken and the loop looks again
            }
            takeOver(next);
        }
    }

    /** One attempt at a new back-end; null if none came, or the one that came was refused. */
    private VhostUserFrontend nextConnection() {
        VhostUserFrontend next;
        try {
            if (listener != null) {
                next = accept();
            } else {
                next = VhostUserFrontend.connect(endpoint.socket(), VhostUserFrontend.DEFAULT_REPLY_TIMEOUT_MILLIS);
            }
        } catch (VhostUserException | LinuxException e) {
            if (!closed) {
                LOG.debug("no vhost-user back-end yet: {}", e.getMessage());
                if (listener == null) {
                    sleepQuietly(endpoint.reconnectSeconds());
                } else {
                    sleepQuietly(1); // accept failed (EMFILE and the like): do not spin on it
                }
            }
            return null;
        }
        if (closed) {
            next.close();
            return null;
        }
        try {
            Handshake offer = Handshake.of(next);
            String missing = missingFrom(offer);
            if (missing != null) {
                throw new VhostUserException(missing);
            }
            return next;
        } catch (VhostUserException e) {
            refused("refused the back-end that connected at " + socket() + ": " + e.getMessage(), "closed it, waiting for another");
            next.close();
            if (listener == null) {
                sleepQuietly(endpoint.reconnectSeconds());
            }
            return null;
        }
    }

    /** Why the new back-end cannot serve the device the guest already drives (null: it can); the device was built on the first one's offer. */
    private String missingFrom(Handshake offer) {
        long lackedFeatures = backendFeatures & ~offer.features();
        if (lackedFeatures != 0) {
            return "it does not offer " + NetFeatures.names(lackedFeatures) + ", which the first back-end offered and the device was built on";
        }
        long lackedProtocol = protocolFeatures & ~offer.protocol();
        if (lackedProtocol != 0) {
            return "it does not offer protocol features " + VhostUserProtocol.protocolFeatureNames(lackedProtocol);
        }
        if (offer.pairs() < maxQueuePairs) {
            return "it serves " + offer.pairs() + " queue pair(s), the device has " + maxQueuePairs;
        }
        return null;
    }

    /** Makes {@code next} the connection, and lets the listeners (the VMM's link up) replay the setup on it; false if that failed. */
    private boolean takeOver(VhostUserFrontend next) {
        VhostUserFrontend old;
        synchronized (this) {
            old = frontend;
            frontend = next;
            owner = false; // "SET_OWNER": a new connection is a new session
            hangup = null;
        }
        old.close();
        next.watchHangup(watchLoop, reason -> hungUp(next, reason));
        try {
            for (Consumer<String> l : reconnectListeners) {
                l.accept(socket().toString());
            }
        } catch (RuntimeException e) {
            refused("replaying the setup on the back-end at " + socket() + " failed: " + e.getMessage(), "dropped it, waiting for another");
            next.close();
            hungUp(next, lastProblem);
            return false;
        }
        reconnects++;
        LOG.info("the vhost-user back-end at {} is back ({} {} so far)", socket(), reconnects, reconnects == 1 ? "reconnect" : "reconnects");
        return true;
    }

    /**
     * Counts a refused back-end and logs it: the first at once, then at most one line per
     * {@link #REFUSAL_LOG_PERIOD_NANOS} saying how many were not logged, so a reconnect storm cannot flood the log.
     */
    private void refused(String problem, String action) {
        refused++;
        lastProblem = problem;
        long now = System.nanoTime();
        if (lastRefusalLogged != 0 && now - lastRefusalLogged < REFUSAL_LOG_PERIOD_NANOS) {
            refusalsNotLogged++;
            return;
        }
        String also = refusalsNotLogged == 0 ? "" : " (" + refusalsNotLogged + " more refused since the last line; "
                + "x-vmm4j-query-backend counts them all)";
        LOG.error("{}; {}{}", problem, action, also);
        lastRefusalLogged = now;
        refusalsNotLogged = 0;
    }

    private void sleepQuietly(int seconds) {
        synchronized (connectionChanged) {
            try {
                connectionChanged.wait(TimeUnit.SECONDS.toMillis(seconds)); // close() wakes it
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    public Path socket() {
        return endpoint.socket();
    }

    public Endpoint endpoint() {
        return endpoint;
    }

    /** Whether a back-end is connected now. */
    public boolean connected() {
        return frontend.connected();
    }

    public ConnectionStatus connectionStatus() {
        return new ConnectionStatus(endpoint.mode(), socket(), connected(), endpoint.reconnectSeconds(), disconnects, reconnects, refused,
                lastProblem);
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

    /** Tells {@code listener} (once per connection, on the watch loop) when the back-end hangs up, with a sentence saying so. */
    public void onHangup(Consumer<String> listener) {
        hangupListeners.add(listener);
    }

    /**
     * Tells {@code listener} (on the reconnect thread) when a new back-end has connected and offers
     * what the device needs, with the socket path; the listener sets the link up, which replays the
     * setup, and throws if that fails (the connection is then dropped and another awaited).
     */
    public void onReconnect(Consumer<String> listener) {
        reconnectListeners.add(listener);
    }

    private void hungUp(VhostUserFrontend which, String reason) {
        synchronized (this) {
            if (which != frontend || hangup != null) {
                return; // an older connection's late hang-up, or told already
            }
            hangup = reason;
        }
        disconnects++;
        lastProblem = reason;
        synchronized (connectionChanged) {
            connectionChanged.notifyAll();
        }
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

    /**
     * The back-end's bits (less those that cannot work over vhost-user) plus the control-plane bits
     * the VMM serves itself. A back-end that may go and come back gets split rings only: a packed
     * ring has no used index in guest memory, so where a dead back-end stopped would be lost.
     */
    @Override
    public long supportedFeatures() {
        long packed = endpoint.reconnects() ? VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : 0;
        return (backendFeatures & ~NOT_OFFERED & ~CONTROL_PLANE_FEATURES & ~packed) | CONTROL_PLANE_FEATURES;
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
        if (inflightTracking()) {
            handInflightRecord(a);
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

    private boolean inflightTracking() {
        return VhostUserProtocol.has(protocolFeatures, VhostUserProtocol.PROTOCOL_F_INFLIGHT_SHMFD);
    }

    /**
     * "Inflight I/O tracking": the record the back-end writes goes back to it on every start
     * (SET_INFLIGHT_FD). The same one only when the rings resume exactly where they were parked
     * after a crash, so the new back-end resubmits what the dead one had in flight; any other start
     * (the first, after a device reset, after the link-down plane moved the rings) gets a new one,
     * as QEMU gets a new one at a VM reset.
     */
    private void handInflightRecord(NetActivation a) {
        boolean same = inflight != null && parkedAvail != null && java.util.Arrays.equals(parkedAvail, a.resume().nextAvail());
        parkedAvail = null;
        if (!same) {
            closeInflight();
            int queueSize = 0;
            for (NetActivation.QueuePair p : a.pairs()) {
                queueSize = Math.max(queueSize, Math.max(p.rx().size(), p.tx().size()));
            }
            inflight = frontend.getInflightFd(2 * a.pairs().size(), queueSize);
        }
        frontend.setInflightFd(inflight);
    }

    private void closeInflight() {
        if (inflight != null) {
            LibC.closeQuietly(inflight.fd());
            inflight = null;
        }
    }

    /** With inflight tracking and a back-end that may come back, its death leaves the rings to it, not to the link-down plane. */
    @Override
    protected boolean parksRingsWhileAway() {
        return endpoint.reconnects() && inflightTracking() && !frontend.connected();
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
        frontend.setUpVring(index, q, a.memory(), q.layout() == RingLayout.PACKED
                ? PackedRing.vringBase(a.resume().nextAvail(index), a.resume().nextUsed(index)) : a.resume().nextAvail(index), err);
    }

    /**
     * GET_VRING_BASE on every ring (which stops it) gives where it stopped: for a split ring the
     * next avail index, the used index being what the back-end last published in the used ring; for
     * a packed ring both positions, as there is no used index in memory (a back-end that answers with
     * the avail half only stopped with nothing in flight: used = avail, as DPDK does). With the
     * back-end gone, a split ring's positions are both the used idx; packed rings are not offered
     * when the back-end may come back ({@link #supportedFeatures()}), so a gone back-end ends them.
     */
    @Override
    protected QueuePositions stopRings(NetActivation a) {
        QueuePositions.Builder at = QueuePositions.builder(2 * a.pairs().size());
        for (NetActivation.QueuePair p : a.pairs()) {
            for (QueueBinding q : List.of(p.rx(), p.tx())) {
                int index = q == p.rx() ? 2 * p.index() : 2 * p.index() + 1;
                boolean packed = q.layout() == RingLayout.PACKED;
                int used = packed ? a.resume().nextUsed(index) : SplitRing.usedIdx(a.memory(), q.usedRing());
                int avail = packed ? a.resume().nextAvail(index) : used;
                if (frontend.connected()) {
                    try {
                        int base = frontend.getVringBase(index);
                        if (packed) {
                            avail = PackedRing.availPosition(base);
                            used = PackedRing.usedPosition(base);
                        } else if ((base & 0xFFFF_0000) != 0) {
                            throw new VhostUserException("GET_VRING_BASE for split ring " + index + " answered "
                                    + Integer.toUnsignedString(base) + ", more than 16 bits");
                        } else {
                            avail = base;
                            used = SplitRing.usedIdx(a.memory(), q.usedRing()); // what the back-end published before it stopped
                        }
                    } catch (VhostUserException e) {
                        LOG.warn("stopping ring {}: {}; taking the used index as its position", index, e.getMessage());
                    }
                }
                at.set(index, avail, used);
            }
        }
        releaseErrFds();
        QueuePositions positions = at.build();
        parkedAvail = parksRingsWhileAway() ? positions.nextAvail().clone() : null;
        return positions;
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
        closed = true;
        synchronized (connectionChanged) {
            connectionChanged.notifyAll();
        }
        if (listener != null) {
            listener.close(); // wakes the reconnect thread's accept
        }
        if (reconnector != null) {
            try {
                reconnector.join(TimeUnit.SECONDS.toMillis(VhostUserFrontend.DEFAULT_REPLY_TIMEOUT_MILLIS / 1000 + 2));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        try {
            stop();
        } catch (RuntimeException e) {
            LOG.debug("stopping the vhost-user rings at close failed: {}", e.getMessage());
        }
        synchronized (this) {
            closeInflight();
        }
        frontend.close();
    }
}
