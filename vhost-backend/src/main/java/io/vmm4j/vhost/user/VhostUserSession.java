package io.vmm4j.vhost.user;

import io.vmm4j.core.linux.LibC;
import io.vmm4j.tap.PacketPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.TapOffloads;
import io.vmm4j.vhost.emulated.QueuePairWorker;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.NetQueueCounters;
import io.vmm4j.virtio.queue.SplitQueue;
import io.vmm4j.virtio.queue.SplitRing;
import io.vmm4j.virtio.queue.VirtqueueException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static io.vmm4j.vhost.user.VhostUserProtocol.F_PROTOCOL_FEATURES;
import static io.vmm4j.vhost.user.VhostUserProtocol.PROTOCOL_F_NET_MTU;
import static io.vmm4j.vhost.user.VhostUserProtocol.PROTOCOL_F_REPLY_ACK;
import static io.vmm4j.vhost.user.VhostUserProtocol.VRING_F_LOG;
import static io.vmm4j.vhost.user.VhostUserProtocol.VRING_INDEX_MASK;
import static io.vmm4j.vhost.user.VhostUserProtocol.VRING_NOFD;

/**
 * One front-end connection to the back-end daemon: reads messages, checks each completely before it
 * changes anything, and drives the virtio-net data plane ({@link QueuePairWorker}s, the same engine
 * as the VMM's emulated backend) over the memory and eventfds the front-end passed.
 *
 * <p>Bad input never crashes the daemon and never makes it touch memory outside the mapped regions:
 * a message that breaks the framing closes the connection; any other bad message is refused with
 * a non-zero REPLY_ACK when the front-end asked for one, and closes the connection when it did not
 * (the front-end would otherwise go on believing it succeeded).
 */
final class VhostUserSession implements AutoCloseable {
    private final VhostUserNetDaemon daemon;
    private final VhostUserChannel channel;
    private final PacketPort port;
    private final int number;
    private final long startNanos = System.nanoTime();
    private final Vring[] rings;
    private final QueuePairWorker[] workers;
    private final boolean[] portQueueDetached;
    private final NetQueueCounters[] counters;
    private long ackedFeatures;
    private boolean featuresSet;
    private long protocolFeatures;
    private boolean replyAck;
    private volatile MappedMemoryTable memory; // read by a faulting engine on its loop thread
    private int mtu = 1500;
    private boolean fdsAdopted;
    private volatile String endReason = "still connected";
    /** Why the session must end although the front-end is still connected (its memory faulted; the daemon stops). */
    private volatile String stopReason;

    VhostUserSession(VhostUserNetDaemon daemon, VhostUserChannel channel, int number) {
        this.daemon = daemon;
        this.channel = channel;
        this.port = daemon.port();
        this.number = number;
        int pairs = daemon.queuePairs();
        this.rings = new Vring[2 * pairs];
        for (int i = 0; i < rings.length; i++) {
            rings[i] = new Vring(i);
        }
        this.workers = new QueuePairWorker[pairs];
        this.portQueueDetached = new boolean[pairs];
        this.counters = new NetQueueCounters[2 * pairs];
        for (int q = 0; q < counters.length; q++) {
            counters[q] = new NetQueueCounters(q, q % 2 == 0 ? "rx" : "tx");
        }
    }

    int number() {
        return number;
    }

    long ackedFeatures() {
        return ackedFeatures;
    }

    List<NetQueueCounters> counters() {
        return List.of(counters);
    }

    String endReason() {
        return endReason;
    }

    double seconds() {
        return (System.nanoTime() - startNanos) / 1e9;
    }

    /** Serves messages until the front-end disconnects or the connection has to be closed. */
    void run() {
        try {
            while (true) {
                VhostUserMessage message;
                try {
                    message = channel.receive(-1, daemon.messageTimeoutMillis());
                } catch (VhostUserException e) {
                    end(stopReason != null ? stopReason : "closed the connection: " + e.getMessage());
                    return;
                }
                if (message == null) {
                    endReason = stopReason != null ? stopReason : "the front-end closed the connection";
                    return;
                }
                if (!serve(message)) {
                    return;
                }
            }
        } catch (InternalError e) {
            // HotSpot may raise a fault of compiled code at a later safepoint, outside the handler that touched the memory
            memoryFaulted("serving its messages: " + e);
        }
    }

    /** Wakes {@link #run()} from another thread; it returns as if the front-end had hung up. */
    void shutdown() {
        stopReason = "the daemon is stopping";
        channel.shutdown();
    }

