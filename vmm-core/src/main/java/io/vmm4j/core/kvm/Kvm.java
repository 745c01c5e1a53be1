package io.vmm4j.core.kvm;

import io.vmm4j.core.linux.Errno;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.linux.LinuxException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

/**
 * The KVM subsystem, {@code /dev/kvm}: the API version check, capability queries and VM creation
 * (Documentation/virt/kvm/api.rst §4.1-4.4).
 */
public final class Kvm implements AutoCloseable {
    public static final String DEVICE = "/dev/kvm";

    private static final VarHandle CPUID2_NENT = KvmLayouts.handle(KvmLayouts.CPUID2, "nent");

    private final int fd;
    private final int vcpuMmapSize;
    private volatile boolean closed;

    private Kvm(int fd) {
        this.fd = fd;
        this.vcpuMmapSize = LibC.ioctl(fd, KvmIoctls.GET_VCPU_MMAP_SIZE, 0L, "KVM_GET_VCPU_MMAP_SIZE");
    }

    /**
     * Opens /dev/kvm and checks the API version (12, stable since Linux 2.6.22). Fails with a
     * {@link KvmException} saying what is missing and how to get it.
     */
    public static Kvm open() {
        int fd;
        try {
            fd = LibC.open(DEVICE, LibC.O_RDWR | LibC.O_CLOEXEC);
        } catch (LinuxException e) {
            throw new KvmException(switch (e.errno()) {
                case Errno.ENOENT -> DEVICE + " does not exist: this host offers no KVM. Enable virtualization (VT-x/AMD-V, "
                        + "or nested virtualization for a VM) and load kvm_intel or kvm_amd";
                case Errno.EACCES, Errno.EPERM -> DEVICE + " is not accessible to this user (" + e.errnoName()
                        + "): run as root or join the kvm group";
                default -> "cannot open " + DEVICE + ": " + e.getMessage();
            }, e);
        }
        try {
            int version = LibC.ioctl(fd, KvmIoctls.GET_API_VERSION, 0L, "KVM_GET_API_VERSION");
            if (version != KvmIoctls.API_VERSION) {
                throw new KvmException("KVM API version " + version + " is not the stable version " + KvmIoctls.API_VERSION
                        + " this VMM speaks (api.rst §4.1); use a Linux kernel newer than 2.6.22");
            }
            return new Kvm(fd);
        } catch (RuntimeException e) {
            LibC.closeQuietly(fd);
            throw e;
        }
    }

    public int fd() {
        return fd;
    }

    /** KVM_CHECK_EXTENSION on the system fd: 0 when absent, else a capability-specific positive value. */
    public int checkExtension(int capability) {
        int r = LibC.ioctlRaw(fd, KvmIoctls.CHECK_EXTENSION, capability);
        return Math.max(r, 0);
    }

    /** Throws unless {@code capability} is present; {@code name} and {@code why} go into the message. */
    public void requireExtension(int capability, String name, String why) {
        if (checkExtension(capability) <= 0) {
            throw new KvmException("this KVM lacks " + name + ", which " + why + "; use a newer host kernel");
        }
    }

    /** Bytes to mmap from a vCPU fd: the {@code kvm_run} structure and the PIO data page(s). */
    public int vcpuMmapSize() {
        return vcpuMmapSize;
    }

    /** A new VM (KVM_CREATE_VM, default machine type). */
    public KvmVm createVm() {
        int vmFd = LibC.ioctl(fd, KvmIoctls.CREATE_VM, 0L, "KVM_CREATE_VM");
        return new KvmVm(this, vmFd);
    }

    /**
     * KVM_GET_SUPPORTED_CPUID: the CPUID leaves this KVM can present to a guest, as {@code struct
     * kvm_cpuid2} ready for {@link KvmVcpu#setCpuid}.
     */
    public MemorySegment supportedCpuid(Arena arena) {
        for (int entries = 128; ; entries *= 2) {
            MemorySegment cpuid = arena.allocate(KvmLayouts.CPUID2.byteSize() + entries * KvmLayouts.CPUID_ENTRY2.byteSize(),
                    KvmLayouts.CPUID_ENTRY2.byteAlignment());
            CPUID2_NENT.set(cpuid, 0L, entries);
            int r = LibC.ioctlRaw(fd, KvmIoctls.GET_SUPPORTED_CPUID, cpuid);
            if (r == -7 && entries < 4096) { // E2BIG: more leaves than room
                continue;
            }
            LibC.check(r, "ioctl", "fd=" + fd + ", KVM_GET_SUPPORTED_CPUID, nent=" + entries);
            return cpuid;
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            LibC.closeQuietly(fd);
        }
    }
}
