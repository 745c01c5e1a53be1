package io.vmm4j.vhost.user;

import io.vmm4j.core.linux.LibC;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.NetQueueCounters;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static io.vmm4j.vhost.user.VhostUserProtocol.F_PROTOCOL_FEATURES;
import static io.vmm4j.vhost.user.VhostUserProtocol.PROTOCOL_F_NET_MTU;
import static io.vmm4j.vhost.user.VhostUserProtocol.PROTOCOL_F_REPLY_ACK;
import static io.vmm4j.vhost.user.VhostUserProtocol.VRING_INDEX_MASK;
import static io.vmm4j.vhost.user.VhostUserProtocol.VRING_NOFD;

/**
 * One front-end connection to the back-end daemon: reads messages, checks each one's payload and
 * fds completely before it changes anything, negotiates features, and hands the ring messages to
 * {@link Vrings}, which drive the session's {@link QueuePairs} (the queue engine the VMM's emulated
 * backend runs too) over the memory and eventfds the front-end passed; {@link SessionPort} is what
 * the session does to the daemon's port.
 *
 * <p>Bad input never crashes the daemon and never makes it touch memory outside the mapped regions:
 * a message that breaks the framing closes the connection; any other bad message is refused with
 * a non-zero REPLY_ACK when the front-end asked for one, and closes the connection when it did not
 * (the front-end would otherwise go on believing it succeeded).
 */
final class VhostUserSession implements AutoCloseable {
    private final VhostUserNetDaemon daemon;
    private final VhostUserChannel channel;
    private final int number;
    private final long startNanos = System.nanoTime();
    private final SessionPort port;
    private final QueuePairs pairs;
    private final Vrings rings;
    private long protocolFeatures;
    private boolean replyAck;
    private boolean fdsAdopted;
    private volatile String endReason = "still connected";
    /** Why the session must end although the front-end is still connected (its memory faulted; the daemon stops). */
    private volatile String stopReason;

    VhostUserSession(VhostUserNetDaemon daemon, VhostUserChannel channel, int number) {
        this.daemon = daemon;
        this.channel = channel;
        this.number = number;
        Vring[] vrings = new Vring[2 * daemon.queuePairs()];
        for (int i = 0; i < vrings.length; i++) {
            vrings[i] = new Vring(i);
        }
        this.port = new SessionPort(daemon.port(), daemon.managesTapMtu(), daemon.queuePairs());
        this.pairs = new QueuePairs(daemon, number, vrings, port, this::memoryFaulted);
        this.rings = new Vrings(daemon, number, vrings, pairs);
    }

    int number() {
        return number;
    }

    long ackedFeatures() {
        return pairs.ackedFeatures();
    }

    List<NetQueueCounters> counters() {
        return pairs.counters();
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
        MappedMemoryTable table = pairs.memory();
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

    /** An fd to send with the reply the handler returns (GET_INFLIGHT_FD), closed after sending; -1: none. */
    private int replyFd = -1;

    private boolean serve(VhostUserMessage message) {
        VhostUserRequest request = VhostUserRequest.of(message.request());
        fdsAdopted = false;
        try {
            replyFd = -1;
            byte[] reply = handle(request, message);
            if (reply != null) {
                try {
                    channel.send(replyFd < 0 ? VhostUserMessage.reply(message, reply) : VhostUserMessage.reply(message, reply, replyFd));
                } finally {
                    if (replyFd >= 0) {
                        LibC.closeQuietly(replyFd); // the front-end has its own copy now; ours is mapped
                        replyFd = -1;
                    }
                }
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
            if (replyFd >= 0) { // a reply that was never sent: its fd is ours alone
                LibC.closeQuietly(replyFd);
                replyFd = -1;
            }
        }
    }

    private static boolean hasOwnReply(VhostUserRequest request) {
        return request == VhostUserRequest.GET_FEATURES || request == VhostUserRequest.GET_PROTOCOL_FEATURES
                || request == VhostUserRequest.GET_VRING_BASE || request == VhostUserRequest.GET_QUEUE_NUM
                || request == VhostUserRequest.GET_INFLIGHT_FD;
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
                pairs.stopAll();
            }
            case SET_MEM_TABLE -> setMemTable(m);
            case SET_VRING_NUM -> {
                VhostUserMessage.VringState s = m.vringState();
                noFds(m);
                rings.setNum(s);
            }
            case SET_VRING_ADDR -> {
                VhostUserMessage.VringAddressDescription a = m.vringAddress();
                noFds(m);
                rings.setAddr(a);
            }
            case SET_VRING_BASE -> {
                VhostUserMessage.VringState s = m.vringState();
                noFds(m);
                rings.setBase(s);
            }
            case GET_VRING_BASE -> {
                VhostUserMessage.VringState s = m.vringState();
                noFds(m);
                return rings.getBase(s);
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
                return VhostUserMessage.u64(rings.count());
            }
            case SET_VRING_ENABLE -> {
                VhostUserMessage.VringState s = m.vringState();
                noFds(m);
                rings.setEnable(s);
            }
            case NET_SET_MTU -> {
                long value = m.u64();
                noFds(m);
                setMtu(value);
            }
            case GET_INFLIGHT_FD -> {
                noFds(m);
                return getInflightFd(m.inflight());
            }
            case SET_INFLIGHT_FD -> setInflightFd(m);
            default -> throw new VhostUserException(request + " is not supported: this back-end offered no feature that needs it");
        }
        return null;
    }