    /**
     * An access to the front-end's memory faulted ({@code fault} says where: HotSpot's InternalError
     * "a fault occurred in an unsafe memory access operation", or the engine's ring error saying so): the
     * session ends, and the log says which region lost its backing. Any thread; the session thread
     * sees end of stream and tears the session down.
     */
    private void memoryFaulted(String fault) {
        MappedMemoryTable table = memory;
        String shrunk = table == null ? null : table.shrunkRegion();
        String reason = shrunk != null
                ? "the front-end shrank its memory file under the back-end's mapping (" + shrunk + "), so an access faulted: "
                        + fault + "; closing the connection"
                : "an access to its memory faulted (" + fault + "), although every region's file is long enough now (shrunk and "
                        + "grown again?); closing the connection";
        if (stopReason == null) {
            stopReason = reason;
            daemon.log("front-end %d: %s", number, reason);
        }
        endReason = stopReason;
        channel.shutdown();
    }

    private void end(String reason) {
        endReason = reason;
        daemon.log("front-end %d: %s", number, reason);
    }

    private boolean serve(VhostUserMessage message) {
        VhostUserRequest request = VhostUserRequest.of(message.request());
        fdsAdopted = false;
        try {
            byte[] reply = handle(request, message);
            if (reply != null) {
                channel.send(VhostUserMessage.reply(message, reply));
            } else if (message.needsReply() && replyAck) {
                channel.send(VhostUserMessage.reply(message, VhostUserMessage.u64(0)));
            }
            return true;
        } catch (VhostUserFramingException e) {
            end("closed the connection: " + e.getMessage());
            return false;
        } catch (InternalError e) {
            memoryFaulted("handling " + message.name() + ": " + e);
            return false;
        } catch (RuntimeException e) {
            // a bad value (or anything unforeseen) refuses this message; the daemon lives on
            String why = e instanceof VhostUserException ? e.getMessage() : e.toString();
            daemon.log("front-end %d: refused %s: %s", number, message.name(), why);
            if (message.needsReply() && replyAck && !hasOwnReply(request)) {
                try {
                    channel.send(VhostUserMessage.reply(message, VhostUserMessage.u64(1)));
                    return true;
                } catch (VhostUserException sendFailed) {
                    end("closed the connection: " + sendFailed.getMessage());
                    return false;
                }
            }
            end("closed the connection after refusing " + message.name() + " (the front-end asked for no REPLY_ACK)");
            return false;
        } finally {
            if (!fdsAdopted) {
                for (int fd : message.fds()) {
                    LibC.closeQuietly(fd);
                }
            }
        }
    }

    private static boolean hasOwnReply(VhostUserRequest request) {
        return request == VhostUserRequest.GET_FEATURES || request == VhostUserRequest.GET_PROTOCOL_FEATURES
                || request == VhostUserRequest.GET_VRING_BASE || request == VhostUserRequest.GET_QUEUE_NUM;
    }

