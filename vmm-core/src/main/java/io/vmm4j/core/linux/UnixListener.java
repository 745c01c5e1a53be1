package io.vmm4j.core.linux;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Objects;

/**
 * A listening AF_UNIX stream socket at a filesystem path. It never deletes what it did not create:
 * binding replaces only a stale socket (one nobody listens on), and closing removes the path only
 * while it is still the socket bound here.
 */
public final class UnixListener implements AutoCloseable {
    /** stat(2)'s file type bits and the socket type (sys/stat.h: S_IFMT, S_IFSOCK). */
    private static final int S_IFMT = 0170000;
    private static final int S_IFSOCK = 0140000;

    private final int fd;
    private final Path path;
    /** The (device, inode) of the socket file bind created; null if it could not be read (then it is never removed). */
    private final Object boundFile;
    private volatile boolean closed;

    private UnixListener(int fd, Path path, Object boundFile) {
        this.fd = fd;
        this.path = path;
        this.boundFile = boundFile;
    }

    /**
     * Binds and listens at {@code path}. Nothing there: bound. A socket nobody listens on (left by a
     * process that died): replaced. A socket a server listens on, or anything that is not a socket
     * (a file, a directory, a symbolic link): refused, and left as it is.
     *
     * @throws SocketPathException whose message starts with the path, says what is wrong and what to do
     */
    public static UnixListener bind(Path path) {
        String name = path.toString();
        int bytes = name.getBytes(StandardCharsets.UTF_8).length;
        if (bytes >= LibC.SUN_PATH_MAX) {
            // unix(7): sun_path holds 108 bytes with the terminating NUL
            throw new SocketPathException(name + " is " + bytes + " bytes, longer than a UNIX socket path may be ("
                    + (LibC.SUN_PATH_MAX - 1) + "); choose a shorter path");
        }
        Path dir = path.toAbsolutePath().getParent();
        if (dir != null && !Files.isDirectory(dir)) {
            throw new SocketPathException(name + ": " + (Files.exists(dir) ? dir + " is not a directory" : "directory " + dir
                    + " does not exist") + "; create it or choose a path in an existing directory");
        }
        clearStaleSocket(path);
        int fd = LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC);
        try (Arena arena = Arena.ofConfined()) {
            try {
                LibC.bind(fd, UnixSocket.sockaddr(arena, path), "path=" + path);
            } catch (LinuxException e) {
                throw new SocketPathException(name + ": " + switch (e.errno()) {
                    case Errno.EADDRINUSE -> "something was created there while this socket was being bound (another server "
                            + "starting at the same moment?); choose another path";
                    case Errno.EACCES, Errno.EPERM -> "no permission to create a socket in " + dir + "; choose a writable directory";
                    default -> "cannot bind a socket there: " + e.errnoName() + " (" + Errno.describe(e.errno()) + ")";
                }, e);
            }
            Object boundFile = fileKey(path);
            LibC.listen(fd, 8);
            return new UnixListener(fd, path, boundFile);
        } catch (RuntimeException e) {
            LibC.closeQuietly(fd);
            throw e;
        }
    }

    /** Removes a socket at {@code path} that nobody listens on; refuses anything else that is there. */
    private static void clearStaleSocket(Path path) {
        String name = path.toString();
        BasicFileAttributes attributes;
        int mode;
        try {
            attributes = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            mode = (Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException free) {
            return;
        } catch (IOException e) {
            throw new SocketPathException(name + ": cannot look at what is there: " + e.getMessage(), e);
        }
        if (attributes.isDirectory()) {
            throw new SocketPathException(name + " is a directory, not a socket; give a file path for the socket, such as "
                    + path.resolve("vu.sock"));
        }
        if (attributes.isSymbolicLink()) {
            throw new SocketPathException(name + " is a symbolic link, not a socket (a socket path is never followed); remove it "
                    + "or choose another path");
        }
        if ((mode & S_IFMT) != S_IFSOCK) {
            throw new SocketPathException(name + " exists and is " + (attributes.isRegularFile() ? "a regular file" : "not a socket")
                    + "; it is left alone: remove it or choose another path");
        }
        int probe = LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_NONBLOCK | LibC.SOCK_CLOEXEC);
        try (Arena arena = Arena.ofConfined()) {
            // non-blocking: a live server with a full backlog answers EAGAIN instead of holding us
            LibC.connect(probe, UnixSocket.sockaddr(arena, path), "path=" + path);
            throw live(name);
        } catch (LinuxException e) {
            switch (e.errno()) {
                case Errno.EAGAIN -> throw live(name);
                case Errno.ECONNREFUSED -> LibC.unlink(name); // unix(7): nobody has it bound and listening: stale
                case Errno.ENOENT -> { } // removed meanwhile: the path is free
                default -> throw new SocketPathException(name + ": cannot tell whether a server listens there (connect: "
                        + e.errnoName() + "); remove it or choose another path", e);
            }
        } finally {
            LibC.closeQuietly(probe);
        }
    }

    private static SocketPathException live(String name) {
        return new SocketPathException(name + " is in use: a server is listening there (another back-end, or a QEMU?); stop it "
                + "or choose another path");
    }

    /** The file's (device, inode), or null if it cannot be read. */
    private static Object fileKey(Path path) {
        try {
            return Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
        } catch (IOException e) {
            return null;
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
            // another server may have replaced a path it thought stale: remove only our own socket file
            if (boundFile != null && Objects.equals(boundFile, fileKey(path))) {
                LibC.unlink(path.toString());
            }
        }
    }
}