    // ---- inflight I/O tracking ----

    private void requireInflight(String request) {
        if (!VhostUserProtocol.has(protocolFeatures, VhostUserProtocol.PROTOCOL_F_INFLIGHT_SHMFD)) {
            throw new VhostUserException(request + " without the INFLIGHT_SHMFD protocol feature negotiated");
        }
    }

    /** "GET_INFLIGHT_FD": a new, zeroed region for the front-end to keep, mapped here too. */
    private byte[] getInflightFd(VhostUserMessage.Inflight asked) {
        requireInflight("GET_INFLIGHT_FD");
        InflightRegion.checkShape(asked.numQueues(), asked.queueSize(), rings.count());
        int[] fd = new int[1];
        InflightRegion region = InflightRegion.create(asked.numQueues(), asked.queueSize(), fd);
        try {
            pairs.setInflight(region); // refused while queue pairs run (it closes the region then)
        } catch (RuntimeException e) {
            LibC.closeQuietly(fd[0]);
            throw e;
        }
        replyFd = fd[0];
        daemon.log("front-end %d: inflight region made: %d queue(s) of up to %d, %d bytes", number, asked.numQueues(),
                asked.queueSize(), region.mmapSize());
        return VhostUserMessage.inflight(new VhostUserMessage.Inflight(region.mmapSize(), 0, asked.numQueues(), asked.queueSize()));
    }

    /** "SET_INFLIGHT_FD": the region a front-end kept across a back-end restart (or the one just made), mapped here. */
    private void setInflightFd(VhostUserMessage m) {
        requireInflight("SET_INFLIGHT_FD");
        VhostUserMessage.Inflight d = m.inflight();
        if (m.fds().length != 1) {
            throw new VhostUserException("SET_INFLIGHT_FD carries " + m.fds().length + " fd(s); it takes one");
        }
        InflightRegion.checkShape(d.numQueues(), d.queueSize(), rings.count());
        InflightRegion region = InflightRegion.map(m.fds()[0], d.mmapSize(), d.mmapOffset(), d.numQueues(), d.queueSize());
        pairs.setInflight(region); // the fd is closed by serve(): the mapping keeps the file
        daemon.log("front-end %d: inflight region set: %d queue(s) of up to %d", number, d.numQueues(), d.queueSize());
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
        if (pairs.anyRunning() && features != pairs.ackedFeatures()) {
            throw new VhostUserException(String.format("SET_FEATURES 0x%x changes the features (0x%x) while rings run; "
                    + "GET_VRING_BASE stops them first", features, pairs.ackedFeatures()));
        }
        pairs.setFeatures(features);
        port.featuresAcked(features);
        daemon.ackedFeatures(features);
        daemon.log("front-end %d: features acked 0x%x %s%s", number, features,
                NetFeatures.names(features & ~VhostUserProtocol.bit(F_PROTOCOL_FEATURES)),
                pairs.protocolNegotiated() ? " + PROTOCOL_FEATURES" : "");
    }

    private void setMemTable(VhostUserMessage m) {
        List<VhostUserMessage.Region> regions = m.memoryTable();
        if (m.fds().length != regions.size()) {
            throw new VhostUserException("SET_MEM_TABLE announces " + regions.size() + " region(s) but carries " + m.fds().length
                    + " fd(s); it takes one fd per region");
        }
        if (pairs.servesLayout(regions)) {
            return; // QEMU repeats the table for every queue pair: nothing changes
        }
        fdsAdopted = true; // map() owns them from here, and closes them if it fails
        pairs.replaceMemory(MappedMemoryTable.map(regions, m.fds()));
    }

    private void setMtu(long value) {
        if (!VhostUserProtocol.has(protocolFeatures, PROTOCOL_F_NET_MTU)) {
            throw new VhostUserException("NET_SET_MTU without the NET_MTU protocol feature negotiated");
        }
        // virtio 1.2 §5.1.4.1: the device advertises an MTU of at least 68; 65535 is what the field holds
        if (value < 68 || value > 65535) {
            throw new VhostUserException("NET_SET_MTU " + value + " is outside 68..65535");
        }
        port.mtuChanged(pairs.mtu(), (int) value);
        pairs.setMtu((int) value);
        daemon.log("front-end %d: MTU %d", number, value);
    }

    // ---- rings: the message's fds checked here, its values and the ring's state in Vrings ----

    private void setVringFd(VhostUserRequest request, VhostUserMessage m) {
        long value = m.u64();
        if ((value & ~(VRING_INDEX_MASK | VRING_NOFD)) != 0) {
            throw new VhostUserException(String.format("%s value 0x%x has bits beyond the vring index (0-7) and NOFD (8)", request, value));
        }
        Vring r = rings.ring((int) (value & VRING_INDEX_MASK), request);
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
        fdsAdopted = true;
        switch (request) {
            case SET_VRING_KICK -> rings.setKick(r, fd);
            case SET_VRING_CALL -> rings.setCall(r, fd);
            default -> rings.setErr(r, fd);
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

    @Override
    public void close() {
        pairs.close();
        rings.closeFds();
        channel.close();
    }
}