    /** Runs one request; returns the payload of its reply if it has one of its own, else null. */
    private byte[] handle(VhostUserRequest request, VhostUserMessage m) {
        switch (request) {
            case null -> throw new VhostUserException("request " + m.request() + " is not a vhost-user request this back-end knows");
            case GET_FEATURES -> {
                noPayload(m);
                noFds(m);
                return VhostUserMessage.u64(daemon.offeredFeatures());
            }
            case SET_FEATURES -> {
                long features = m.u64();
                noFds(m);
                setFeatures(features);
            }
            case SET_OWNER -> {
                noPayload(m);
                noFds(m);
                // "SET_OWNER": a session-start flag; QEMU sends it once per queue pair, so a repeat is fine
            }
            case RESET_OWNER -> {
                noPayload(m);
                noFds(m);
                // "RESET_OWNER" is deprecated: back-ends should ignore it or disable all rings
                for (int p = 0; p < workers.length; p++) {
                    stopPair(p);
                }
            }
            case SET_MEM_TABLE -> setMemTable(m);
            case SET_VRING_NUM -> {
                VhostUserMessage.VringState s = m.vringState();
                noFds(m);
                setVringNum(s);
            }
            case SET_VRING_ADDR -> {
                VhostUserMessage.VringAddress a = m.vringAddress();
                noFds(m);
                setVringAddr(a);
            }
            case SET_VRING_BASE -> {
                VhostUserMessage.VringState s = m.vringState();
                noFds(m);
                Vring r = ring(s.index(), request);
                requireStopped(r, request);
                if (s.num() > 0xFFFF) {
                    throw new VhostUserException("SET_VRING_BASE for vring " + r.index + " is " + s.num()
                            + "; a ring index is 16 bits (virtio 1.2 §2.7.6)");
                }
                r.base = (int) s.num();
            }
            case GET_VRING_BASE -> {
                VhostUserMessage.VringState s = m.vringState();
                noFds(m);
                return getVringBase(s);
            }
            case SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR -> setVringFd(request, m);
            case GET_PROTOCOL_FEATURES -> {
                noPayload(m);
                noFds(m);
                return VhostUserMessage.u64(daemon.offeredProtocolFeatures());
            }
            case SET_PROTOCOL_FEATURES -> {
                long features = m.u64();
                noFds(m);
                long unknown = features & ~daemon.offeredProtocolFeatures();
                if (unknown != 0) {
                    throw new VhostUserException(String.format("SET_PROTOCOL_FEATURES 0x%x sets %s, which this back-end did not offer",
                            features, VhostUserProtocol.protocolFeatureNames(unknown)));
                }
                protocolFeatures = features;
                replyAck = VhostUserProtocol.has(features, PROTOCOL_F_REPLY_ACK);
                daemon.log("front-end %d: protocol features %s", number, VhostUserProtocol.protocolFeatureNames(features));
            }
            case GET_QUEUE_NUM -> {
                noPayload(m);
                noFds(m);
                return VhostUserMessage.u64(rings.length);
            }
            case SET_VRING_ENABLE -> {
                VhostUserMessage.VringState s = m.vringState();
                noFds(m);
                Vring r = ring(s.index(), request);
                if (s.num() > 1) {
                    throw new VhostUserException("SET_VRING_ENABLE for vring " + r.index + " is " + s.num() + "; it takes 0 or 1");
                }
                r.enabled = s.num() == 1;
                applyEnable(r.index / 2);
            }
            case NET_SET_MTU -> {
                long value = m.u64();
                noFds(m);
                setMtu(value);
            }
            default -> throw new VhostUserException(request + " is not supported: this back-end offered no feature that needs it");
        }
        return null;
    }

    // ---- checks shared by the handlers ----

    private static void noPayload(VhostUserMessage m) {
        if (m.size() != 0) {
            throw new VhostUserFramingException(m.name() + " has a " + m.size() + "-byte payload; it carries none");
        }
    }

    private static void noFds(VhostUserMessage m) {
        if (m.fds().length != 0) {
            throw new VhostUserException(m.name() + " carries " + m.fds().length + " fd(s); it takes none");
        }
    }

    private Vring ring(int index, VhostUserRequest request) {
        if (index < 0 || index >= rings.length) {
            throw new VhostUserException(request + " names vring " + Integer.toUnsignedString(index) + ", out of range: this back-end has "
                    + rings.length + " vrings (0.." + (rings.length - 1) + ")");
        }
        return rings[index];
    }

    private boolean running(Vring r) {
        return r.started && workers[r.index / 2] != null;
    }

    private void requireStopped(Vring r, VhostUserRequest request) {
        if (running(r)) {
            throw new VhostUserException(request + " for vring " + r.index + " while it runs; GET_VRING_BASE stops it first");
        }
    }

    private boolean anyRunning() {
        for (QueuePairWorker w : workers) {
            if (w != null) {
                return true;
            }
        }
        return false;
    }

    private boolean protocolNegotiated() {
        return VirtioFeatures.has(ackedFeatures, F_PROTOCOL_FEATURES);
    }

    // ---- features and memory ----

    private void setFeatures(long features) {
        long unknown = features & ~daemon.offeredFeatures();
        if (unknown != 0) {
            throw new VhostUserException(String.format("SET_FEATURES 0x%x acks %s, which this back-end did not offer", features,
                    NetFeatures.names(unknown)));
        }
        if (!VirtioFeatures.has(features, VirtioFeatures.VERSION_1) && !VirtioFeatures.has(features, NetFeatures.MRG_RXBUF)) {
            throw new VhostUserException(String.format("SET_FEATURES 0x%x has neither VERSION_1 nor MRG_RXBUF: this back-end only "
                    + "speaks the 12-byte virtio_net_hdr (virtio 1.2 §5.1.6)", features));
        }
        if (anyRunning() && features != ackedFeatures) {
            throw new VhostUserException(String.format("SET_FEATURES 0x%x changes the features (0x%x) while rings run; "
                    + "GET_VRING_BASE stops them first", features, ackedFeatures));
        }
        ackedFeatures = features;
        featuresSet = true;
        if (port.supportsOffloads()) {
            port.setOffloads(TapOffloads.fromGuestFeatures(features));
        }
        daemon.ackedFeatures(features);
        daemon.log("front-end %d: features acked 0x%x %s%s", number, features,
                NetFeatures.names(features & ~VhostUserProtocol.bit(F_PROTOCOL_FEATURES)),
                protocolNegotiated() ? " + PROTOCOL_FEATURES" : "");
    }

