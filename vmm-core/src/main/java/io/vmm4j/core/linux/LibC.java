package io.vmm4j.core.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The C library calls vmm4j needs, bound through the FFM API (no JNI).
 *
 * <p>Every call that can fail captures {@code errno} with the linker's call-state capture. The
 * plain methods throw {@link LinuxException} naming the call, the errno symbol and the arguments;
 * the {@code raw} variants return {@code -errno} instead, for hot paths where EAGAIN is normal.
 * Constants are the Linux x86-64 values; {@code LinuxConstantsTest} checks them against the
 * system headers with gcc.
 */
public final class LibC {
    // fcntl.h / asm-generic/fcntl.h
    public static final int O_RDONLY = 0;
    public static final int O_WRONLY = 1;
    public static final int O_RDWR = 2;
    public static final int O_NONBLOCK = 0x800;
    public static final int O_CLOEXEC = 0x80000;
    public static final int F_GETFD = 1;
    public static final int F_SETFD = 2;
    public static final int F_GETFL = 3;
    public static final int F_SETFL = 4;
    public static final int FD_CLOEXEC = 1;
    // linux/fcntl.h: file seals (memfd)
    public static final int F_ADD_SEALS = 1033;
    public static final int F_GET_SEALS = 1034;
    public static final int F_SEAL_SEAL = 0x1;
    public static final int F_SEAL_SHRINK = 0x2;
    public static final int F_SEAL_GROW = 0x4;
    // sys/eventfd.h
    public static final int EFD_NONBLOCK = O_NONBLOCK;
    public static final int EFD_CLOEXEC = O_CLOEXEC;
    // linux/memfd.h
    public static final int MFD_CLOEXEC = 1;
    public static final int MFD_ALLOW_SEALING = 2;
    // sys/mman.h
    public static final int PROT_NONE = 0;
    public static final int PROT_READ = 1;
    public static final int PROT_WRITE = 2;
    public static final int MAP_SHARED = 1;
    public static final int MAP_PRIVATE = 2;
    public static final int MAP_ANONYMOUS = 0x20;
    public static final int MAP_NORESERVE = 0x4000;
    // sys/epoll.h
    public static final int EPOLL_CLOEXEC = O_CLOEXEC;
    public static final int EPOLL_CTL_ADD = 1;
    public static final int EPOLL_CTL_DEL = 2;
    public static final int EPOLL_CTL_MOD = 3;
    public static final int EPOLLIN = 0x001;
    public static final int EPOLLOUT = 0x004;
    public static final int EPOLLERR = 0x008;
    public static final int EPOLLHUP = 0x010;
    public static final int EPOLLRDHUP = 0x2000;
    public static final int EPOLLET = 1 << 31;
    // poll.h
    public static final short POLLIN = 0x001;
    public static final short POLLOUT = 0x004;
    // sys/socket.h
    public static final int AF_UNIX = 1;
    public static final int SOCK_STREAM = 1;
    public static final int SOCK_DGRAM = 2;
    public static final int SOCK_SEQPACKET = 5;
    public static final int SOCK_NONBLOCK = O_NONBLOCK;
    public static final int SOCK_CLOEXEC = O_CLOEXEC;
    public static final int SOL_SOCKET = 1;
    public static final int SCM_RIGHTS = 1;
    public static final int MSG_DONTWAIT = 0x40;
    public static final int MSG_NOSIGNAL = 0x4000;
    public static final int MSG_CTRUNC = 0x08;
    public static final int MSG_TRUNC = 0x20;
    public static final int MSG_CMSG_CLOEXEC = 0x40000000;
    // linux/fs.h: per-call flags of preadv2/pwritev2
    public static final int RWF_NOWAIT = 0x8;
    // signal.h, sys/wait.h
    public static final int SIGKILL = 9;
    public static final int SIGTERM = 15;
    public static final int WNOHANG = 1;

    /** glibc's {@code struct sigaction} on x86-64: handler, 128-byte sa_mask, sa_flags, sa_restorer. */
    public static final long SIGACTION_SIZE = 152;
    public static final long SIGACTION_FLAGS_OFFSET = 136;

