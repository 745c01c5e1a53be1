package io.vmm4j.vhost.user;

import io.vmm4j.core.linux.Errno;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.linux.LinuxException;
import io.vmm4j.core.linux.UnixSocket;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

import static io.vmm4j.vhost.user.VhostUserProtocol.HEADER_SIZE;
import static io.vmm4j.vhost.user.VhostUserProtocol.MAX_PAYLOAD;
import static io.vmm4j.vhost.user.VhostUserProtocol.VERSION;
import static io.vmm4j.vhost.user.VhostUserProtocol.VERSION_MASK;

/**
 * vhost-user framing over a connected AF_UNIX stream socket: a message is the 12-byte header, then
 * exactly {@code size} payload bytes; its descriptors arrive as SCM_RIGHTS on any of the reads that
 * make it up (Linux delivers them with the first byte of the sendmsg that carried them, and never
 * merges two sendmsgs' descriptors into one read). Not thread-safe: one sender and one receiver.
 */
public final class VhostUserChannel implements AutoCloseable {
    /** Descriptors accepted per read: more than any request may carry, so that extra ones are counted, not lost. */
    static final int FD_ROOM = 16;
    private static final ValueLayout.OfInt HEADER_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.nativeOrder());

    private final UnixSocket socket;
    private final String peer;
    private final int sendTimeoutMillis;
    /** When the message being read must be complete (System.nanoTime), set at its first byte. */
    private long restDeadline;

    /** @param peer who is at the other end, for error messages ("the vhost-user back-end at /run/vu.sock") */
    public VhostUserChannel(UnixSocket socket, String peer) {
        this(socket, peer, -1);
    }

    /**
     * @param sendTimeoutMillis how long a message may wait for the peer to make room for it (-1: for
     *                          ever): a peer that never reads its replies must not hold the sender
     */
    public VhostUserChannel(UnixSocket socket, String peer, int sendTimeoutMillis) {
        this.socket = socket;
        this.peer = peer;
        this.sendTimeoutMillis = sendTimeoutMillis;
    }

    public int fd() {
        return socket.fd();
    }

    public String peer() {
        return peer;
    }

    /**
     * Sends header, payload and descriptors in one sendmsg (the descriptors ride on the first byte).
     *
     * @throws VhostUserFramingException if the peer has gone, or left no room for the send timeout:
     *                                   the stream can carry no more messages
     */
    public void send(VhostUserMessage message) {
        byte[] bytes = message.encode();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(bytes.length);
            MemorySegment.copy(bytes, 0, data, ValueLayout.JAVA_BYTE, 0, bytes.length);
            socket.sendWithin(data, sendTimeoutMillis, message.fds());
        } catch (LinuxException e) {
            throw new VhostUserFramingException("sending " + message.name() + " to " + peer + " failed: " + (e.errno() == Errno.EAGAIN
                    ? "it has read nothing for " + sendTimeoutMillis + " ms (a peer that does not read its replies)"
                    : e.errnoName() + " (the peer closed the connection or died)"));
        }
    }

    /**
     * Waits up to {@code millis} for the peer to begin a message (or to hang up, which {@link #receive}
     * then reports); false if it stayed silent.
     */
    public boolean awaitMessage(int millis) {
        return LibC.pollOne(socket.fd(), LibC.POLLIN, millis) != 0;
    }

    /** Sends raw bytes as they are, header included: for tests that must break the framing on purpose. */
    public void sendRaw(byte[] bytes, int... fds) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(Math.max(1, bytes.length));
            MemorySegment.copy(bytes, 0, data, ValueLayout.JAVA_BYTE, 0, bytes.length);
            socket.send(data.asSlice(0, bytes.length), fds);
        }
    }

    /**
     * Reads one message. Waits up to {@code firstByteMillis} (-1: for ever) for it to begin, then up
     * to {@code restMillis} in all for the rest of it (so a peer trickling bytes cannot hold a reader
     * longer than that either).
     *
     * @return the message, or null if the peer closed the connection between messages
     * @throws VhostUserFramingException if the stream breaks off inside a message, stalls, claims a
     *                                   payload above {@value VhostUserProtocol#MAX_PAYLOAD} bytes, carries
     *                                   another version, or more descriptors than there is room for
     * @throws VhostUserException        if no message begins within {@code firstByteMillis}, or the socket fails
     */
    public VhostUserMessage receive(int firstByteMillis, int restMillis) {
        List<Integer> fds = new ArrayList<>();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment header = arena.allocate(HEADER_SIZE);
            long got = readFully(header, fds, firstByteMillis, restMillis, "header");
            if (got == 0) {
                return null;
            }
            int request = header.get(HEADER_INT, 0);
            int flags = header.get(HEADER_INT, 4);
            long size = Integer.toUnsignedLong(header.get(HEADER_INT, 8));
            String name = VhostUserRequest.describe(request);
            if ((flags & VERSION_MASK) != VERSION) {
                throw new VhostUserFramingException(name + " from " + peer + " has flags 0x" + Integer.toHexString(flags)
                        + ", version " + (flags & VERSION_MASK) + "; vhost-user version is " + VERSION);
            }
            if (size > MAX_PAYLOAD) {
                throw new VhostUserFramingException(name + " from " + peer + " announces a " + size
                        + "-byte payload; no message is larger than " + MAX_PAYLOAD + " bytes");
            }
            byte[] payload = new byte[(int) size];
            if (size > 0) {
                MemorySegment body = arena.allocate(size);
                readFully(body, fds, restMillis, restMillis, name + " payload");
                MemorySegment.copy(body, ValueLayout.JAVA_BYTE, 0, payload, 0, payload.length);
            }
            return new VhostUserMessage(request, flags, payload, fds.stream().mapToInt(Integer::intValue).toArray());
        } catch (RuntimeException e) {
            fds.forEach(LibC::closeQuietly);
            throw e;
        }
    }

    /** Fills {@code buf}; returns 0 on end of stream before the first byte, else its length. */
    private long readFully(MemorySegment buf, List<Integer> fds, int firstMillis, int restMillis, String what) {
        long got = 0;
        boolean first = what.equals("header");
        while (got < buf.byteSize()) {
            boolean begin = got == 0 && first;
            int timeout = begin ? firstMillis
                    : restMillis < 0 ? -1 : (int) Math.max(0, (restDeadline - System.nanoTime()) / 1_000_000L);
            if (LibC.pollOne(socket.fd(), LibC.POLLIN, timeout) == 0) {
                if (begin) {
                    throw new VhostUserException("no message from " + peer + " within " + timeout + " ms");
                }
                throw new VhostUserFramingException("only " + got + " of " + buf.byteSize() + " bytes of the " + what + " from "
                        + peer + " arrived within " + restMillis + " ms of the message's first byte: " + (first ? "a truncated header"
                        : "the size field promises more than was sent"));
            }
            if (begin) {
                restDeadline = System.nanoTime() + restMillis * 1_000_000L;
            }
            UnixSocket.Received r;
            try {
                r = socket.receive(buf.asSlice(got), FD_ROOM);
            } catch (LinuxException e) {
                throw new VhostUserException("reading from " + peer + " failed: " + e.errnoName(), e);
            }
            for (int fd : r.fds()) {
                fds.add(fd);
            }
            if (r.fdsTruncated()) {
                throw new VhostUserFramingException(peer + " passed more than " + FD_ROOM
                        + " descriptors with one message; the kernel dropped the rest");
            }
            if (r.bytes() == 0) {
                if (got == 0 && what.equals("header") && fds.isEmpty()) {
                    return 0;
                }
                throw new VhostUserFramingException(peer + " closed the connection after " + got + " of " + buf.byteSize()
                        + " bytes of the " + what + ": truncated message");
            }
            got += r.bytes();
        }
        return got;
    }

    /** Wakes a thread blocked in {@link #receive} (it sees end of stream) without closing the descriptor. */
    public void shutdown() {
        try {
            LibC.shutdown(socket.fd(), 2);
        } catch (LinuxException ignored) {
            // already disconnected
        }
    }

    @Override
    public void close() {
        socket.close();
    }
}