    private void setMemTable(VhostUserMessage m) {
        List<VhostUserMessage.Region> regions = m.memoryTable();
        if (m.fds().length != regions.size()) {
            throw new VhostUserException("SET_MEM_TABLE announces " + regions.size() + " region(s) but carries " + m.fds().length
                    + " fd(s); it takes one fd per region");
        }
        if (memory != null && anyRunning() && memory.sameLayout(regions)) {
            return; // QEMU repeats the table for every queue pair: nothing changes
        }
        fdsAdopted = true; // map() owns them from here, and closes them if it fails
        MappedMemoryTable next = MappedMemoryTable.map(regions, m.fds());
        List<Integer> restart = new ArrayList<>();
        for (int p = 0; p < workers.length; p++) {
            if (workers[p] != null) {
                stopPair(p);
                restart.add(p);
            }
        }
        if (memory != null) {
            memory.close();
        }
        memory = next;
        daemon.log("front-end %d: memory table %s", number, next);
        for (int p : restart) {
            tryStartPair(p);
        }
    }

    private void setMtu(long value) {
        if (!VhostUserProtocol.has(protocolFeatures, PROTOCOL_F_NET_MTU)) {
            throw new VhostUserException("NET_SET_MTU without the NET_MTU protocol feature negotiated");
        }
        // virtio 1.2 §5.1.4.1: the device advertises an MTU of at least 68; 65535 is what the field holds
        if (value < 68 || value > 65535) {
            throw new VhostUserException("NET_SET_MTU " + value + " is outside 68..65535");
        }
        if (daemon.managesTapMtu() && port instanceof TapDevice tap && value != mtu) {
            tap.setMtu((int) value);
        }
        mtu = (int) value;
        daemon.log("front-end %d: MTU %d", number, mtu);
    }

    // ---- rings ----

    private void setVringNum(VhostUserMessage.VringState s) {
        Vring r = ring(s.index(), VhostUserRequest.SET_VRING_NUM);
        requireStopped(r, VhostUserRequest.SET_VRING_NUM);
        if (s.num() > SplitRing.MAX_QUEUE_SIZE || !SplitRing.isValidQueueSize((int) s.num())) {
            throw new VhostUserException("SET_VRING_NUM for vring " + r.index + " is " + s.num()
                    + ", not a power of two in 1.." + SplitRing.MAX_QUEUE_SIZE + " (virtio 1.2 §2.7)");
        }
        r.size = (int) s.num();
    }

    private void setVringAddr(VhostUserMessage.VringAddress a) {
        Vring r = ring(a.index(), VhostUserRequest.SET_VRING_ADDR);
        requireStopped(r, VhostUserRequest.SET_VRING_ADDR);
        if ((a.flags() & VRING_F_LOG) != 0) {
            throw new VhostUserException("SET_VRING_ADDR for vring " + r.index + " asks for used-ring logging (VHOST_VRING_F_LOG), "
                    + "but this back-end offers no LOG_ALL");
        }
        if (a.flags() != 0) {
            throw new VhostUserException("SET_VRING_ADDR for vring " + r.index + " has unknown flags 0x" + Integer.toHexString(a.flags()));
        }
        if (memory == null) {
            throw new VhostUserException("SET_VRING_ADDR for vring " + r.index + " before SET_MEM_TABLE: its addresses cannot be translated");
        }
        // translate now so a bad address is refused here, not at the kick; the sizes are checked again at start
        int size = Math.max(r.size, 1);
        memory.toGuestAddress(a.descUserAddr(), SplitRing.descriptorTableBytes(size), "vring " + r.index + " descriptor table");
        memory.toGuestAddress(a.availUserAddr(), SplitRing.availRingBytes(size), "vring " + r.index + " available ring");
        memory.toGuestAddress(a.usedUserAddr(), SplitRing.usedRingBytes(size), "vring " + r.index + " used ring");
        r.address = a;
    }

