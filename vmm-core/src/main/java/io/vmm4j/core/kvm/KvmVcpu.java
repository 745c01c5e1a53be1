package io.vmm4j.core.kvm;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.linux.Errno;
import io.vmm4j.core.linux.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * One virtual CPU: its {@code kvm_run} page mapped from the vCPU fd, and a loop of KVM_RUN on one
 * thread that serves the exits user space must handle (api.rst §4.10, §5 "The kvm_run structure").
 *
 * <p>Port I/O exits ({@code KVM_EXIT_IO}, string I/O included) go to the PIO {@link Bus}, MMIO
 * exits to the MMIO bus: the very buses the Java frontend drives. Every return from KVM_RUN is
 * counted by exit reason. A triple fault (KVM_EXIT_SHUTDOWN), an entry failure, an internal KVM
 * error or any other exit ends the run with a {@link GuestFailureException} that carries the
 * guest's registers. Without an in-kernel irqchip, HLT ends the run too (nothing could wake the
 * vCPU). {@link #requestStop()} ends a run from any thread, also one blocked in the kernel
 * (a halted guest waiting for an interrupt): it sets {@code immediate_exit} and signals the thread.
 */
public final class KvmVcpu implements AutoCloseable {
    /** Why {@link #run()} returned normally. */
    public enum StopReason {
        /** {@link #requestStop()} was called (the guest signalled it was done, or the VMM shuts down). */
        STOPPED,
        /** The guest executed HLT and the VM has no in-kernel irqchip to wake it. */
        HALTED
    }

    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    // struct kvm_run, read and written in place in the mapping
    private static final VarHandle RUN_IMMEDIATE_EXIT = KvmLayouts.handle(KvmLayouts.RUN, "immediate_exit");
    private static final VarHandle RUN_EXIT_REASON = KvmLayouts.handle(KvmLayouts.RUN, "exit_reason");
    private static final VarHandle IO_DIRECTION = KvmLayouts.handle(KvmLayouts.RUN, "exit", "io", "direction");
    private static final VarHandle IO_SIZE = KvmLayouts.handle(KvmLayouts.RUN, "exit", "io", "size");
    private static final VarHandle IO_PORT = KvmLayouts.handle(KvmLayouts.RUN, "exit", "io", "port");
    private static final VarHandle IO_COUNT = KvmLayouts.handle(KvmLayouts.RUN, "exit", "io", "count");
    private static final VarHandle IO_DATA_OFFSET = KvmLayouts.handle(KvmLayouts.RUN, "exit", "io", "data_offset");
    private static final VarHandle MMIO_PHYS_ADDR = KvmLayouts.handle(KvmLayouts.RUN, "exit", "mmio", "phys_addr");
    private static final long MMIO_DATA = KvmLayouts.offset(KvmLayouts.RUN, "exit", "mmio", "data");
    private static final VarHandle MMIO_LEN = KvmLayouts.handle(KvmLayouts.RUN, "exit", "mmio", "len");
    private static final VarHandle MMIO_IS_WRITE = KvmLayouts.handle(KvmLayouts.RUN, "exit", "mmio", "is_write");
    private static final VarHandle FAIL_ENTRY_REASON = KvmLayouts.handle(KvmLayouts.RUN, "exit", "fail_entry", "hardware_entry_failure_reason");
    private static final VarHandle EX_EXCEPTION = KvmLayouts.handle(KvmLayouts.RUN, "exit", "ex", "exception");
    private static final VarHandle EX_ERROR_CODE = KvmLayouts.handle(KvmLayouts.RUN, "exit", "ex", "error_code");
    private static final VarHandle SYSTEM_EVENT_TYPE = KvmLayouts.handle(KvmLayouts.RUN, "exit", "system_event", "type");
    private static final VarHandle INTERNAL_SUBERROR = KvmLayouts.handle(KvmLayouts.RUN, "exit", "internal", "suberror");
    private static final VarHandle INTERNAL_NDATA = KvmLayouts.handle(KvmLayouts.RUN, "exit", "internal", "ndata");
    private static final VarHandle INTERNAL_DATA = KvmLayouts.RUN.varHandle(MemoryLayout.PathElement.groupElement("exit"),
            MemoryLayout.PathElement.groupElement("internal"), MemoryLayout.PathElement.groupElement("data"),
            MemoryLayout.PathElement.sequenceElement());
    private static final VarHandle MSRS_NMSRS = KvmLayouts.handle(KvmLayouts.MSRS, "nmsrs");
    private static final VarHandle MSR_INDEX = KvmLayouts.handle(KvmLayouts.MSR_ENTRY, "index");
    private static final VarHandle MSR_DATA = KvmLayouts.handle(KvmLayouts.MSR_ENTRY, "data");
    private static final VarHandle FPU_FCW = KvmLayouts.handle(KvmLayouts.FPU, "fcw");
    private static final VarHandle FPU_MXCSR = KvmLayouts.handle(KvmLayouts.FPU, "mxcsr");
    private static final int KICK_SIGNAL = KickSignal.number();

    private final KvmVm vm;
    private final int id;
    private final int fd;
    private final Bus pio;
    private final Bus mmio;
    private final MemorySegment run;
    private final AtomicLongArray exits = new AtomicLongArray(ExitReason.COUNTED);
    private final Arena arena = Arena.ofShared();
    private final MemorySegment regsBuffer = arena.allocate(KvmLayouts.REGS);
    private final MemorySegment sregsBuffer = arena.allocate(KvmLayouts.SREGS);
    private volatile boolean stopRequested;
    private volatile long runningThread; // pthread_t while run() is active, else 0
    private volatile boolean closed;
    private final java.util.concurrent.locks.ReentrantLock running = new java.util.concurrent.locks.ReentrantLock();
    private final Object mappingLock = new Object();

    KvmVcpu(KvmVm vm, int id, int fd, int mmapSize, Bus pio, Bus mmio) {
        this.vm = vm;
        this.id = id;
        this.fd = fd;
        this.pio = pio;
        this.mmio = mmio;
        this.run = LibC.mmap(mmapSize, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, 0);
    }

    public int id() {
        return id;
    }

    public KvmVm vm() {
        return vm;
    }

    // ---- state ----

    public synchronized KvmRegs getRegs() {
        LibC.ioctl(fd, KvmIoctls.GET_REGS, regsBuffer, "KVM_GET_REGS");
        return KvmRegs.read(regsBuffer);
    }

    public synchronized void setRegs(KvmRegs regs) {
        regs.write(regsBuffer);
        LibC.ioctl(fd, KvmIoctls.SET_REGS, regsBuffer, "KVM_SET_REGS");
    }

    public synchronized KvmSregs getSregs() {
        LibC.ioctl(fd, KvmIoctls.GET_SREGS, sregsBuffer, "KVM_GET_SREGS");
        return KvmSregs.read(sregsBuffer);
    }

    public synchronized void setSregs(KvmSregs sregs) {
        sregs.write(sregsBuffer);
        LibC.ioctl(fd, KvmIoctls.SET_SREGS, sregsBuffer, "KVM_SET_SREGS");
    }

    /** A model-specific register and its value, for {@link #setMsrs} / {@link #getMsrs}. */
    public record Msr(int index, long value) {
        @Override
        public String toString() {
            return String.format("MSR 0x%x = 0x%x", index, value);
        }
    }

    /**
     * KVM_SET_MSRS: writes every MSR or throws naming the first one KVM refused (the ioctl returns
     * how many it set, in order; api.rst §4.19).
     */
    public void setMsrs(List<Msr> msrs) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = msrBuffer(a, msrs);
            int set = LibC.ioctl(fd, KvmIoctls.SET_MSRS, s, "KVM_SET_MSRS (" + msrs.size() + " MSRs)");
            if (set != msrs.size()) {
                throw new KvmException("KVM_SET_MSRS on vCPU " + id + " set " + set + " of " + msrs.size() + " MSRs; KVM refused "
                        + msrs.get(set) + " (this KVM does not emulate it)");
            }
        }
    }

    /** KVM_GET_MSRS: the current values of {@code indices}, in order; throws if KVM cannot read one. */
    public List<Msr> getMsrs(int... indices) {
        List<Msr> asked = new ArrayList<>();
        for (int i : indices) {
            asked.add(new Msr(i, 0));
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = msrBuffer(a, asked);
            int got = LibC.ioctl(fd, KvmIoctls.GET_MSRS, s, "KVM_GET_MSRS (" + indices.length + " MSRs)");
            if (got != indices.length) {
                throw new KvmException(String.format("KVM_GET_MSRS on vCPU %d read %d of %d MSRs; KVM cannot read MSR 0x%x", id, got,
                        indices.length, indices[got]));
            }
            List<Msr> out = new ArrayList<>();
            for (int i = 0; i < indices.length; i++) {
                long at = msrEntry(i);
                out.add(new Msr((int) MSR_INDEX.get(s, at), (long) MSR_DATA.get(s, at)));
            }
            return out;
        }
    }

    private static MemorySegment msrBuffer(Arena a, List<Msr> msrs) {
        MemorySegment s = a.allocate(msrEntry(msrs.size()), KvmLayouts.MSR_ENTRY.byteAlignment());
        MSRS_NMSRS.set(s, 0L, msrs.size());
        for (int i = 0; i < msrs.size(); i++) {
            MSR_INDEX.set(s, msrEntry(i), msrs.get(i).index());
            MSR_DATA.set(s, msrEntry(i), msrs.get(i).value());
        }
        return s;
    }

    /** Where entry {@code i} of a {@code struct kvm_msrs} starts: its entries follow the header. */
    private static long msrEntry(int i) {
        return KvmLayouts.MSRS.byteSize() + i * KvmLayouts.MSR_ENTRY.byteSize();
    }

    /**
     * KVM_SET_FPU with the x87 control word and MXCSR given and everything else zero (the state
     * after FNINIT and a reset of MXCSR: fcw 0x37F, mxcsr 0x1F80; SDM Vol. 1 §8.1.5, §10.2.3).
     */
    public void setFpu(int fcw, int mxcsr) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(KvmLayouts.FPU);
            FPU_FCW.set(s, 0L, (short) fcw);
            FPU_MXCSR.set(s, 0L, mxcsr);
            LibC.ioctl(fd, KvmIoctls.SET_FPU, s, "KVM_SET_FPU");
        }
    }

    /** KVM_GET_FPU: the x87 control word (low 16 bits) and MXCSR (high 32 bits), for checks. */
    public long fpuControlWords() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(KvmLayouts.FPU);
            LibC.ioctl(fd, KvmIoctls.GET_FPU, s, "KVM_GET_FPU");
            long fcw = (short) FPU_FCW.get(s, 0L) & 0xFFFFL;
            long mxcsr = (int) FPU_MXCSR.get(s, 0L) & 0xFFFF_FFFFL;
            return fcw | (mxcsr << 32);
        }
    }

    /** KVM_GET_LAPIC: a copy of the in-kernel local APIC's registers (needs the irqchip). */
    public LocalApicState getLapic() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(KvmLayouts.LAPIC_STATE);
            LibC.ioctl(fd, KvmIoctls.GET_LAPIC, s, "KVM_GET_LAPIC");
            return LocalApicState.copyOf(s);
        }
    }

    /** KVM_SET_LAPIC: loads {@code state} into the in-kernel local APIC. */
    public void setLapic(LocalApicState state) {
        LibC.ioctl(fd, KvmIoctls.SET_LAPIC, state.segment(), "KVM_SET_LAPIC");
    }

    /** KVM_SET_CPUID2 with a {@code struct kvm_cpuid2}, e.g. {@link Kvm#supportedCpuid}. Before the first run. */
    public void setCpuid(MemorySegment cpuid2) {
        LibC.ioctl(fd, KvmIoctls.SET_CPUID2, cpuid2, "KVM_SET_CPUID2");
    }

    /** KVM_GET_TSC_KHZ: the guest's TSC frequency in kHz, or 0 where KVM cannot tell. */
    public long tscKhz() {
        int r = LibC.ioctlRaw(fd, KvmIoctls.GET_TSC_KHZ, 0L);
        return Math.max(r, 0);
    }

    /** The exits counted so far. */
    public VmExitCounts exitCounts() {
        long[] c = new long[ExitReason.COUNTED];
        for (int i = 0; i < c.length; i++) {
            c[i] = exits.get(i);
        }
        return new VmExitCounts(c);
    }

    // ---- running ----

    /** Runs {@link #run()} on a new platform thread named {@code threadName}; the future ends as the run does. */
    public CompletableFuture<StopReason> start(String threadName) {
        CompletableFuture<StopReason> done = new CompletableFuture<>();
        Thread.ofPlatform().name(threadName).start(() -> {
            try {
                done.complete(run());
            } catch (Throwable t) {
                done.completeExceptionally(t);
            }
        });
        return done;
    }

    /**
     * Enters the guest on the calling thread and serves exits until {@link #requestStop()}, a HLT
     * without irqchip, or a failure ({@link GuestFailureException}).
     */
    public StopReason run() {
        if (!running.tryLock()) {
            throw new IllegalStateException("vCPU " + id + " is already running on another thread");
        }
        if (closed) {
            running.unlock();
            throw new IllegalStateException("vCPU " + id + " is closed");
        }
        runningThread = LibC.pthreadSelf();
        try {
            while (true) {
                if (stopRequested) {
                    return StopReason.STOPPED;
                }
                int r = LibC.ioctlRaw(fd, KvmIoctls.RUN, 0L);
                if (r < 0) {
                    if (r == -Errno.EINTR || r == -Errno.EAGAIN) {
                        exits.incrementAndGet(KvmIoctls.EXIT_INTR);
                        RUN_IMMEDIATE_EXIT.setVolatile(run, 0L, (byte) 0);
                        continue; // a kick (requestStop) or another signal: the loop re-checks the flag
                    }
                    LibC.check(r, "ioctl", "fd=" + fd + ", KVM_RUN");
                }
                int reason = (int) RUN_EXIT_REASON.get(run, 0L);
                exits.incrementAndGet(Math.min(Math.max(reason, 0), ExitReason.COUNTED - 1));
                switch (reason) {
                    case KvmIoctls.EXIT_IO -> serveIo();
                    case KvmIoctls.EXIT_MMIO -> serveMmio();
                    case KvmIoctls.EXIT_INTR -> {
                        // interrupted before entering the guest; loop re-checks the stop flag
                    }
                    case KvmIoctls.EXIT_HLT -> {
                        return StopReason.HALTED;
                    }
                    default -> throw failure(reason, null);
                }
            }
        } finally {
            synchronized (mappingLock) {
                runningThread = 0; // under the lock: requestStop never signals a thread that has left
            }
            running.unlock();
        }
    }

    /**
     * Ends {@link #run()} from any thread, at its next return to user space; a vCPU waiting in the
     * kernel (HLT) is kicked out with a signal (api.rst: kvm_run.immediate_exit).
     */
    public void requestStop() {
        stopRequested = true;
        synchronized (mappingLock) {
            if (closed) {
                return;
            }
            RUN_IMMEDIATE_EXIT.setVolatile(run, 0L, (byte) 1);
            long thread = runningThread;
            if (thread != 0) {
                try {
                    LibC.pthreadKill(thread, KICK_SIGNAL);
                } catch (RuntimeException e) {
                    // ESRCH: the run already ended and its thread is gone
                }
            }
        }
    }

    public boolean stopRequested() {
        return stopRequested;
    }

    private void serveIo() {
        int direction = (byte) IO_DIRECTION.get(run, 0L);
        int size = (byte) IO_SIZE.get(run, 0L);
        int port = (short) IO_PORT.get(run, 0L) & 0xFFFF;
        int count = (int) IO_COUNT.get(run, 0L);
        long dataOffset = (long) IO_DATA_OFFSET.get(run, 0L);
        try {
            // string I/O (rep ins/outs) arrives as count elements back to back in the data page
            for (int i = 0; i < count; i++) {
                long at = dataOffset + (long) i * size;
                if (direction == KvmIoctls.EXIT_IO_OUT) {
                    pio.write(port, size, load(at, size));
                } else {
                    store(at, size, pio.read(port, size));
                }
            }
        } catch (RuntimeException e) {
            throw failure(KvmIoctls.EXIT_IO, String.format("%s of %d byte(s) at port 0x%x failed in the device: %s",
                    direction == KvmIoctls.EXIT_IO_OUT ? "OUT" : "IN", size, port, e), e);
        }
    }

    private void serveMmio() {
        long address = (long) MMIO_PHYS_ADDR.get(run, 0L);
        int length = (int) MMIO_LEN.get(run, 0L);
        boolean write = (byte) MMIO_IS_WRITE.get(run, 0L) != 0;
        if (length != 1 && length != 2 && length != 4 && length != 8) {
            throw failure(KvmIoctls.EXIT_MMIO, String.format("an MMIO %s of %d bytes at 0x%x: devices take 1, 2, 4 or 8 bytes "
                    + "(use plain integer loads and stores on device memory, not SSE)", write ? "write" : "read", length, address));
        }
        try {
            if (write) {
                mmio.write(address, length, load(MMIO_DATA, length));
            } else {
                store(MMIO_DATA, length, mmio.read(address, length));
            }
        } catch (RuntimeException e) {
            throw failure(KvmIoctls.EXIT_MMIO, String.format("MMIO %s of %d byte(s) at 0x%x failed in the device: %s",
                    write ? "write" : "read", length, address, e), e);
        }
    }

    private long load(long offset, int size) {
        long v = 0;
        for (int i = 0; i < size; i++) {
            v |= (run.get(ValueLayout.JAVA_BYTE, offset + i) & 0xFFL) << (8 * i);
        }
        return v;
    }

    private void store(long offset, int size, long value) {
        if (size == 8) {
            run.set(LE_LONG, offset, value);
            return;
        }
        for (int i = 0; i < size; i++) {
            run.set(ValueLayout.JAVA_BYTE, offset + i, (byte) (value >>> (8 * i)));
        }
    }

    private GuestFailureException failure(int reason, String detail, Throwable cause) {
        String what = detail != null ? detail : describeExit(reason);
        String state;
        try {
            state = getRegs() + "\n  " + getSregs();
        } catch (RuntimeException e) {
            state = "(registers unreadable: " + e.getMessage() + ")";
        }
        String message = "vCPU " + id + ": " + what + "\n  " + state;
        return cause == null ? new GuestFailureException(reason, message) : new GuestFailureException(reason, message, cause);
    }

    private GuestFailureException failure(int reason, String detail) {
        return failure(reason, detail, null);
    }

    private String describeExit(int reason) {
        return switch (reason) {
            case KvmIoctls.EXIT_SHUTDOWN -> "triple fault (KVM_EXIT_SHUTDOWN): the guest took an exception it could not deliver "
                    + "(no IDT, a bad page table or stack); the registers below are where it died";
            case KvmIoctls.EXIT_FAIL_ENTRY -> String.format("KVM_EXIT_FAIL_ENTRY, hardware entry failure reason 0x%x: the vCPU state "
                    + "is invalid for VM entry (segments, control registers or EFER)", (long) FAIL_ENTRY_REASON.get(run, 0L));
            case KvmIoctls.EXIT_INTERNAL_ERROR -> internalError();
            case KvmIoctls.EXIT_EXCEPTION -> String.format("KVM_EXIT_EXCEPTION: exception %d, error code 0x%x",
                    (int) EX_EXCEPTION.get(run, 0L), (int) EX_ERROR_CODE.get(run, 0L));
            case KvmIoctls.EXIT_SYSTEM_EVENT -> "KVM_EXIT_SYSTEM_EVENT type " + (int) SYSTEM_EVENT_TYPE.get(run, 0L)
                    + " (the guest asked for a shutdown or reset)";
            default -> "unhandled exit KVM_EXIT_" + ExitReason.name(reason).toUpperCase(java.util.Locale.ROOT) + " (" + reason + ")";
        };
    }

    private String internalError() {
        int sub = (int) INTERNAL_SUBERROR.get(run, 0L);
        int n = Math.min((int) INTERNAL_NDATA.get(run, 0L), 16);
        StringBuilder data = new StringBuilder();
        for (int i = 0; i < n; i++) {
            data.append(i == 0 ? "" : " ").append(String.format("0x%x", (long) INTERNAL_DATA.get(run, 0L, (long) i)));
        }
        String kind = switch (sub) {
            case KvmIoctls.INTERNAL_ERROR_EMULATION -> "KVM could not emulate an instruction (often an access to an address "
                    + "with neither RAM nor a device in a way KVM must emulate)";
            case KvmIoctls.INTERNAL_ERROR_SIMUL_EX -> "an exception occurred while delivering another";
            case KvmIoctls.INTERNAL_ERROR_DELIVERY_EV -> "an event could not be delivered (bad IDT or stack)";
            default -> "suberror " + sub;
        };
        return "KVM_EXIT_INTERNAL_ERROR: " + kind + (n > 0 ? "; data " + data : "");
    }

    /**
     * Stops a run (waiting up to 5 s for its thread to leave the guest), then unmaps kvm_run and
     * closes the vCPU fd. A run that does not end in time (a device handler that never returns)
     * keeps its mapping: leaking it is better than pulling memory from under that thread.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        requestStop();
        boolean idle;
        try {
            idle = running.tryLock(5, java.util.concurrent.TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            idle = false;
        }
        synchronized (mappingLock) {
            closed = true;
        }
        if (idle) {
            try {
                LibC.munmap(run);
                arena.close();
            } finally {
                running.unlock();
            }
        }
        LibC.closeQuietly(fd);
    }

    /** The signal that kicks a vCPU thread out of KVM_RUN: SIGRTMIN + 2, with a handler that only interrupts. */
    private static final class KickSignal {
        static int number() {
            int signal = LibC.sigrtmin() + 2;
            LibC.installInterruptOnlyHandler(signal);
            return signal;
        }
    }
}
