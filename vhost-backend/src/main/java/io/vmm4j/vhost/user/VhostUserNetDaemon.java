package io.vmm4j.vhost.user;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.LinuxException;
import io.vmm4j.core.linux.UnixListener;
import io.vmm4j.core.linux.UnixSocket;
import io.vmm4j.tap.PacketPort;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.NetQueueCounters;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import static io.vmm4j.vhost.user.VhostUserProtocol.F_PROTOCOL_FEATURES;
import static io.vmm4j.vhost.user.VhostUserProtocol.PROTOCOL_F_MQ;
import static io.vmm4j.vhost.user.VhostUserProtocol.PROTOCOL_F_NET_MTU;
import static io.vmm4j.vhost.user.VhostUserProtocol.PROTOCOL_F_REPLY_ACK;

/**
 * A vhost-user virtio-net back-end: listens on a UNIX socket, serves one front-end (a VMM, QEMU)
 * at a time, and moves its guest's frames between the rings and a packet port (a tap, or an
 * in-memory port) with the same queue engine as the VMM's emulated data plane, one event-loop
 * thread ({@code net-io-N}) per queue pair. When a front-end goes, its rings stop, its memory is
 * unmapped, its counters are printed, and the next one is accepted. A new connection that sends
 * nothing within the first-message timeout is closed, so a silent peer cannot keep the next one
 * waiting; a message must arrive whole, and a reply find room, within the message timeout.
 *
 * <p>It offers the ring and transport features (VERSION_1, INDIRECT_DESC, EVENT_IDX, MRG_RXBUF),
 * MTU, MQ with several pairs, and checksum/TSO offloads when the port carries them; protocol
 * features MQ, REPLY_ACK, NET_MTU and INFLIGHT_SHMFD (unless {@link Options#inflight()} is off). It does not offer CONFIG, so a front-end keeps the device
 * configuration space (and the control queue) to itself.
 */
public final class VhostUserNetDaemon implements AutoCloseable {
    /** How long the rest of a message may take once its first byte has arrived, and a reply may wait for the front-end to read. */
    public static final int DEFAULT_MESSAGE_TIMEOUT_MILLIS = 2_000;
    /** How long a new connection may stay silent: QEMU and DPDK send GET_FEATURES as soon as they connect. */
    public static final int DEFAULT_FIRST_MESSAGE_TIMEOUT_MILLIS = 5_000;