    private byte[] getVringBase(VhostUserMessage.VringState s) {
        Vring r = ring(s.index(), VhostUserRequest.GET_VRING_BASE);
        int pair = r.index / 2;
        if (workers[pair] != null) {
            // "Ring states": GET_VRING_BASE stops the ring; the engine serves both rings of a pair, so both stop
            stopPair(pair);
            daemon.log("front-end %d: queue pair %d stopped by GET_VRING_BASE(%d): rx at avail %d, tx at avail %d", number, pair,
                    r.index, rings[2 * pair].base, rings[2 * pair + 1].base);
        }
        r.started = false;
        LibC.closeQuietly(r.kickFd);
        r.kickFd = -1;
        return VhostUserMessage.vringState(r.index, r.base);
    }

    private void setVringFd(VhostUserRequest request, VhostUserMessage m) {
        long value = m.u64();
        if ((value & ~(VRING_INDEX_MASK | VRING_NOFD)) != 0) {
            throw new VhostUserException(String.format("%s value 0x%x has bits beyond the vring index (0-7) and NOFD (8)", request, value));
        }
        Vring r = ring((int) (value & VRING_INDEX_MASK), request);
        boolean nofd = (value & VRING_NOFD) != 0;
        int expected = nofd ? 0 : 1;
        if (m.fds().length != expected) {
            throw new VhostUserException(request + " for vring " + r.index + " carries " + m.fds().length + " fd(s); "
                    + (nofd ? "with the NOFD flag it takes none" : "without the NOFD flag it takes exactly one"));
        }
        if (nofd && request == VhostUserRequest.SET_VRING_KICK) {
            throw new VhostUserException("SET_VRING_KICK for vring " + r.index + " has no fd (NOFD): that asks the back-end to poll "
                    + "the ring, and this one only waits for kicks");
        }
        int fd = nofd ? -1 : m.fds()[0];
        if (fd >= 0) {
            checkEventFd(request, r, fd);
        }
        int pair = r.index / 2;
        fdsAdopted = true;
        switch (request) {
            case SET_VRING_KICK -> {
                if (workers[pair] != null) {
                    stopPair(pair); // the engine listens on the old fd: restart it on the new one
                }
                LibC.closeQuietly(r.kickFd);
                r.kickFd = fd;
                r.started = true; // "Ring states": the ring starts with its kick fd
                try {
                    tryStartPair(pair);
                } catch (RuntimeException e) {
                    r.started = false;
                    throw e;
                }
            }
            case SET_VRING_CALL -> {
                int old = r.callFd;
                swapOnWorker(pair, () -> r.callFd = fd);
                LibC.closeQuietly(old);
            }
            default -> {
                int old = r.errFd;
                swapOnWorker(pair, () -> r.errFd = fd);
                LibC.closeQuietly(old);
            }
        }
    }

    /** Runs {@code swap} where the pair's engine cannot be signalling at the same time (its loop), so the old fd can be closed after. */
    private void swapOnWorker(int pair, Runnable swap) {
        if (workers[pair] != null) {
            Vring.unblockingSignals(() -> daemon.loop(pair).executeAndWait(swap), rings[2 * pair], rings[2 * pair + 1]);
        } else {
            swap.run();
        }
    }

    private static void checkEventFd(VhostUserRequest request, Vring r, int fd) {
        String target;
        try {
            target = Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString();
        } catch (IOException e) {
            throw new VhostUserException(request + " for vring " + r.index + ": its fd cannot be examined: " + e.getMessage());
        }
        if (!target.equals("anon_inode:[eventfd]")) {
            throw new VhostUserException(request + " for vring " + r.index + " passes " + target + ", not an eventfd");
        }
        // its flags stay as they are: O_NONBLOCK belongs to the open file description the front-end shares (Vring never blocks)
    }

    // ---- queue pairs: the engine serves a receive and a transmit ring together ----

    private boolean effectivelyEnabled(Vring r) {
        // "Ring states": without protocol features a ring is enabled as soon as it starts
        return !protocolNegotiated() || r.enabled;
    }

    private boolean pairEnabled(int pair) {
        return effectivelyEnabled(rings[2 * pair]) && effectivelyEnabled(rings[2 * pair + 1]);
    }

    private void applyEnable(int pair) {
        QueuePairWorker w = workers[pair];
        if (w == null) {
            return;
        }
        boolean on = pairEnabled(pair);
        w.setEnabled(on);
        portQueueDetached[pair] = !on && port.queueCount() > 1;
    }

