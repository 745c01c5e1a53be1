package io.vmm4j.core.linux;

import java.lang.foreign.Arena;
import java.nio.file.Path;

/** A listening AF_UNIX stream socket at a filesystem path; the path is removed on close. */
public final class UnixListener implements AutoCloseable {
    private final int fd;
    private final Path path;
    private volatile boolean closed;

    private UnixListener(int fd, Path path) {
        this.fd = fd;
        this.path = path;
    }

    /** Binds and listens at {@code path}, replacing a stale socket file left by a dead process. */
    public static UnixListener bind(Path path) {
        LibC.unlink(path.toString());
        int fd = LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC);
        try (Arena arena = Arena.ofConfined()) {
            LibC.bind(fd, UnixSocket.sockaddr(arena, path), "path=" + path);
            LibC.listen(fd, 8);
            return new UnixListener(fd, path);
        } catch (RuntimeException e) {
            LibC.closeQuietly(fd);
            throw e;
        }
    }

    public int fd() {
        return fd;
    }

    public Path path() {
        return path;
    }

    /** Blocks until a peer connects. */
    public UnixSocket accept() {
        int r;
        do {
            r = LibC.acceptRaw(fd, LibC.SOCK_CLOEXEC);
        } while (r == -Errno.EINTR);
        LibC.check(r, "accept4", "path=" + path);
        return UnixSocket.adopt(r);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            // shutdown wakes a thread blocked in accept()
            try {
                LibC.shutdown(fd, 2);
            } catch (LinuxException ignored) {
                // not connected: nothing to wake
            }
            LibC.closeQuietly(fd);
            LibC.unlink(path.toString());
        }
    }
}