    private static final long OFFLOAD_FEATURES = VirtioFeatures.bit(NetFeatures.CSUM) | VirtioFeatures.bit(NetFeatures.GUEST_CSUM)
            | VirtioFeatures.bit(NetFeatures.GUEST_TSO4) | VirtioFeatures.bit(NetFeatures.GUEST_TSO6)
            | VirtioFeatures.bit(NetFeatures.GUEST_ECN) | VirtioFeatures.bit(NetFeatures.HOST_TSO4)
            | VirtioFeatures.bit(NetFeatures.HOST_TSO6) | VirtioFeatures.bit(NetFeatures.HOST_ECN);
    private static final long RING_FEATURES = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
            | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC) | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX)
            | VirtioFeatures.bit(NetFeatures.MRG_RXBUF) | VirtioFeatures.bit(NetFeatures.MTU)
            | VirtioFeatures.bit(VirtioFeatures.RING_PACKED) | VhostUserProtocol.bit(F_PROTOCOL_FEATURES);

    /**
     * @param queuePairs                queue pairs served (at most the port's queues)
     * @param managesTapMtu             whether NET_SET_MTU may set the tap's MTU (the daemon created the tap)
     * @param messageTimeoutMillis      how long the rest of a message may take once it has begun, and how long a
     *                                  reply may wait for the front-end to make room for it
     * @param firstMessageTimeoutMillis how long a new connection may take to send its first message before it is
     *                                  closed, so that a silent peer cannot keep the next front-end waiting
     */
    public record Options(int queuePairs, boolean managesTapMtu, int messageTimeoutMillis, int firstMessageTimeoutMillis,
                          boolean inflight) {
        public Options {
            if (messageTimeoutMillis < 1 || firstMessageTimeoutMillis < 1) {
                throw new IllegalArgumentException("message timeouts must be positive, were " + messageTimeoutMillis + " and "
                        + firstMessageTimeoutMillis + " ms");
            }
        }

        public Options(int queuePairs, boolean managesTapMtu, int messageTimeoutMillis) {
            this(queuePairs, managesTapMtu, messageTimeoutMillis, DEFAULT_FIRST_MESSAGE_TIMEOUT_MILLIS);
        }

        public Options(int queuePairs, boolean managesTapMtu, int messageTimeoutMillis, int firstMessageTimeoutMillis) {
            this(queuePairs, managesTapMtu, messageTimeoutMillis, firstMessageTimeoutMillis, true);
        }

        /** The same, offering INFLIGHT_SHMFD or not. */
        public Options withInflight(boolean on) {
            return new Options(queuePairs, managesTapMtu, messageTimeoutMillis, firstMessageTimeoutMillis, on);
        }

        public static Options defaults(int queuePairs) {
            return new Options(queuePairs, false, DEFAULT_MESSAGE_TIMEOUT_MILLIS);
        }
    }

    /** One line about a queue's counters, in the form {@code ./vmm run} prints its queues, with the port errors. */
    private static String describe(NetQueueCounters.Snapshot q) {
        return String.format("queue %s%d: packets %d, bytes %d, kicks %d, interrupts %d (suppressed %d), no-buffer drops %d, "
                + "port errors %d", q.direction(), q.pair(), q.packets(), q.bytes(), q.kicks(), q.interrupts(), q.interruptsSuppressed(),
                q.dropsNoBuffer(), q.portErrors());
    }

    /** One front-end connection: how long, what it acked, how it ended, and its queues. */
    public record SessionStats(int frontend, double seconds, long ackedFeatures, List<String> ackedFeatureNames, String end,
                               List<NetQueueCounters.Snapshot> queues) {
    }

    /**
     * Everything the daemon counts: totals over all front-ends so far (the current one included), and each finished one.
     * {@code silentFrontends}: connections closed because they sent no first message in time (counted in {@code frontends},
     * not in {@code sessions}).
     */
    public record Stats(String socket, String port, int queuePairs, List<String> offeredFeatures, List<String> protocolFeatures,
                        int frontends, long silentFrontends, long lastAckedFeatures, List<String> lastAckedFeatureNames,
                        List<NetQueueCounters.Snapshot> queues, List<SessionStats> sessions) {
    }

    private final Path socketPath;
    private final PacketPort port;
    private final Options options;
    private final PrintStream log;
    private final long offeredFeatures;
    private final long offeredProtocolFeatures;
    private final UnixListener listener;
    private final EventLoop[] loops;
    private long busyPollNanos;
    private final List<SessionStats> finished = new CopyOnWriteArrayList<>();
    private final List<Consumer<SessionStats>> sessionListeners = new CopyOnWriteArrayList<>();
    private final CountDownLatch served = new CountDownLatch(1);
    private final CountDownLatch stopping = new CountDownLatch(1);
    private final NetQueueCounters.Snapshot[] totals;
    private volatile VhostUserSession current;
    /** A connection accepted and waiting for its first message (no session yet). */
    private volatile VhostUserChannel pending;
    /** Held while {@link #close} shuts a connection down, and while the serving thread lets go of it before closing its fd. */
    private final Object connectionLock = new Object();
    private volatile long silentFrontends;
    private volatile long lastAckedFeatures;
    private volatile int frontends;
    private volatile boolean closed;
    private volatile boolean serving;

    /**
     * Binds {@code socketPath} and gets ready to serve; {@link #serve()} accepts. Only a stale socket
     * there is replaced: a live one, or anything that is not a socket, is refused ({@link UnixListener#bind}).
     *
     * @param log where the daemon's own lines go (one per event: connections, features, rings, refusals)
     * @throws io.vmm4j.core.linux.SocketPathException if the path cannot be bound, saying why
     */
    public VhostUserNetDaemon(Path socketPath, PacketPort port, Options options, PrintStream log) {
        this(UnixListener.bind(socketPath), port, options, log);
    }

    /** Serves on a socket already bound (its owner checked the path first); the daemon owns it from here, and closes it. */
    public VhostUserNetDaemon(UnixListener listener, PacketPort port, Options options, PrintStream log) {
        this(listener, listener.path(), port, options, log);
    }

    /**
     * A client daemon (DPDK's vhost PMD {@code client=1}): instead of listening it connects to a
     * front-end listening at {@code frontendSocket} (a VMM with {@code --socket-listen}, QEMU with
     * {@code server=on}), retrying every second until one is there, and connects again after each
     * front-end goes.
     */
    public static VhostUserNetDaemon client(Path frontendSocket, PacketPort port, Options options, PrintStream log) {
        return new VhostUserNetDaemon(null, frontendSocket, port, options, log);
    }

    private VhostUserNetDaemon(UnixListener listener, Path socketPath, PacketPort port, Options options, PrintStream log) {
        try {
            if (options.queuePairs() < 1 || options.queuePairs() > port.queueCount()) {
                throw new IllegalArgumentException(options.queuePairs() + " queue pairs asked, but port " + port.name() + " has "
                        + port.queueCount() + " queue(s); give the port as many queues as pairs");
            }
            if (2 * options.queuePairs() > VhostUserProtocol.VRING_INDEX_MASK + 1) {
                throw new IllegalArgumentException(options.queuePairs() + " queue pairs need more vring indices than the 8 bits of "
                        + "SET_VRING_KICK hold");
            }
        } catch (RuntimeException e) {
            if (listener != null) {
                listener.close();
            }
            throw e;
        }
        this.socketPath = socketPath;
        this.port = port;
        this.options = options;
        this.log = log;
        long features = RING_FEATURES;
        if (port.supportsOffloads()) {
            features |= OFFLOAD_FEATURES;
        }
        if (options.queuePairs() > 1) {
            features |= VirtioFeatures.bit(NetFeatures.MQ);
        }
        this.offeredFeatures = features;
        this.offeredProtocolFeatures = VhostUserProtocol.bit(PROTOCOL_F_MQ) | VhostUserProtocol.bit(PROTOCOL_F_REPLY_ACK)
                | VhostUserProtocol.bit(PROTOCOL_F_NET_MTU)
                | (options.inflight() ? VhostUserProtocol.bit(VhostUserProtocol.PROTOCOL_F_INFLIGHT_SHMFD) : 0);
        this.loops = new EventLoop[options.queuePairs()];
        this.totals = new NetQueueCounters.Snapshot[2 * options.queuePairs()];
        for (int q = 0; q < totals.length; q++) {
            totals[q] = NetQueueCounters.Snapshot.zero(q);
        }
        this.listener = listener;
    }

    public Path socketPath() {
        return socketPath;
    }

    public PacketPort port() {
        return port;
    }

    public int queuePairs() {
        return options.queuePairs();
    }

    /** The virtio feature bits GET_FEATURES answers (VHOST_USER_F_PROTOCOL_FEATURES included). */
    public long offeredFeatures() {
        return offeredFeatures;
    }

    public long offeredProtocolFeatures() {
        return offeredProtocolFeatures;
    }

    int messageTimeoutMillis() {
        return options.messageTimeoutMillis();
    }

    boolean managesTapMtu() {
        return options.managesTapMtu();
    }

    void ackedFeatures(long features) {
        lastAckedFeatures = features;
    }

    /** The loop (thread {@code net-io-N}) that runs pair {@code pair}'s engine; made on first use, kept across front-ends. */
    synchronized EventLoop loop(int pair) {
        if (loops[pair] == null) {
            loops[pair] = new EventLoop("net-io-" + pair);
            loops[pair].setBusyPoll(busyPollNanos);
        }
        return loops[pair];
    }

    /**
     * Lets each pair's thread poll its rings for {@code nanos} after the last frame before it sleeps
     * ({@code --poll-us}, like vhost-net's busyloop_timeout; 0, the default: it sleeps at once and the
     * front-end kicks).
     */
    public synchronized void setBusyPoll(long nanos) {
        busyPollNanos = nanos;
        for (EventLoop l : loops) {
            if (l != null) {
                l.setBusyPoll(nanos);
            }
        }
    }

    void log(String format, Object... args) {
        log.println("vhost-user-backend: " + String.format(format, args));
    }

    /** Tells {@code listener} about each front-end that has gone, with its counters (on the serving thread). */
    public void onSessionEnd(Consumer<SessionStats> listener) {
        sessionListeners.add(listener);
    }

    /**
     * Accepts front-ends one at a time and serves each until it disconnects; returns after
     * {@link #close()}. A front-end's misbehaviour ends its connection, never the daemon.
     */
    public void serve() {
        serving = true;
        try {
            log("%s %s: port %s, %d queue pair(s), features %s, protocol features %s", listener != null ? "listening on"
                            : "client of the front-end at", socketPath, port.name(), options.queuePairs(), NetFeatures.names(offeredFeatures & ~VhostUserProtocol.bit(F_PROTOCOL_FEATURES)),
                    VhostUserProtocol.protocolFeatureNames(offeredProtocolFeatures));
            while (!closed) {
                UnixSocket socket;
                try {
                    socket = listener != null ? listener.accept() : connectWhenThere();
                    if (socket == null) {
                        break; // closed while waiting for the front-end
                    }
                } catch (LinuxException e) {
                    if (closed) {
                        break;
                    }
                    log("accepting a front-end failed: %s", e.getMessage());
                    sleepBriefly();
                    continue;
                }
                int number = ++frontends;
                // a reply waits for room as long as a message may take to arrive: a front-end that never reads cannot hold us
                VhostUserChannel channel = new VhostUserChannel(socket, "front-end " + number, options.messageTimeoutMillis());
                log(listener != null ? "front-end %d connected" : "front-end %d: connected to " + socketPath, number);
                if (!firstMessageArrives(channel, number)) {
                    continue;
                }
                VhostUserSession session = new VhostUserSession(this, channel, number);
                current = session;
                if (closed) {
                    session.shutdown();
                }
                try {
                    session.run();
                } finally {
                    synchronized (connectionLock) {
                        current = null;
                    }
                    session.close();
                    ended(session);
                }
            }
        } finally {
            synchronized (this) {
                for (EventLoop loop : loops) {
                    if (loop != null) {
                        loop.close();
                    }
                }
            }
            served.countDown();
        }
    }

    /**
     * The client's way to a front-end: connect to its socket, retrying every second while nobody
     * listens there (the VMM is not up yet, or restarting); null once {@link #close} was called.
     */
    private UnixSocket connectWhenThere() {
        boolean said = false;
        while (!closed) {
            try {
                return UnixSocket.connect(socketPath);
            } catch (LinuxException e) {
                if (!said) {
                    log("no front-end listening at %s yet (%s); retrying every second", socketPath, e.errnoName());
                    said = true;
                }
            }
            try {
                if (stopping.await(1, TimeUnit.SECONDS) || closed) {
                    return null;
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
        }
        return null;
    }

    /**
     * Waits for the new connection's first message (or hang-up); closes it if it stays silent, since
     * one front-end is served at a time and the next one waits behind it.
     */
    private boolean firstMessageArrives(VhostUserChannel channel, int number) {
        pending = channel;
        try {
            if (closed) {
                channel.shutdown();
            }
            if (channel.awaitMessage(options.firstMessageTimeoutMillis())) {
                return true;
            }
        } finally {
            synchronized (connectionLock) {
                pending = null; // before the fd is closed: close() must never shut down a number reused by another fd
            }
        }
        silentFrontends++;
        log("front-end %d: sent no message within %d ms of connecting; closed the connection so the next front-end is served "
                + "(a front-end sends GET_FEATURES as soon as it connects)", number, options.firstMessageTimeoutMillis());
        channel.close();
        return false;
    }

    private void ended(VhostUserSession session) {
        List<NetQueueCounters.Snapshot> queues = new ArrayList<>();
        synchronized (totals) {
            for (NetQueueCounters c : session.counters()) {
                NetQueueCounters.Snapshot q = c.snapshot();
                queues.add(q);
                totals[q.queue()] = totals[q.queue()].plus(q);
            }
        }
        SessionStats stats = new SessionStats(session.number(), Math.round(session.seconds() * 1000) / 1000.0, session.ackedFeatures(),
                featureNames(session.ackedFeatures()), session.endReason(), List.copyOf(queues));
        log("front-end %d disconnected after %.1f s: %s", session.number(), session.seconds(), session.endReason());
        for (NetQueueCounters.Snapshot q : queues) {
            log.println(describe(q));
        }
        finished.add(stats); // after the lines are printed, before the listeners (whose stats() must include it)
        for (Consumer<SessionStats> l : sessionListeners) {
            try {
                l.accept(stats);
            } catch (RuntimeException e) {
                log("a session listener failed: %s", e);
            }
        }
    }

    private static List<String> featureNames(long features) {
        List<String> names = new ArrayList<>(NetFeatures.names(features & ~VhostUserProtocol.bit(F_PROTOCOL_FEATURES)));
        if (VhostUserProtocol.has(features, F_PROTOCOL_FEATURES)) {
            names.add("PROTOCOL_FEATURES");
        }
        return names;
    }

    private static void sleepBriefly() {
        try {
            Thread.sleep(100);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Front-ends accepted so far. */
    public int frontends() {
        return frontends;
    }

    /** The counters so far: finished front-ends plus the one connected now. */
    public Stats stats() {
        List<NetQueueCounters.Snapshot> queues = new ArrayList<>();
        VhostUserSession live = current;
        synchronized (totals) {
            for (NetQueueCounters.Snapshot t : totals) {
                queues.add(live == null ? t : t.plus(live.counters().get(t.queue()).snapshot()));
            }
        }
        return new Stats(socketPath.toString(), port.name(), options.queuePairs(), featureNames(offeredFeatures),
                VhostUserProtocol.protocolFeatureNames(offeredProtocolFeatures), frontends, silentFrontends, lastAckedFeatures,
                featureNames(lastAckedFeatures), List.copyOf(queues), List.copyOf(finished));
    }

    /** Stops accepting, ends the current front-end's connection, and waits (up to {@code waitMillis}) for {@link #serve()} to return. */
    public boolean close(long waitMillis) {
        closed = true;
        if (listener != null) {
            listener.close();
        }
        stopping.countDown(); // wakes a client's retry wait
        synchronized (connectionLock) {
            VhostUserChannel waiting = pending;
            if (waiting != null) {
                waiting.shutdown(); // its first-message wait returns at once
            }
            VhostUserSession s = current;
            if (s != null) {
                s.shutdown();
            }
        }
        if (!serving) {
            served.countDown();
            return true;
        }
        try {
            return served.await(waitMillis, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    @Override
    public void close() {
        close(5_000);
    }
}