    /**
     * {@code struct iovec} (sys/uio.h): base and length. iov_base, a pointer, is held as a 64-bit
     * host address (x86-64), so the data path fills iovecs from guest-memory host addresses without
     * a MemorySegment per buffer; {@link #setIovec} and friends access an array of them by name.
     */
    public static final StructLayout IOVEC = MemoryLayout.structLayout(
            JAVA_LONG.withName("iov_base"), JAVA_LONG.withName("iov_len"));
    /** Coordinates (array, 0L, index): a field of element index of an iovec array. */
    private static final VarHandle IOV_BASE = IOVEC.arrayElementVarHandle(MemoryLayout.PathElement.groupElement("iov_base"));
    private static final VarHandle IOV_LEN = IOVEC.arrayElementVarHandle(MemoryLayout.PathElement.groupElement("iov_len"));
    /** {@code struct epoll_event} is packed on x86-64: 4-byte events, then the 8-byte data at offset 4. */
    public static final StructLayout EPOLL_EVENT = MemoryLayout.structLayout(
            JAVA_INT.withName("events"), ValueLayout.JAVA_LONG_UNALIGNED.withName("data"));
    /** {@code struct msghdr}. */
    public static final StructLayout MSGHDR = MemoryLayout.structLayout(
            ADDRESS.withName("msg_name"), JAVA_INT.withName("msg_namelen"), MemoryLayout.paddingLayout(4),
            ADDRESS.withName("msg_iov"), JAVA_LONG.withName("msg_iovlen"),
            ADDRESS.withName("msg_control"), JAVA_LONG.withName("msg_controllen"),
            JAVA_INT.withName("msg_flags"), MemoryLayout.paddingLayout(4));
    /** {@code struct cmsghdr} (sys/socket.h): cmsg_len (size_t), cmsg_level, cmsg_type; the data follows it. */
    public static final StructLayout CMSGHDR = MemoryLayout.structLayout(
            JAVA_LONG.withName("cmsg_len"), JAVA_INT.withName("cmsg_level"), JAVA_INT.withName("cmsg_type"));
    /** {@code sizeof(struct cmsghdr)}: where CMSG_DATA starts in an aligned control message. */
    public static final long CMSG_HEADER = 16;
    /** {@code struct sockaddr_un}: family and a 108-byte path. */
    public static final long SOCKADDR_UN_SIZE = 110;
    public static final int SUN_PATH_MAX = 108;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LOOKUP = LINKER.defaultLookup();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final ThreadLocal<MemorySegment> STATE =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CALL_STATE));

    private static final MethodHandle OPEN = errnoCall("open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle CLOSE = errnoCall("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle READ = errnoCall("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle WRITE = errnoCall("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    /** write(2) with the buffer as a raw address (x86-64 SysV passes a pointer as a 64-bit integer): no segment to make per call. */
    private static final MethodHandle WRITE_AT = errnoCall("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle READV = errnoCall("readv", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle WRITEV = errnoCall("writev", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle IOCTL_PTR = errnoCall("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle IOCTL_LONG = errnoCall("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle FCNTL = errnoCall("fcntl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle EVENTFD = errnoCall("eventfd", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle MEMFD_CREATE = errnoCall("memfd_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle FTRUNCATE = errnoCall("ftruncate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle MMAP = errnoCall("mmap",
            FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle MUNMAP = errnoCall("munmap", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle EPOLL_CREATE1 = errnoCall("epoll_create1", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle EPOLL_CTL = errnoCall("epoll_ctl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle EPOLL_WAIT = errnoCall("epoll_wait",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    private static final MethodHandle POLL = errnoCall("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle PREADV2 = errnoCall("preadv2",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_INT));
    private static final MethodHandle SOCKETPAIR = errnoCall("socketpair",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle SOCKET = errnoCall("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle CONNECT = errnoCall("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle BIND = errnoCall("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle LISTEN = errnoCall("listen", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle ACCEPT4 = errnoCall("accept4",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
    private static final MethodHandle SENDMSG = errnoCall("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle RECVMSG = errnoCall("recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SHUTDOWN = errnoCall("shutdown", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle UNLINK = errnoCall("unlink", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle WAITPID = errnoCall("waitpid", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle KILL = errnoCall("kill", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle GETPID = plainCall("getpid", FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle GETTID = plainCall("gettid", FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle STRERROR = plainCall("strerror", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    private static final MethodHandle SIGACTION = errnoCall("sigaction", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle SIGRTMIN = plainCall("__libc_current_sigrtmin", FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle PTHREAD_SELF = plainCall("pthread_self", FunctionDescriptor.of(JAVA_LONG));
    // pthread_kill returns an error number instead of setting errno.
    private static final MethodHandle PTHREAD_KILL = plainCall("pthread_kill", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT));
    // posix_spawn family returns an error number instead of setting errno.
    private static final MethodHandle SPAWN = plainCall("posix_spawn",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    private static final MethodHandle SPAWN_FA_INIT = plainCall("posix_spawn_file_actions_init",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle SPAWN_FA_DUP2 = plainCall("posix_spawn_file_actions_adddup2",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    private static final MethodHandle SPAWN_FA_DESTROY = plainCall("posix_spawn_file_actions_destroy",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));

    /** glibc's posix_spawn_file_actions_t is 80 bytes on x86-64; room to spare. */
    static final long SPAWN_FILE_ACTIONS_SIZE = 128;

    private LibC() {
    }

    /** A downcall to libc's {@code name} that captures errno into the call-state segment passed first (IoUring uses it too). */
    static MethodHandle errnoCall(String name, FunctionDescriptor descriptor, Linker.Option... extra) {
        Linker.Option[] options = new Linker.Option[extra.length + 1];
        options[0] = Linker.Option.captureCallState("errno");
        System.arraycopy(extra, 0, options, 1, extra.length);
        return LINKER.downcallHandle(symbol(name), descriptor, options);
    }

    private static MethodHandle plainCall(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(symbol(name), descriptor);
    }

    private static MemorySegment symbol(String name) {
        return LOOKUP.find(name).orElseThrow(() -> new UnsatisfiedLinkError("libc has no symbol " + name));
    }

    /** This thread's call-state segment for {@link #errnoCall} handles. */
    static MemorySegment callState() {
        return STATE.get();
    }

    static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    /** Throws a {@link LinuxException} for a negative-errno result, else returns it. */
    public static long check(long result, String call, String detail) {
        if (result < 0) {
            throw new LinuxException(call, (int) -result, detail);
        }
        return result;
    }

    static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    // ---- raw calls: return the result, or -errno ----

    private static int rawInt(int result, MemorySegment state) {
        return result < 0 ? -errno(state) : result;
    }

    public static long readRaw(int fd, MemorySegment buf, long len) {
        MemorySegment state = STATE.get();
        try {
            long r = (long) READ.invokeExact(state, fd, buf, len);
            return r < 0 ? -errno(state) : r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static long writeRaw(int fd, MemorySegment buf, long len) {
        MemorySegment state = STATE.get();
        try {
            long r = (long) WRITE.invokeExact(state, fd, buf, len);
            return r < 0 ? -errno(state) : r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * write(2) of {@code len} bytes at native address {@code address} (memory the caller keeps mapped,
     * such as guest memory); returns bytes or -errno. For one buffer it is writev's path without the
     * iovec array the kernel would copy in and check.
     */
    public static long writeAtRaw(int fd, long address, long len) {
        MemorySegment state = STATE.get();
        try {
            long r = (long) WRITE_AT.invokeExact(state, fd, address, len);
            return r < 0 ? -errno(state) : r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** readv(2) over {@code count} {@link #IOVEC}s; returns bytes or -errno. */
    public static long readvRaw(int fd, MemorySegment iov, int count) {
        MemorySegment state = STATE.get();
        try {
            long r = (long) READV.invokeExact(state, fd, iov, count);
            return r < 0 ? -errno(state) : r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Sets element {@code index} of the iovec array {@code iov} to {@code length} bytes at host address {@code base}. */
    public static void setIovec(MemorySegment iov, long index, long base, long length) {
        IOV_BASE.set(iov, 0L, index, base);
        IOV_LEN.set(iov, 0L, index, length);
    }

    /** Sets element {@code index} of the iovec array {@code iov} to the whole of {@code buffer}, which must be native memory. */
    public static void setIovec(MemorySegment iov, long index, MemorySegment buffer) {
        if (!buffer.isNative()) {
            throw new IllegalArgumentException("an iovec needs native memory, not a heap segment: " + buffer);
        }
        setIovec(iov, index, buffer.address(), buffer.byteSize());
    }

    /** iov_base of element {@code index} of the iovec array {@code iov}: a host address. */
    public static long iovecBase(MemorySegment iov, long index) {
        return (long) IOV_BASE.get(iov, 0L, index);
    }

    /** iov_len of element {@code index} of the iovec array {@code iov}. */
    public static long iovecLength(MemorySegment iov, long index) {
        return (long) IOV_LEN.get(iov, 0L, index);
    }

    /** writev(2) over {@code count} {@link #IOVEC}s; returns bytes or -errno. */
    public static long writevRaw(int fd, MemorySegment iov, int count) {
        MemorySegment state = STATE.get();
        try {
            long r = (long) WRITEV.invokeExact(state, fd, iov, count);
            return r < 0 ? -errno(state) : r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int ioctlRaw(int fd, long request, MemorySegment arg) {
        MemorySegment state = STATE.get();
        try {
            return rawInt((int) IOCTL_PTR.invokeExact(state, fd, request, arg), state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int ioctlRaw(int fd, long request, long arg) {
        MemorySegment state = STATE.get();
        try {
            return rawInt((int) IOCTL_LONG.invokeExact(state, fd, request, arg), state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * preadv2(2) at the file's current position (offset -1) with per-call {@code flags}; returns bytes or -errno.
     * With {@link #RWF_NOWAIT} one read does not block (EAGAIN instead) while the open file description's
     * O_NONBLOCK, which every holder of a passed descriptor shares, stays as its owner set it.
     */
    public static long preadv2Raw(int fd, MemorySegment iov, int count, int flags) {
        MemorySegment state = STATE.get();
        try {
            long r = (long) PREADV2.invokeExact(state, fd, iov, count, -1L, flags);
            return r < 0 ? -errno(state) : r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** poll(2) over {@code count} caller-owned {@code struct pollfd}s (8 bytes each); returns the ready count or -errno. */
    public static int pollRaw(MemorySegment pollfds, long count, int timeoutMillis) {
        MemorySegment state = STATE.get();
        try {
            return rawInt((int) POLL.invokeExact(state, pollfds, count, timeoutMillis), state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int epollWaitRaw(int epfd, MemorySegment events, int maxEvents, int timeoutMillis) {
        MemorySegment state = STATE.get();
        try {
            return rawInt((int) EPOLL_WAIT.invokeExact(state, epfd, events, maxEvents, timeoutMillis), state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static long sendmsgRaw(int fd, MemorySegment msghdr, int flags) {
        MemorySegment state = STATE.get();
        try {
            long r = (long) SENDMSG.invokeExact(state, fd, msghdr, flags);
            return r < 0 ? -errno(state) : r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static long recvmsgRaw(int fd, MemorySegment msghdr, int flags) {
        MemorySegment state = STATE.get();
        try {
            long r = (long) RECVMSG.invokeExact(state, fd, msghdr, flags);
            return r < 0 ? -errno(state) : r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- checked calls: throw LinuxException ----

    public static int open(String path, int flags) {
        MemorySegment state = STATE.get();
        try (Arena arena = Arena.ofConfined()) {
            int r = (int) OPEN.invokeExact(state, arena.allocateFrom(path), flags, 0);
            if (r < 0) {
                throw new LinuxException("open", errno(state), path);
            }
            return r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void close(int fd) {
        MemorySegment state = STATE.get();
        try {
            int r = (int) CLOSE.invokeExact(state, fd);
            if (r < 0) {
                throw new LinuxException("close", errno(state), "fd=" + fd);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Closes and ignores failure: for cleanup paths where the first error is the one to report. */
    public static void closeQuietly(int fd) {
        if (fd >= 0) {
            try {
                close(fd);
            } catch (LinuxException ignored) {
                // already reporting another failure, or the fd is gone
            }
        }
    }

    public static long read(int fd, MemorySegment buf, long len) {
        return check(readRaw(fd, buf, len), "read", "fd=" + fd + ", len=" + len);
    }

    public static long write(int fd, MemorySegment buf, long len) {
        return check(writeRaw(fd, buf, len), "write", "fd=" + fd + ", len=" + len);
    }

    public static long readv(int fd, MemorySegment iov, int count) {
        return check(readvRaw(fd, iov, count), "readv", "fd=" + fd + ", iovcnt=" + count);
    }

    public static long writev(int fd, MemorySegment iov, int count) {
        return check(writevRaw(fd, iov, count), "writev", "fd=" + fd + ", iovcnt=" + count);
    }

    /** ioctl with a pointer argument; {@code name} is the request's symbol, for the error message. */
    public static int ioctl(int fd, long request, MemorySegment arg, String name) {
        return (int) check(ioctlRaw(fd, request, arg), "ioctl", "fd=" + fd + ", " + name);
    }

    /** ioctl with an integer argument; {@code name} is the request's symbol, for the error message. */
    public static int ioctl(int fd, long request, long arg, String name) {
        return (int) check(ioctlRaw(fd, request, arg), "ioctl", "fd=" + fd + ", " + name + ", arg=" + arg);
    }

    public static int fcntl(int fd, int cmd, int arg) {
        MemorySegment state = STATE.get();
        try {
            int r = (int) FCNTL.invokeExact(state, fd, cmd, arg);
            if (r < 0) {
                throw new LinuxException("fcntl", errno(state), "fd=" + fd + ", cmd=" + cmd + ", arg=" + arg);
            }
            return r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int eventfd(int initval, int flags) {
        MemorySegment state = STATE.get();
        try {
            int r = (int) EVENTFD.invokeExact(state, initval, flags);
            if (r < 0) {
                throw new LinuxException("eventfd", errno(state), "initval=" + initval + ", flags=0x" + Integer.toHexString(flags));
            }
            return r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int memfdCreate(String name, int flags) {
        MemorySegment state = STATE.get();
        try (Arena arena = Arena.ofConfined()) {
            int r = (int) MEMFD_CREATE.invokeExact(state, arena.allocateFrom(name), flags);
            if (r < 0) {
                throw new LinuxException("memfd_create", errno(state), "name=" + name);
            }
            return r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void ftruncate(int fd, long length) {
        MemorySegment state = STATE.get();
        try {
            int r = (int) FTRUNCATE.invokeExact(state, fd, length);
            if (r < 0) {
                throw new LinuxException("ftruncate", errno(state), "fd=" + fd + ", length=" + length);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** mmap(2); the returned segment spans exactly {@code length} bytes and must be released with {@link #munmap}. */
    public static MemorySegment mmap(long length, int prot, int flags, int fd, long offset) {
        MemorySegment state = STATE.get();
        try {
            MemorySegment r = (MemorySegment) MMAP.invokeExact(state, MemorySegment.NULL, length, prot, flags, fd, offset);
            if (r.address() == -1L) {
                throw new LinuxException("mmap", errno(state),
                        "length=" + length + ", prot=" + prot + ", flags=0x" + Integer.toHexString(flags) + ", fd=" + fd + ", offset=" + offset);
            }
            return r.reinterpret(length);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void munmap(MemorySegment mapping) {
        MemorySegment state = STATE.get();
        try {
            int r = (int) MUNMAP.invokeExact(state, mapping, mapping.byteSize());
            if (r < 0) {
                throw new LinuxException("munmap", errno(state),
                        "addr=0x" + Long.toHexString(mapping.address()) + ", length=" + mapping.byteSize());
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int epollCreate() {
        MemorySegment state = STATE.get();
        try {
            int r = (int) EPOLL_CREATE1.invokeExact(state, EPOLL_CLOEXEC);
            if (r < 0) {
                throw new LinuxException("epoll_create1", errno(state), "EPOLL_CLOEXEC");
            }
            return r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** epoll_ctl(2) with a caller-owned {@link #EPOLL_EVENT} (may be NULL for DEL). */
    public static void epollCtl(int epfd, int op, int fd, MemorySegment event) {
        MemorySegment state = STATE.get();
        try {
            int r = (int) EPOLL_CTL.invokeExact(state, epfd, op, fd, event);
            if (r < 0) {
                throw new LinuxException("epoll_ctl", errno(state), "epfd=" + epfd + ", op=" + op + ", fd=" + fd);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** poll(2) on one fd; returns the revents, or 0 on timeout. */
    public static int pollOne(int fd, short events, int timeoutMillis) {
        MemorySegment state = STATE.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pfd = arena.allocate(8, 4);
            pfd.set(JAVA_INT, 0, fd);
            pfd.set(ValueLayout.JAVA_SHORT, 4, events);
            while (true) {
                int r = (int) POLL.invokeExact(state, pfd, 1L, timeoutMillis);
                if (r < 0) {
                    int e = errno(state);
                    if (e == Errno.EINTR) {
                        continue;
                    }
                    throw new LinuxException("poll", e, "fd=" + fd);
                }
                return r == 0 ? 0 : pfd.get(ValueLayout.JAVA_SHORT, 6);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** socketpair(2); returns both ends. */
    public static int[] socketpair(int domain, int type) {
        MemorySegment state = STATE.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sv = arena.allocate(JAVA_INT, 2);
            int r = (int) SOCKETPAIR.invokeExact(state, domain, type, 0, sv);
            if (r < 0) {
                throw new LinuxException("socketpair", errno(state), "domain=" + domain + ", type=0x" + Integer.toHexString(type));
            }
            return new int[] {sv.getAtIndex(JAVA_INT, 0), sv.getAtIndex(JAVA_INT, 1)};
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int socket(int domain, int type) {
        MemorySegment state = STATE.get();
        try {
            int r = (int) SOCKET.invokeExact(state, domain, type, 0);
            if (r < 0) {
                throw new LinuxException("socket", errno(state), "domain=" + domain + ", type=0x" + Integer.toHexString(type));
            }
            return r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void connect(int fd, MemorySegment sockaddr, String what) {
        MemorySegment state = STATE.get();
        try {
            int r = (int) CONNECT.invokeExact(state, fd, sockaddr, (int) sockaddr.byteSize());
            if (r < 0) {
                throw new LinuxException("connect", errno(state), "fd=" + fd + ", " + what);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void bind(int fd, MemorySegment sockaddr, String what) {
        MemorySegment state = STATE.get();
        try {
            int r = (int) BIND.invokeExact(state, fd, sockaddr, (int) sockaddr.byteSize());
            if (r < 0) {
                throw new LinuxException("bind", errno(state), "fd=" + fd + ", " + what);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void listen(int fd, int backlog) {
        MemorySegment state = STATE.get();
        try {
            int r = (int) LISTEN.invokeExact(state, fd, backlog);
            if (r < 0) {
                throw new LinuxException("listen", errno(state), "fd=" + fd);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** accept4(2) without the peer address; returns the new fd or -errno. */
    public static int acceptRaw(int fd, int flags) {
        MemorySegment state = STATE.get();
        try {
            int r = (int) ACCEPT4.invokeExact(state, fd, MemorySegment.NULL, MemorySegment.NULL, flags);
            return r < 0 ? -errno(state) : r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void shutdown(int fd, int how) {
        MemorySegment state = STATE.get();
        try {
            int r = (int) SHUTDOWN.invokeExact(state, fd, how);
            if (r < 0) {
                throw new LinuxException("shutdown", errno(state), "fd=" + fd);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** unlink(2); returns false when the path did not exist. */
    public static boolean unlink(String path) {
        MemorySegment state = STATE.get();
        try (Arena arena = Arena.ofConfined()) {
            int r = (int) UNLINK.invokeExact(state, arena.allocateFrom(path));
            if (r < 0) {
                int e = errno(state);
                if (e == Errno.ENOENT) {
                    return false;
                }
                throw new LinuxException("unlink", e, path);
            }
            return true;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** waitpid(2); returns the raw wait status, or -1 with WNOHANG when the child still runs. */
    public static int waitpid(int pid, int options) {
        MemorySegment state = STATE.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment status = arena.allocate(JAVA_INT);
            while (true) {
                int r = (int) WAITPID.invokeExact(state, pid, status, options);
                if (r < 0) {
                    int e = errno(state);
                    if (e == Errno.EINTR) {
                        continue;
                    }
                    throw new LinuxException("waitpid", e, "pid=" + pid);
                }
                return r == 0 ? -1 : status.get(JAVA_INT, 0);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void kill(int pid, int signal) {
        MemorySegment state = STATE.get();
        try {
            int r = (int) KILL.invokeExact(state, pid, signal);
            if (r < 0) {
                throw new LinuxException("kill", errno(state), "pid=" + pid + ", signal=" + signal);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int getpid() {
        try {
            return (int) GETPID.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int gettid() {
        try {
            return (int) GETTID.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static String strerror(int errno) {
        try {
            MemorySegment s = (MemorySegment) STRERROR.invokeExact(errno);
            return s.reinterpret(256).getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The first real-time signal glibc leaves to applications ({@code SIGRTMIN}). */
    public static int sigrtmin() {
        try {
            return (int) SIGRTMIN.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Installs, for {@code signal}, a handler that does nothing observable, so that the signal
     * only interrupts a blocking system call of the thread it is sent to (the call fails with
     * EINTR; KVM_RUN returns to user space) instead of killing the process. The handler is libc's
     * {@code getpid}: async-signal-safe, and the signal number it is passed in a register is ignored.
     * No SA_RESTART: the interrupted call must return.
     */
    public static void installInterruptOnlyHandler(int signal) {
        MemorySegment state = STATE.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment action = arena.allocate(SIGACTION_SIZE, 8); // zeroed: empty sa_mask, sa_flags 0
            action.set(ADDRESS, 0, symbol("getpid"));
            int r = (int) SIGACTION.invokeExact(state, signal, action, MemorySegment.NULL);
            if (r < 0) {
                throw new LinuxException("sigaction", errno(state), "signal=" + signal);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The calling thread's {@code pthread_t}. */
    public static long pthreadSelf() {
        try {
            return (long) PTHREAD_SELF.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** pthread_kill(3): sends {@code signal} to one thread of this process. */
    public static void pthreadKill(long thread, int signal) {
        int r;
        try {
            r = (int) PTHREAD_KILL.invokeExact(thread, signal);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (r != 0) {
            throw new LinuxException("pthread_kill", r, "thread=0x" + Long.toHexString(thread) + ", signal=" + signal);
        }
    }

    // posix_spawn: used by ChildProcess, which owns the argument marshalling.

    static int spawnFileActionsInit(MemorySegment actions) {
        try {
            return (int) SPAWN_FA_INIT.invokeExact(actions);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static int spawnFileActionsAddDup2(MemorySegment actions, int fd, int newFd) {
        try {
            return (int) SPAWN_FA_DUP2.invokeExact(actions, fd, newFd);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static int spawnFileActionsDestroy(MemorySegment actions) {
        try {
            return (int) SPAWN_FA_DESTROY.invokeExact(actions);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static int spawn(MemorySegment pidOut, MemorySegment path, MemorySegment actions, MemorySegment argv, MemorySegment envp) {
        try {
            return (int) SPAWN.invokeExact(pidOut, path, actions, MemorySegment.NULL, argv, envp);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }
}
