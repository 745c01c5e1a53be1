package io.vmm4j.vhost.user;

import io.vmm4j.core.event.EventFd;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.Errno;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.linux.LinuxException;
import io.vmm4j.core.linux.UnixSocket;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.core.memory.MemoryRegion;
import io.vmm4j.vhost.VhostBackend;
import io.vmm4j.vhost.VringAddress;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

import static io.vmm4j.vhost.user.VhostUserProtocol.PROTOCOL_F_REPLY_ACK;
import static io.vmm4j.vhost.user.VhostUserProtocol.VRING_NOFD;

/**
 * The front-end side of vhost-user: the vhost protocol as messages on a UNIX socket to a back-end
 * process. Requests that have a reply wait for it; once REPLY_ACK is negotiated every other request
 * asks for an ack too, so a refusal surfaces here as an exception naming the request (rather than
 * as silence). Every wait is bounded, so a hung back-end cannot hang the VMM. Thread-safe: one
 * request at a time.
 */
public final class VhostUserFrontend implements VhostBackend {
    private static final Logger LOG = LoggerFactory.getLogger(VhostUserFrontend.class);
    /** How long a reply may take; a back-end that maps memory answers in milliseconds. */
    public static final int DEFAULT_REPLY_TIMEOUT_MILLIS = 5_000;

    private final Path path;
    private final VhostUserChannel channel;
    private final int replyTimeoutMillis;
    private boolean replyAck;
    private volatile boolean broken;
    private EventLoop.Registration hangupWatch;
    private volatile boolean closed;

    private VhostUserFrontend(Path path, VhostUserChannel channel, int replyTimeoutMillis) {
        this.path = path;
        this.channel = channel;
        this.replyTimeoutMillis = replyTimeoutMillis;
    }

    /**
     * Connects to the back-end listening at {@code path}.
     *
     * @throws VhostUserException one sentence naming the socket when nobody listens there
     */
    public static VhostUserFrontend connect(Path path, int replyTimeoutMillis) {
        try {
            UnixSocket socket = UnixSocket.connect(path);
            return new VhostUserFrontend(path, new VhostUserChannel(socket, "the vhost-user back-end at " + path), replyTimeoutMillis);
        } catch (LinuxException e) {
            String why = switch (e.errno()) {
                case Errno.ENOENT -> "the socket does not exist";
                case Errno.ECONNREFUSED -> "nobody is listening on it (a stale socket file)";
                case Errno.EACCES, Errno.EPERM -> "permission denied";
                default -> e.getMessage();
            };
            throw new VhostUserException("no vhost-user back-end at " + path + ": " + why, e);
        }
    }

    /** Speaks vhost-user on {@code socket}, a connection the back-end made to a socket this process listens on (server mode). */
    public static VhostUserFrontend adopt(Path path, UnixSocket socket, int replyTimeoutMillis) {
        return new VhostUserFrontend(path, new VhostUserChannel(socket, "the vhost-user back-end connected at " + path), replyTimeoutMillis);
    }

    public Path path() {
        return path;
    }

    /** Whether the connection still works (no hang-up seen, no failed exchange). */
    public boolean connected() {
        return !broken && !closed;
    }

    // ---- the exchange ----

    private VhostUserMessage exchange(VhostUserRequest request, byte[] payload, boolean hasReply, int... fds) {
        return exchange(request, payload, hasReply, false, fds);
    }

    /** @param keepReplyFds whether descriptors in the reply are the caller's (GET_INFLIGHT_FD); otherwise they are closed */
    private synchronized VhostUserMessage exchange(VhostUserRequest request, byte[] payload, boolean hasReply, boolean keepReplyFds,
                                                   int... fds) {
        if (closed) {
            throw new VhostUserException(request + " to the vhost-user back-end at " + path + ": the connection is closed");
        }
        if (broken) {
            throw new VhostUserException(request + " to the vhost-user back-end at " + path + ": the back-end is gone");
        }
        boolean ack = !hasReply && replyAck;
        VhostUserMessage reply;
        long status;
        try {
            channel.send(VhostUserMessage.request(request, ack, payload, fds));
            if (!hasReply && !ack) {
                return null;
            }
            try {
                reply = channel.receive(replyTimeoutMillis, replyTimeoutMillis);
            } catch (VhostUserFramingException e) {
                throw e;
            } catch (VhostUserException e) {
                throw new VhostUserException(request + " got no answer: " + e.getMessage()
                        + (request == VhostUserRequest.GET_FEATURES ? " (a back-end serves one front-end at a time: is another one "
                        + "connected?)" : ""), e);
            }
            if (reply == null) {
                throw new VhostUserException("the vhost-user back-end at " + path + " closed the connection instead of answering "
                        + request);
            }
            if (!keepReplyFds || reply.request() != request.code() || !reply.isReply()) {
                for (int fd : reply.fds()) {
                    LibC.closeQuietly(fd); // only GET_INFLIGHT_FD's reply carries one
                }
            }
            if (reply.request() != request.code() || !reply.isReply()) {
                throw new VhostUserException("the vhost-user back-end at " + path + " answered " + request + " with "
                        + reply + "; expected a " + request + " reply");
            }
            status = ack ? reply.u64() : 0;
        } catch (VhostUserException e) {
            broken = true; // the stream is out of step or gone: nothing later can be trusted
            throw e;
        }
        if (status != 0) {
            // "REPLY_ACK": non-zero is failure; the connection itself is still in step
            throw new VhostUserException("the vhost-user back-end at " + path + " refused " + request
                    + " (REPLY_ACK status " + status + "; its log says why)");
        }
        return reply;
    }

