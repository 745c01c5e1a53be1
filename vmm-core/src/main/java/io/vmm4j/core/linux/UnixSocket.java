package io.vmm4j.core.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * A connected AF_UNIX stream socket that can carry file descriptors (SCM_RIGHTS), the way
 * vhost-user passes memfds and eventfds. Not thread-safe: one sender and one receiver at a time.
 */
public final class UnixSocket implements AutoCloseable {
    /** Linux caps SCM_RIGHTS at 253 fds per message (SCM_MAX_FD). */
    public static final int MAX_FDS = 253;
    private static final VarHandle CMSG_LEN = LibC.CMSGHDR.varHandle(groupElement("cmsg_len"));
    private static final VarHandle CMSG_LEVEL = LibC.CMSGHDR.varHandle(groupElement("cmsg_level"));
    private static final VarHandle CMSG_TYPE = LibC.CMSGHDR.varHandle(groupElement("cmsg_type"));

    private final int fd;
    private volatile boolean closed;

    private UnixSocket(int fd) {
        this.fd = fd;
    }

    /** Wraps an fd the caller hands over (it is closed with this socket). */
    public static UnixSocket adopt(int fd) {
        return new UnixSocket(fd);
    }

    /** A connected pair, both ends close-on-exec. */
    public static UnixSocket[] pair() {
        int[] fds = LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC);
        return new UnixSocket[] {new UnixSocket(fds[0]), new UnixSocket(fds[1])};
    }

    /** Connects to a listening socket at {@code path}. */
    public static UnixSocket connect(Path path) {
        int fd = LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC);
        try (Arena arena = Arena.ofConfined()) {
            LibC.connect(fd, sockaddr(arena, path), "path=" + path);
            return new UnixSocket(fd);
        } catch (RuntimeException e) {
            LibC.closeQuietly(fd);
            throw e;
        }
    }

    /** Builds a {@code struct sockaddr_un} for a filesystem path. */
    static MemorySegment sockaddr(Arena arena, Path path) {
        byte[] name = path.toString().getBytes(StandardCharsets.UTF_8);
        if (name.length >= LibC.SUN_PATH_MAX) {
            throw new IllegalArgumentException("UNIX socket path is " + name.length + " bytes, the limit is "
                    + (LibC.SUN_PATH_MAX - 1) + ": use a shorter path: " + path);
        }
        MemorySegment addr = arena.allocate(LibC.SOCKADDR_UN_SIZE, 2);
        addr.set(JAVA_SHORT, 0, (short) LibC.AF_UNIX);
        MemorySegment.copy(name, 0, addr, java.lang.foreign.ValueLayout.JAVA_BYTE, 2, name.length);
        return addr;
    }

    public int fd() {
        return fd;
    }

    /**
     * Sends all of {@code data}; the fds ride on the first sendmsg, as SCM_RIGHTS ancillary data.
     * Blocks for as long as the peer leaves its receive queue full.
     */
    public void send(MemorySegment data, int... fds) {
        sendWithin(data, -1, fds);
    }

    /**
     * Sends all of {@code data} (fds on the first sendmsg) within {@code timeoutMillis} (-1: no limit),
     * so a peer that never reads cannot hold the sender for ever. Each sendmsg is MSG_DONTWAIT, a
     * per-call flag: the socket's own O_NONBLOCK is left alone.
     *
     * @throws LinuxException EAGAIN if the peer left no room for {@code timeoutMillis}; EPIPE or
     *                        ECONNRESET if it has gone
     */
    public void sendWithin(MemorySegment data, int timeoutMillis, int... fds) {
        if (fds.length > MAX_FDS) {
            throw new IllegalArgumentException("cannot pass " + fds.length + " fds in one message; Linux allows " + MAX_FDS);
        }
        long deadline = timeoutMillis < 0 ? 0 : System.nanoTime() + timeoutMillis * 1_000_000L;
        int flags = LibC.MSG_NOSIGNAL | (timeoutMillis < 0 ? 0 : LibC.MSG_DONTWAIT);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment iov = arena.allocate(LibC.IOVEC);
            MemorySegment msg = arena.allocate(LibC.MSGHDR);
            long sent = 0;
            boolean fdsPending = fds.length > 0;
            do {
                MemorySegment rest = data.asSlice(sent);
                LibC.setIovec(iov, 0, rest);
                msg.fill((byte) 0);
                msg.set(ADDRESS, LibC.MSGHDR.byteOffset(groupElement("msg_iov")), iov);
                msg.set(JAVA_LONG, LibC.MSGHDR.byteOffset(groupElement("msg_iovlen")), 1L);
                if (fdsPending) {
                    long space = cmsgSpace(fds.length);
                    MemorySegment control = arena.allocate(space, 8);
                    CMSG_LEN.set(control, 0L, LibC.CMSG_HEADER + 4L * fds.length);
                    CMSG_LEVEL.set(control, 0L, LibC.SOL_SOCKET);
                    CMSG_TYPE.set(control, 0L, LibC.SCM_RIGHTS);
                    for (int i = 0; i < fds.length; i++) {
                        control.set(JAVA_INT, LibC.CMSG_HEADER + 4L * i, fds[i]);
                    }
                    msg.set(ADDRESS, LibC.MSGHDR.byteOffset(groupElement("msg_control")), control);
                    msg.set(JAVA_LONG, LibC.MSGHDR.byteOffset(groupElement("msg_controllen")), space);
                }
                long r = LibC.sendmsgRaw(fd, msg, flags);
                if (r == -Errno.EINTR) {
                    continue;
                }
                if (r == -Errno.EAGAIN && timeoutMillis >= 0) {
                    long left = (deadline - System.nanoTime()) / 1_000_000L;
                    if (left > 0 && LibC.pollOne(fd, LibC.POLLOUT, (int) Math.min(left, Integer.MAX_VALUE)) != 0) {
                        continue;
                    }
                    throw new LinuxException("sendmsg", Errno.EAGAIN, "fd=" + fd + ", " + sent + " of " + data.byteSize()
                            + " bytes sent, the peer read nothing for " + timeoutMillis + " ms");
                }
                LibC.check(r, "sendmsg", "fd=" + fd + ", bytes=" + rest.byteSize() + ", fds=" + (fdsPending ? fds.length : 0));
                fdsPending = false;
                sent += r;
            } while (sent < data.byteSize());
        }
    }

    /** What one {@link #receive} call got. {@code fdsTruncated}: the sender passed more fds than room was given (the kernel closed the rest). */
    public record Received(long bytes, int[] fds, boolean fdsTruncated) {
        /** The peer closed the connection. */
        public boolean endOfStream() {
            return bytes == 0 && fds.length == 0;
        }
    }

    /**
     * One recvmsg into {@code buf}, accepting up to {@code maxFds} descriptors (received close-on-exec).
     * May return fewer bytes than {@code buf} holds.
     */
    public Received receive(MemorySegment buf, int maxFds) {
        if (maxFds < 0 || maxFds > MAX_FDS) {
            throw new IllegalArgumentException("maxFds must be 0.." + MAX_FDS + ", was " + maxFds);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment iov = arena.allocate(LibC.IOVEC);
            LibC.setIovec(iov, 0, buf);
            MemorySegment msg = arena.allocate(LibC.MSGHDR);
            msg.set(ADDRESS, LibC.MSGHDR.byteOffset(groupElement("msg_iov")), iov);
            msg.set(JAVA_LONG, LibC.MSGHDR.byteOffset(groupElement("msg_iovlen")), 1L);
            long space = cmsgSpace(Math.max(maxFds, 1));
            MemorySegment control = arena.allocate(space, 8);
            msg.set(ADDRESS, LibC.MSGHDR.byteOffset(groupElement("msg_control")), control);
            msg.set(JAVA_LONG, LibC.MSGHDR.byteOffset(groupElement("msg_controllen")), maxFds == 0 ? 0L : space);
            long r;
            do {
                r = LibC.recvmsgRaw(fd, msg, LibC.MSG_CMSG_CLOEXEC);
            } while (r == -Errno.EINTR);
            LibC.check(r, "recvmsg", "fd=" + fd + ", capacity=" + buf.byteSize());
            int flags = msg.get(JAVA_INT, LibC.MSGHDR.byteOffset(groupElement("msg_flags")));
            long controlLen = msg.get(JAVA_LONG, LibC.MSGHDR.byteOffset(groupElement("msg_controllen")));
            int[] fds = new int[0];
            if (controlLen >= LibC.CMSG_HEADER) {
                long cmsgLen = (long) CMSG_LEN.get(control, 0L);
                int level = (int) CMSG_LEVEL.get(control, 0L);
                int type = (int) CMSG_TYPE.get(control, 0L);
                if (level == LibC.SOL_SOCKET && type == LibC.SCM_RIGHTS && cmsgLen >= LibC.CMSG_HEADER) {
                    int count = (int) ((Math.min(cmsgLen, controlLen) - LibC.CMSG_HEADER) / 4);
                    fds = new int[count];
                    for (int i = 0; i < count; i++) {
                        fds[i] = control.get(JAVA_INT, LibC.CMSG_HEADER + 4L * i);
                    }
                }
            }
            return new Received(r, fds, (flags & LibC.MSG_CTRUNC) != 0);
        }
    }

    /** Reads exactly {@code buf.byteSize()} bytes, or fewer if the peer closed; fds are not accepted. */
    public long receiveFully(MemorySegment buf) {
        long got = 0;
        while (got < buf.byteSize()) {
            Received r = receive(buf.asSlice(got), 0);
            if (r.bytes() == 0) {
                break;
            }
            got += r.bytes();
        }
        return got;
    }

    /** {@code CMSG_SPACE(4 * n)}: header plus data, rounded up to 8. */
    static long cmsgSpace(int fdCount) {
        return LibC.CMSG_HEADER + ((4L * fdCount + 7) & ~7L);
    }

    private static java.lang.foreign.MemoryLayout.PathElement groupElement(String name) {
        return java.lang.foreign.MemoryLayout.PathElement.groupElement(name);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            LibC.closeQuietly(fd);
        }
    }
}
