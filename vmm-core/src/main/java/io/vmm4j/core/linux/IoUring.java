package io.vmm4j.core.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.file.Files;
import java.nio.file.Path;

import static java.lang.foreign.MemoryLayout.PathElement.groupElement;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * One io_uring instance (io_uring_setup(2), io_uring_enter(2), through syscall(2) and FFM): a
 * submission ring and a completion ring shared with the kernel, used here to hand the kernel many
 * readv/writev requests with one system call.
 *
 * <p>Use: {@link #queueWritev}/{@link #queueReadv} fill submission entries (SQEs) without a system
 * call; {@link #submitAndWait} publishes them and waits for completions in one io_uring_enter;
 * {@link #completionsReady}, {@link #completionResult}, {@link #completionUserData} read the
 * completion entries (CQEs) and {@link #consumeCompletions} hands their slots back. A completion's
 * result is what the synchronous call would return: bytes moved, or {@code -errno}. Every SQE
 * yields exactly one CQE, and the ring never accepts more requests than the completion ring holds,
 * so completions cannot overflow.
 *
 * <p>Not thread-safe: one thread queues, submits and reaps at a time. Steady state allocates
 * nothing: entries are written in place in the shared mappings. An iovec array must stay valid
 * until its SQE is submitted, the buffers it names until the request completes; reap every request
 * before {@link #close()} (closing cancels requests in flight in the background).
 *
 * <p>Ring protocol (linux/io_uring.h, and io_uring/io_uring.c's comment on the ring layout): the
 * application writes SQEs, then stores the SQ tail with release; the kernel stores the SQ head and
 * the CQ tail with release; the application loads the CQ tail with acquire, reads the CQEs, then
 * stores the CQ head with release. Constants and layouts are the x86-64 values, checked against
 * {@code /usr/include/linux/io_uring.h} and {@code sys/syscall.h} by {@code IoUringTest}.
 */
public final class IoUring implements AutoCloseable {
    // asm/unistd_64.h
    public static final long SYS_IO_URING_SETUP = 425;
    public static final long SYS_IO_URING_ENTER = 426;
    // linux/io_uring.h: io_uring_setup() flags
    public static final int IORING_SETUP_SQPOLL = 1 << 1;
    public static final int IORING_SETUP_SUBMIT_ALL = 1 << 7;
    public static final int IORING_SETUP_COOP_TASKRUN = 1 << 8;
    public static final int IORING_SETUP_SINGLE_ISSUER = 1 << 12;
    public static final int IORING_SETUP_DEFER_TASKRUN = 1 << 13;
    // io_uring_params.features
    public static final int IORING_FEAT_SINGLE_MMAP = 1;
    public static final int IORING_FEAT_NODROP = 1 << 1;
    // io_uring_enter() flags
    public static final int IORING_ENTER_GETEVENTS = 1;
    public static final int IORING_ENTER_SQ_WAKEUP = 1 << 1;
    // sq_ring->flags
    public static final int IORING_SQ_NEED_WAKEUP = 1;
    // enum io_uring_op
    public static final byte IORING_OP_NOP = 0;
    public static final byte IORING_OP_READV = 1;
    public static final byte IORING_OP_WRITEV = 2;
    // mmap(2) offsets of the three shared areas
    public static final long IORING_OFF_SQ_RING = 0L;
    public static final long IORING_OFF_CQ_RING = 0x8000000L;
    public static final long IORING_OFF_SQES = 0x10000000L;
    /** IORING_MAX_ENTRIES (kernel io_uring/io_uring.h, not exported): the most SQ entries io_uring_setup accepts. */
    public static final int MAX_ENTRIES = 32768;
    /** UIO_MAXIOV (linux/uio.h): the most iovecs one readv/writev takes. */
    public static final int UIO_MAXIOV = 1024;
    /** The setup flags this binding handles; others change the ring layout or the submission rules it relies on. */
    public static final int SUPPORTED_SETUP_FLAGS = IORING_SETUP_SQPOLL | IORING_SETUP_SUBMIT_ALL
            | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;

    /** {@code struct io_sqring_offsets}: where each SQ ring field lies in the SQ ring mapping. */
    public static final StructLayout SQRING_OFFSETS = MemoryLayout.structLayout(
            JAVA_INT.withName("head"), JAVA_INT.withName("tail"), JAVA_INT.withName("ring_mask"),
            JAVA_INT.withName("ring_entries"), JAVA_INT.withName("flags"), JAVA_INT.withName("dropped"),
            JAVA_INT.withName("array"), JAVA_INT.withName("resv1"), JAVA_LONG.withName("resv2"));
    /** {@code struct io_cqring_offsets}: where each CQ ring field lies in the CQ ring mapping. */
    public static final StructLayout CQRING_OFFSETS = MemoryLayout.structLayout(
            JAVA_INT.withName("head"), JAVA_INT.withName("tail"), JAVA_INT.withName("ring_mask"),
            JAVA_INT.withName("ring_entries"), JAVA_INT.withName("overflow"), JAVA_INT.withName("cqes"),
            JAVA_INT.withName("flags"), JAVA_INT.withName("resv1"), JAVA_LONG.withName("resv2"));
    /** {@code struct io_uring_params}: passed to io_uring_setup, copied back with the ring geometry. */
    public static final StructLayout PARAMS = MemoryLayout.structLayout(
            JAVA_INT.withName("sq_entries"), JAVA_INT.withName("cq_entries"), JAVA_INT.withName("flags"),
            JAVA_INT.withName("sq_thread_cpu"), JAVA_INT.withName("sq_thread_idle"), JAVA_INT.withName("features"),
            JAVA_INT.withName("wq_fd"), MemoryLayout.sequenceLayout(3, JAVA_INT).withName("resv"),
            SQRING_OFFSETS.withName("sq_off"), CQRING_OFFSETS.withName("cq_off"));
    /**
     * {@code struct io_uring_sqe} (64 bytes), each anonymous union reduced to the member readv/writev
     * use: {@code off}, {@code addr}, {@code rw_flags}, {@code buf_index}, {@code file_index}, {@code addr3}.
     */
    public static final StructLayout SQE = MemoryLayout.structLayout(
            JAVA_BYTE.withName("opcode"), JAVA_BYTE.withName("flags"), JAVA_SHORT.withName("ioprio"),
            JAVA_INT.withName("fd"), JAVA_LONG.withName("off"), JAVA_LONG.withName("addr"), JAVA_INT.withName("len"),
            JAVA_INT.withName("rw_flags"), JAVA_LONG.withName("user_data"), JAVA_SHORT.withName("buf_index"),
            JAVA_SHORT.withName("personality"), JAVA_INT.withName("file_index"), JAVA_LONG.withName("addr3"),
            MemoryLayout.paddingLayout(8));
    /** {@code struct io_uring_cqe} without IORING_SETUP_CQE32 (16 bytes). */
    public static final StructLayout CQE = MemoryLayout.structLayout(
            JAVA_LONG.withName("user_data"), JAVA_INT.withName("res"), JAVA_INT.withName("flags"));

    private static final long SQE_SIZE = SQE.byteSize();
    private static final long CQE_SIZE = CQE.byteSize();
    private static final long SQE_OPCODE = offset(SQE, "opcode");
    private static final long SQE_FLAGS = offset(SQE, "flags");
    private static final long SQE_IOPRIO = offset(SQE, "ioprio");
    private static final long SQE_FD = offset(SQE, "fd");
    private static final long SQE_OFF = offset(SQE, "off");
    private static final long SQE_ADDR = offset(SQE, "addr");
    private static final long SQE_LEN = offset(SQE, "len");
    private static final long SQE_RW_FLAGS = offset(SQE, "rw_flags");
    private static final long SQE_USER_DATA = offset(SQE, "user_data");
    private static final long SQE_BUF_INDEX = offset(SQE, "buf_index");
    private static final long SQE_PERSONALITY = offset(SQE, "personality");
    private static final long SQE_FILE_INDEX = offset(SQE, "file_index");
    private static final long SQE_ADDR3 = offset(SQE, "addr3");
    private static final long SQE_PAD2 = SQE_ADDR3 + 8;
    private static final long CQE_USER_DATA = offset(CQE, "user_data");
    private static final long CQE_RES = offset(CQE, "res");
    private static final long IOVEC_SIZE = LibC.IOVEC.byteSize();
    /** A readv/writev offset of -1: use and advance the file position, as readv(2)/writev(2) do (IORING_FEAT_RW_CUR_POS). */
    private static final long CURRENT_POSITION = -1L;

    /** Plain int accessor with acquire/release modes, coordinates (segment, byte offset): the ring indices. */
    private static final VarHandle RING_INDEX = JAVA_INT.varHandle();

    // long syscall(long number, ...): every variadic argument passed as a long, as glibc's syscall reads them
    private static final MethodHandle SYSCALL_SETUP = LibC.errnoCall("syscall",
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS), Linker.Option.firstVariadicArg(1));
    private static final MethodHandle SYSCALL_ENTER = LibC.errnoCall("syscall",
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_LONG),
            Linker.Option.firstVariadicArg(1));

    private final int ringFd;
    private final int setupFlags;
    private final int features;
    private final boolean sqPoll;
    private final MemorySegment sqRing;
    /** The CQ ring mapping; the same segment as {@link #sqRing} with IORING_FEAT_SINGLE_MMAP. */
    private final MemorySegment cqRing;
    private final MemorySegment sqes;
    private final int sqEntries;
    private final int sqMask;
    private final int cqEntries;
    private final int cqMask;
    private final long sqHeadAt;
    private final long sqTailAt;
    private final long sqFlagsAt;
    private final long cqHeadAt;
    private final long cqTailAt;
    private final long cqesAt;
    /** The next SQ slot to fill; entries before it and at or after the kernel's head are queued or not yet consumed. */
    private int sqTail;
    /** The next CQE to read; what this side last stored as the CQ head. */
    private int cqHead;
    /** The CQ tail seen by the last {@link #completionsReady()}: completions below it may be read. */
    private int cqTailSeen;
    /** Requests queued and not yet reaped: kept at most {@link #cqEntries}, so the CQ ring never overflows. */
    private int inFlight;
    private boolean closed;

    private IoUring(int ringFd, int setupFlags, int features, MemorySegment sqRing, MemorySegment cqRing, MemorySegment sqes,
                    MemorySegment params) {
        this.ringFd = ringFd;
        this.setupFlags = setupFlags;
        this.features = features;
        this.sqPoll = (setupFlags & IORING_SETUP_SQPOLL) != 0;
        this.sqRing = sqRing;
        this.cqRing = cqRing;
        this.sqes = sqes;
        this.sqEntries = param(params, "sq_entries");
        this.cqEntries = param(params, "cq_entries");
        this.sqHeadAt = param(params, "sq_off", "head");
        this.sqTailAt = param(params, "sq_off", "tail");
        this.sqFlagsAt = param(params, "sq_off", "flags");
        this.cqHeadAt = param(params, "cq_off", "head");
        this.cqTailAt = param(params, "cq_off", "tail");
        this.cqesAt = param(params, "cq_off", "cqes");
        this.sqMask = sqRing.get(JAVA_INT, param(params, "sq_off", "ring_mask"));
        this.cqMask = cqRing.get(JAVA_INT, param(params, "cq_off", "ring_mask"));
        // identity SQ index array, written once: SQE slot i is always named by array entry i (as liburing does)
        long array = param(params, "sq_off", "array");
        for (int i = 0; i < sqEntries; i++) {
            sqRing.setAtIndex(JAVA_INT, array / 4 + i, i);
        }
        this.sqTail = (int) RING_INDEX.getAcquire(sqRing, sqTailAt);
        this.cqHead = (int) RING_INDEX.getAcquire(cqRing, cqHeadAt);
        this.cqTailSeen = cqHead;
    }

    /**
     * Sets up a ring of {@code entries} submission slots (rounded up to a power of two by the
     * kernel; the completion ring gets twice as many).
     *
     * @param setupFlags a combination of {@link #SUPPORTED_SETUP_FLAGS}, e.g. 0 or {@link #IORING_SETUP_SQPOLL}
     * @throws IllegalArgumentException for entries outside 1..{@value #MAX_ENTRIES} or an unsupported flag
     * @throws LinuxException when io_uring_setup or a mapping fails; EPERM/ENOSYS mean io_uring is
     *         disabled here ({@code kernel.io_uring_disabled}, a seccomp filter or a kernel without it)
     */
    public static IoUring open(int entries, int setupFlags) {
        if (entries < 1 || entries > MAX_ENTRIES) {
            throw new IllegalArgumentException("io_uring entries must be 1 to " + MAX_ENTRIES + " (IORING_MAX_ENTRIES), got " + entries);
        }
        if ((setupFlags & ~SUPPORTED_SETUP_FLAGS) != 0) {
            throw new IllegalArgumentException("io_uring setup flags 0x" + Integer.toHexString(setupFlags & ~SUPPORTED_SETUP_FLAGS)
                    + " are not supported by this binding (it handles 0x" + Integer.toHexString(SUPPORTED_SETUP_FLAGS)
                    + ": SQPOLL, SUBMIT_ALL, COOP_TASKRUN, SINGLE_ISSUER, DEFER_TASKRUN)");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment params = arena.allocate(PARAMS); // zeroed: resv must be 0 or setup fails with EINVAL
            params.set(JAVA_INT, PARAMS.byteOffset(groupElement("flags")), setupFlags);
            int fd = (int) setupRaw(entries, params);
            if (fd < 0) {
                throw new LinuxException("io_uring_setup", -fd, "entries=" + entries + ", flags=0x" + Integer.toHexString(setupFlags)
                        + disabledHint(-fd));
            }
            MemorySegment sqRing = null;
            MemorySegment cqRing = null;
            MemorySegment sqes = null;
            try {
                int features = param(params, "features");
                long sqRingSize = param(params, "sq_off", "array") + 4L * param(params, "sq_entries");
                long cqRingSize = param(params, "cq_off", "cqes") + CQE_SIZE * param(params, "cq_entries");
                int prot = LibC.PROT_READ | LibC.PROT_WRITE;
                if ((features & IORING_FEAT_SINGLE_MMAP) != 0) {
                    // io_uring_setup(2): with SINGLE_MMAP both rings live in one mapping at IORING_OFF_SQ_RING
                    sqRing = LibC.mmap(Math.max(sqRingSize, cqRingSize), prot, LibC.MAP_SHARED, fd, IORING_OFF_SQ_RING);
                    cqRing = sqRing;
                } else {
                    sqRing = LibC.mmap(sqRingSize, prot, LibC.MAP_SHARED, fd, IORING_OFF_SQ_RING);
                    cqRing = LibC.mmap(cqRingSize, prot, LibC.MAP_SHARED, fd, IORING_OFF_CQ_RING);
                }
                sqes = LibC.mmap(SQE_SIZE * param(params, "sq_entries"), prot, LibC.MAP_SHARED, fd, IORING_OFF_SQES);
                return new IoUring(fd, setupFlags, features, sqRing, cqRing, sqes, params);
            } catch (RuntimeException e) {
                unmapQuietly(sqes);
                if (cqRing != sqRing) {
                    unmapQuietly(cqRing);
                }
                unmapQuietly(sqRing);
                LibC.closeQuietly(fd);
                throw e;
            }
        }
    }

    /**
     * Whether io_uring can be set up here: {@code null} when a small ring opened and closed, else
     * the reason (the errno and {@code kernel.io_uring_disabled}), for tests to skip on.
     */
    public static String unavailableReason() {
        try {
            open(2, 0).close();
            return null;
        } catch (LinuxException e) {
            return e.getMessage();
        }
    }

    private static String disabledHint(int errno) {
        if (errno != Errno.EPERM && errno != Errno.ENOSYS && errno != Errno.EACCES) {
            return "";
        }
        String sysctl;
        try {
            sysctl = Files.readString(Path.of("/proc/sys/kernel/io_uring_disabled")).strip();
        } catch (Exception e) {
            sysctl = "unreadable";
        }
        return "; io_uring is disabled for this process: kernel.io_uring_disabled=" + sysctl
                + " (0 allows all, 1 only members of kernel.io_uring_group, 2 none), a seccomp filter, or a kernel built without it";
    }

    /**
     * Queues a writev(2) of {@code count} iovecs starting at element {@code firstIovec} of {@code iovecs}.
     *
     * @return false, queueing nothing, when the SQ ring is full or {@link #completionEntries()} requests are in
     *         flight. With SQPOLL the kernel thread frees SQ slots only when it commits its whole batch, which can be
     *         after that batch's completions are posted: a full ring there is normal for a moment.
     */
    public boolean queueWritev(int fd, MemorySegment iovecs, long firstIovec, int count, long userData) {
        return queueReadWrite(IORING_OP_WRITEV, fd, iovecs, firstIovec, count, userData);
    }

    /** Queues a readv(2) into {@code count} iovecs starting at element {@code firstIovec} of {@code iovecs}; false as {@link #queueWritev}. */
    public boolean queueReadv(int fd, MemorySegment iovecs, long firstIovec, int count, long userData) {
        return queueReadWrite(IORING_OP_READV, fd, iovecs, firstIovec, count, userData);
    }

    private boolean queueReadWrite(byte opcode, int fd, MemorySegment iovecs, long firstIovec, int count, long userData) {
        ensureOpen();
        if (fd < 0) {
            throw new IllegalArgumentException("io_uring " + opName(opcode) + ": fd must be >= 0, got " + fd);
        }
        if (count < 1 || count > UIO_MAXIOV) {
            throw new IllegalArgumentException("io_uring " + opName(opcode) + ": iovec count must be 1 to " + UIO_MAXIOV
                    + " (UIO_MAXIOV), got " + count);
        }
        if (!iovecs.isNative()) {
            throw new IllegalArgumentException("io_uring " + opName(opcode) + ": the iovecs must be in native memory, not " + iovecs);
        }
        if (firstIovec < 0 || firstIovec > iovecs.byteSize() / IOVEC_SIZE - count) {
            throw new IllegalArgumentException("io_uring " + opName(opcode) + ": iovecs " + firstIovec + ".." + (firstIovec + count - 1)
                    + " lie outside the " + iovecs.byteSize() / IOVEC_SIZE + " iovecs of the array");
        }
        if (inFlight >= cqEntries || sqTail - (int) RING_INDEX.getAcquire(sqRing, sqHeadAt) >= sqEntries) {
            return false;
        }
        long sqe = (long) (sqTail & sqMask) * SQE_SIZE;
        // every field is written: the slot still holds a previous request
        sqes.set(JAVA_BYTE, sqe + SQE_OPCODE, opcode);
        sqes.set(JAVA_BYTE, sqe + SQE_FLAGS, (byte) 0);
        sqes.set(JAVA_SHORT, sqe + SQE_IOPRIO, (short) 0);
        sqes.set(JAVA_INT, sqe + SQE_FD, fd);
        sqes.set(JAVA_LONG, sqe + SQE_OFF, CURRENT_POSITION);
        sqes.set(JAVA_LONG, sqe + SQE_ADDR, iovecs.address() + firstIovec * IOVEC_SIZE);
        sqes.set(JAVA_INT, sqe + SQE_LEN, count);
        sqes.set(JAVA_INT, sqe + SQE_RW_FLAGS, 0);
        sqes.set(JAVA_LONG, sqe + SQE_USER_DATA, userData);
        sqes.set(JAVA_SHORT, sqe + SQE_BUF_INDEX, (short) 0);
        sqes.set(JAVA_SHORT, sqe + SQE_PERSONALITY, (short) 0);
        sqes.set(JAVA_INT, sqe + SQE_FILE_INDEX, 0);
        sqes.set(JAVA_LONG, sqe + SQE_ADDR3, 0L);
        sqes.set(JAVA_LONG, sqe + SQE_PAD2, 0L);
        sqTail++;
        inFlight++;
        return true;
    }

    private static String opName(byte opcode) {
        return opcode == IORING_OP_WRITEV ? "writev" : "readv";
    }

    /** SQEs queued and not yet taken by the kernel. */
    public int pendingSubmissions() {
        ensureOpen();
        return sqTail - (int) RING_INDEX.getAcquire(sqRing, sqHeadAt);
    }

    /** Requests queued and not yet reaped by {@link #consumeCompletions}. */
    public int inFlight() {
        return inFlight;
    }

    /**
     * Hands every queued SQE to the kernel and waits until at least {@code minComplete}
     * completions are ready, with one io_uring_enter when nothing interrupts it (more when a signal
     * does, or the kernel takes fewer SQEs than offered). With SQPOLL the kernel's thread takes the
     * SQEs; the enter only wakes it when it sleeps, and waits.
     *
     * @return the completions ready, at least {@code minComplete}
     * @throws LinuxException when io_uring_enter fails
     */
    public int submitAndWait(int minComplete) {
        long r = submitAndWaitRaw(minComplete);
        if (r < 0) {
            throw new LinuxException("io_uring_enter", (int) -r, "ring fd=" + ringFd + ", min_complete=" + minComplete);
        }
        return (int) r;
    }

    /** {@link #submitAndWait} returning {@code -errno} instead of throwing. */
    public long submitAndWaitRaw(int minComplete) {
        ensureOpen();
        if (minComplete < 0 || minComplete > inFlight) {
            throw new IllegalArgumentException("io_uring: cannot wait for " + minComplete + " completions with " + inFlight
                    + " requests in flight");
        }
        // the SQEs are written before the tail that publishes them (release)
        RING_INDEX.setRelease(sqRing, sqTailAt, sqTail);
        while (true) {
            int toSubmit = sqPoll ? 0 : pendingSubmissions();
            int enterFlags = 0;
            if (sqPoll) {
                // liburing sq_ring_needs_enter: the tail store must be visible before the flags are read
                VarHandle.fullFence();
                if ((sqRing.get(JAVA_INT, sqFlagsAt) & IORING_SQ_NEED_WAKEUP) != 0) {
                    enterFlags |= IORING_ENTER_SQ_WAKEUP;
                }
            }
            int ready = completionsReady();
            int waitFor = ready < minComplete ? minComplete : 0;
            if (waitFor > 0) {
                enterFlags |= IORING_ENTER_GETEVENTS;
            }
            if (toSubmit == 0 && enterFlags == 0) {
                return ready;
            }
            long r = enterRaw(toSubmit, waitFor, enterFlags);
            if (r == -Errno.EINTR) {
                continue;
            }
            if (r < 0) {
                return r;
            }
            if (toSubmit > 0 && r == 0 && waitFor == 0) {
                return -Errno.EBUSY; // the kernel took nothing and there is nothing to wait for: do not spin
            }
        }
    }

    /** io_uring_enter(2) on this ring; returns its result or -errno. */
    private long enterRaw(int toSubmit, int minComplete, int flags) {
        MemorySegment state = LibC.callState();
        try {
            long r = (long) SYSCALL_ENTER.invokeExact(state, SYS_IO_URING_ENTER, (long) ringFd, (long) toSubmit, (long) minComplete,
                    (long) flags, MemorySegment.NULL, 0L);
            return r < 0 ? -LibC.errno(state) : r;
        } catch (Throwable t) {
            throw LibC.rethrow(t);
        }
    }

    private static long setupRaw(int entries, MemorySegment params) {
        MemorySegment state = LibC.callState();
        try {
            long r = (long) SYSCALL_SETUP.invokeExact(state, SYS_IO_URING_SETUP, (long) entries, params);
            return r < 0 ? -LibC.errno(state) : r;
        } catch (Throwable t) {
            throw LibC.rethrow(t);
        }
    }

    /** Completions posted and not yet consumed; loads the CQ tail with acquire, so their entries may then be read. */
    public int completionsReady() {
        ensureOpen();
        cqTailSeen = (int) RING_INDEX.getAcquire(cqRing, cqTailAt);
        return cqTailSeen - cqHead;
    }

    /** The result of ready completion {@code index} (0 is the oldest): bytes moved, or {@code -errno}. */
    public int completionResult(int index) {
        return cqRing.get(JAVA_INT, completionAt(index) + CQE_RES);
    }

    /** The user data its request was queued with, of ready completion {@code index}. */
    public long completionUserData(int index) {
        return cqRing.get(JAVA_LONG, completionAt(index) + CQE_USER_DATA);
    }

    private long completionAt(int index) {
        ensureOpen();
        if (index < 0 || index >= cqTailSeen - cqHead) {
            throw new IndexOutOfBoundsException("io_uring: completion " + index + " is not ready (" + (cqTailSeen - cqHead)
                    + " are, as of the last completionsReady())");
        }
        return cqesAt + (long) ((cqHead + index) & cqMask) * CQE_SIZE;
    }

    /** Hands the oldest {@code count} ready completions back to the kernel (CQ head store with release). */
    public void consumeCompletions(int count) {
        ensureOpen();
        if (count < 0 || count > cqTailSeen - cqHead) {
            throw new IllegalArgumentException("io_uring: cannot consume " + count + " completions, " + (cqTailSeen - cqHead)
                    + " are ready");
        }
        cqHead += count;
        inFlight -= count;
        // the CQEs are read before their slots are handed back (release)
        RING_INDEX.setRelease(cqRing, cqHeadAt, cqHead);
    }

    /** Submission slots (a power of two). */
    public int submissionEntries() {
        return sqEntries;
    }

    /** Completion slots: twice the submission slots unless set otherwise. */
    public int completionEntries() {
        return cqEntries;
    }

    /** The IORING_FEAT_* bits the kernel reported. */
    public int features() {
        return features;
    }

    public int setupFlags() {
        return setupFlags;
    }

    public int fd() {
        return ringFd;
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("io_uring fd " + ringFd + " is closed");
        }
    }

    /** Unmaps the rings and closes the ring fd; requests still in flight are cancelled by the kernel. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        unmapQuietly(sqes);
        if (cqRing != sqRing) {
            unmapQuietly(cqRing);
        }
        unmapQuietly(sqRing);
        LibC.close(ringFd);
    }

    private static void unmapQuietly(MemorySegment mapping) {
        if (mapping != null) {
            try {
                LibC.munmap(mapping);
            } catch (LinuxException ignored) {
                // a mapping we made with the size we gave: munmap cannot fail short of a bug; the fd still closes
            }
        }
    }

    private static long offset(StructLayout layout, String field) {
        return layout.byteOffset(groupElement(field));
    }

    private static int param(MemorySegment params, String field) {
        return params.get(JAVA_INT, PARAMS.byteOffset(groupElement(field)));
    }

    private static int param(MemorySegment params, String group, String field) {
        return params.get(JAVA_INT, PARAMS.byteOffset(groupElement(group), groupElement(field)));
    }

    @Override
    public String toString() {
        return "IoUring[fd=" + ringFd + ", sq=" + sqEntries + ", cq=" + cqEntries + ", flags=0x" + Integer.toHexString(setupFlags)
                + ", features=0x" + Integer.toHexString(features) + "]";
    }
}