    private long u64Request(VhostUserRequest request) {
        return exchange(request, new byte[0], true).u64();
    }

    // ---- VhostBackend ----

    @Override
    public void setOwner() {
        exchange(VhostUserRequest.SET_OWNER, new byte[0], false);
    }

    @Override
    public void resetOwner() {
        exchange(VhostUserRequest.RESET_OWNER, new byte[0], false);
    }

    @Override
    public long getFeatures() {
        return u64Request(VhostUserRequest.GET_FEATURES);
    }

    @Override
    public void setFeatures(long features) {
        exchange(VhostUserRequest.SET_FEATURES, VhostUserMessage.u64(features), false);
    }

    /** SET_MEM_TABLE: one region per guest memory region, each with its memfd (regions may share one). */
    @Override
    public void setMemTable(GuestMemory memory) {
        List<MemoryRegion> regions = memory.regions();
        if (regions.size() > VhostUserProtocol.MAX_MEMORY_REGIONS) {
            throw new VhostUserException("guest memory has " + regions.size() + " regions; vhost-user carries at most "
                    + VhostUserProtocol.MAX_MEMORY_REGIONS + " in SET_MEM_TABLE");
        }
        List<VhostUserMessage.Region> table = new ArrayList<>();
        int[] fds = new int[regions.size()];
        for (int i = 0; i < regions.size(); i++) {
            MemoryRegion r = regions.get(i);
            table.add(new VhostUserMessage.Region(r.guestAddress(), r.size(), r.hostAddress(), r.fdOffset()));
            fds[i] = r.fd();
        }
        exchange(VhostUserRequest.SET_MEM_TABLE, VhostUserMessage.memoryTable(table), false, fds);
    }

    @Override
    public void setVringNum(int index, int size) {
        exchange(VhostUserRequest.SET_VRING_NUM, VhostUserMessage.vringState(index, size), false);
    }

    @Override
    public void setVringAddr(int index, VringAddress address) {
        exchange(VhostUserRequest.SET_VRING_ADDR, VhostUserMessage.vringAddress(
                new VhostUserMessage.VringAddressDescription(index, 0, address, 0)), false);
    }

    @Override
    public void setVringBase(int index, int base) {
        // packed rings use all 32 bits (avail and used positions): unsigned on the wire
        exchange(VhostUserRequest.SET_VRING_BASE, VhostUserMessage.vringState(index, Integer.toUnsignedLong(base)), false);
    }

    @Override
    public int getVringBase(int index) {
        VhostUserMessage.VringState s = exchange(VhostUserRequest.GET_VRING_BASE, VhostUserMessage.vringState(index, 0), true)
                .vringState();
        if (s.index() != index || s.num() > 0xFFFF_FFFFL) {
            throw new VhostUserException("the vhost-user back-end at " + path + " answered GET_VRING_BASE for ring " + index
                    + " with ring " + s.index() + ", base " + s.num());
        }
        return (int) s.num();
    }

    @Override
    public void setVringKick(int index, EventFd kick) {
        sendVringFd(VhostUserRequest.SET_VRING_KICK, index, kick);
    }

    @Override
    public void setVringCall(int index, EventFd call) {
        sendVringFd(VhostUserRequest.SET_VRING_CALL, index, call);
    }

    @Override
    public void setVringErr(int index, EventFd err) {
        sendVringFd(VhostUserRequest.SET_VRING_ERR, index, err);
    }

    /** "SET_VRING_KICK": bits 0-7 the index, bit 8 set when no fd rides along. */
    private void sendVringFd(VhostUserRequest request, int index, EventFd fd) {
        if (index < 0 || index > VhostUserProtocol.VRING_INDEX_MASK) {
            throw new IllegalArgumentException("vring index " + index + " does not fit the 8 bits " + request + " has for it");
        }
        long value = index | (fd == null ? VRING_NOFD : 0);
        if (fd == null) {
            exchange(request, VhostUserMessage.u64(value), false);
        } else {
            exchange(request, VhostUserMessage.u64(value), false, fd.fd());
        }
    }