    /** Starts the pair's engine once both of its rings have started. */
    private void tryStartPair(int pair) {
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
        SplitQueue rxQueue = open(rx);
        SplitQueue txQueue = open(tx);
        boolean gso = VirtioFeatures.has(ackedFeatures, NetFeatures.GUEST_TSO4) || VirtioFeatures.has(ackedFeatures, NetFeatures.GUEST_TSO6)
                || VirtioFeatures.has(ackedFeatures, NetFeatures.GUEST_UFO);
        QueuePairWorker w = new QueuePairWorker(pair, daemon.loop(pair), port, new QueuePairWorker.Queues(memory.memory(), rxQueue,
                txQueue, rx.signals(), tx.signals(), counters[2 * pair], counters[2 * pair + 1],
                VirtioFeatures.has(ackedFeatures, NetFeatures.MRG_RXBUF), gso, mtu, reason -> ringFailed(pair, reason)));
        boolean on = pairEnabled(pair);
        if (!on) {
            w.setEnabled(false);
            portQueueDetached[pair] = port.queueCount() > 1;
        }
        w.start();
        workers[pair] = w;
        daemon.log("front-end %d: queue pair %d started (rx size %d at %d, tx size %d at %d)%s", number, pair, rx.size, rx.base,
                tx.size, tx.base, on ? "" : ", disabled until SET_VRING_ENABLE");
    }

    private SplitQueue open(Vring r) {
        if (r.size == 0) {
            throw new VhostUserException("vring " + r.index + " cannot start: no SET_VRING_NUM");
        }
        if (r.address == null) {
            throw new VhostUserException("vring " + r.index + " cannot start: no SET_VRING_ADDR");
        }
        VhostUserMessage.VringAddress a = r.address;
        long desc = memory.toGuestAddress(a.descUserAddr(), SplitRing.descriptorTableBytes(r.size), "vring " + r.index + " descriptor table");
        long avail = memory.toGuestAddress(a.availUserAddr(), SplitRing.availRingBytes(r.size), "vring " + r.index + " available ring");
        long used = memory.toGuestAddress(a.usedUserAddr(), SplitRing.usedRingBytes(r.size), "vring " + r.index + " used ring");
        try {
            SplitQueue q = new SplitQueue(memory.memory(), r.size, desc, avail, used,
                    VirtioFeatures.has(ackedFeatures, VirtioFeatures.EVENT_IDX));
            // the used index is whatever was last published there (zero for a fresh ring)
            int usedIdx = Short.toUnsignedInt(memory.memory().loadAcquireShort(used + SplitRing.RING_IDX));
            q.setPosition(r.base, usedIdx);
            return q;
        } catch (VirtqueueException | IllegalArgumentException e) {
            throw new VhostUserException("vring " + r.index + " cannot start: " + e.getMessage());
        }
    }

    /** Stops the pair's engine and keeps where each ring stood as its base. */
    private void stopPair(int pair) {
        QueuePairWorker w = workers[pair];
        if (w == null) {
            return;
        }
        Vring.unblockingSignals(w::stop, rings[2 * pair], rings[2 * pair + 1]);
        rings[2 * pair].base = w.rxNextAvail();
        rings[2 * pair + 1].base = w.txNextAvail();
        w.release();
        workers[pair] = null;
        if (portQueueDetached[pair]) {
            port.setQueueEnabled(pair, true); // leave the port as a fresh engine expects it
            portQueueDetached[pair] = false;
        }
    }

    /** Called on the pair's loop when the guest broke a ring, or its memory faulted: the engine has stopped itself. */
    private void ringFailed(int pair, String reason) {
        if (reason.contains(QueuePairWorker.GUEST_MEMORY_FAULT)) {
            memoryFaulted("queue pair " + pair + ": " + reason);
            return;
        }
        daemon.log("front-end %d: queue pair %d stopped on a ring error: %s", number, pair, reason);
        Vring r = reason.startsWith("receiveq") ? rings[2 * pair] : rings[2 * pair + 1];
        r.signalError();
    }

    @Override
    public void close() {
        for (int p = 0; p < workers.length; p++) {
            try {
                stopPair(p);
            } catch (RuntimeException e) {
                daemon.log("front-end %d: stopping queue pair %d failed: %s", number, p, e.getMessage());
            }
        }
        for (Vring r : rings) {
            r.closeFds();
        }
        if (memory != null) {
            memory.close();
            memory = null;
        }
        channel.close();
    }
}