    // ---- vhost-user only ----

    public long getProtocolFeatures() {
        return u64Request(VhostUserRequest.GET_PROTOCOL_FEATURES);
    }

    /** SET_PROTOCOL_FEATURES; with REPLY_ACK in {@code features}, later requests ask for acks. */
    public void setProtocolFeatures(long features) {
        exchange(VhostUserRequest.SET_PROTOCOL_FEATURES, VhostUserMessage.u64(features), false);
        synchronized (this) {
            replyAck = VhostUserProtocol.has(features, PROTOCOL_F_REPLY_ACK);
        }
    }

    /** GET_QUEUE_NUM: how many queues (vrings) the back-end serves. */
    public long getQueueNum() {
        return u64Request(VhostUserRequest.GET_QUEUE_NUM);
    }

    public void setVringEnable(int index, boolean enable) {
        exchange(VhostUserRequest.SET_VRING_ENABLE, VhostUserMessage.vringState(index, enable ? 1 : 0), false);
    }

    /** A region for inflight I/O tracking the back-end made (GET_INFLIGHT_FD): its fd is the caller's to keep and close. */
    public record InflightArea(int fd, long mmapSize, long mmapOffset, int numQueues, int queueSize) {
    }

    /** "GET_INFLIGHT_FD": asks the back-end for a region tracking {@code numQueues} queues of up to {@code queueSize}. */
    public InflightArea getInflightFd(int numQueues, int queueSize) {
        VhostUserMessage reply = exchange(VhostUserRequest.GET_INFLIGHT_FD, VhostUserMessage.inflight(
                new VhostUserMessage.Inflight(0, 0, numQueues, queueSize)), true, true);
        int[] fds = reply.fds();
        VhostUserMessage.Inflight d;
        try {
            d = reply.inflight();
        } catch (VhostUserException e) {
            for (int fd : fds) {
                LibC.closeQuietly(fd);
            }
            throw new VhostUserException("the vhost-user back-end at " + path + " answered GET_INFLIGHT_FD badly: " + e.getMessage());
        }
        if (fds.length != 1 || d.mmapSize() <= 0) {
            for (int fd : fds) {
                LibC.closeQuietly(fd);
            }
            throw new VhostUserException("the vhost-user back-end at " + path + " answered GET_INFLIGHT_FD with " + fds.length
                    + " fd(s) and mmap size " + d.mmapSize() + "; expected one fd and a size");
        }
        return new InflightArea(fds[0], d.mmapSize(), d.mmapOffset(), d.numQueues(), d.queueSize());
    }

    /** "SET_INFLIGHT_FD": hands the region back (to the same back-end, or to the one that replaced it after a crash). */
    public void setInflightFd(InflightArea a) {
        exchange(VhostUserRequest.SET_INFLIGHT_FD, VhostUserMessage.inflight(new VhostUserMessage.Inflight(a.mmapSize(), a.mmapOffset(),
                a.numQueues(), a.queueSize())), false, a.fd());
    }

    /** NET_SET_MTU: the MTU the device advertises, which the back-end must honour. */
    public void setMtu(int mtu) {
        exchange(VhostUserRequest.NET_SET_MTU, VhostUserMessage.u64(mtu), false);
    }

    // ---- liveness ----

    /**
     * Watches the socket on {@code loop} for the back-end hanging up (EPOLLRDHUP/EPOLLHUP) and tells
     * {@code onHangup} once, with a sentence saying what happened. Replies are read by the requests
     * themselves, so only hang-ups are watched.
     */
    public synchronized void watchHangup(EventLoop loop, Consumer<String> onHangup) {
        if (hangupWatch != null) {
            throw new IllegalStateException("the hang-up of " + path + " is already watched");
        }
        hangupWatch = loop.register(channel.fd(), LibC.EPOLLRDHUP, ready -> {
            EventLoop.Registration r;
            synchronized (this) {
                r = hangupWatch;
                hangupWatch = null;
            }
            if (r == null) {
                return;
            }
            r.close();
            if (closed) {
                return;
            }
            broken = true;
            String what = (ready & LibC.EPOLLERR) != 0 ? "the connection failed" : "the back-end closed the connection";
            LOG.debug("vhost-user socket {} ready 0x{}", path, Integer.toHexString(ready));
            onHangup.accept("the vhost-user back-end at " + path + " is gone (" + what + ")");
        });
    }

    @Override
    public void close() {
        EventLoop.Registration r;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            r = hangupWatch;
            hangupWatch = null;
        }
        if (r != null) {
            r.close();
        }
        channel.close();
    }
}
