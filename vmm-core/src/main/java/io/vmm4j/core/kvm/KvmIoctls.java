package io.vmm4j.core.kvm;

import io.vmm4j.core.linux.Ioctl;

/**
 * /dev/kvm ioctl requests, capabilities, exit reasons, flags and the struct sizes the requests
 * encode (include/uapi/linux/kvm.h, arch/x86/include/uapi/asm/kvm.h; x86-64); the structs
 * themselves are {@link KvmLayouts}.
 * {@code LinuxConstantsTest} checks every value against the system headers with gcc.
 */
public final class KvmIoctls {
    public static final int KVMIO = 0xAE;
    public static final int API_VERSION = 12;

    public static final long SIZEOF_USERSPACE_MEMORY_REGION = 32;
    public static final long SIZEOF_REGS = 144;
    public static final long SIZEOF_SREGS = 312;
    public static final long SIZEOF_SEGMENT = 24;
    public static final long SIZEOF_IRQFD = 32;
    public static final long SIZEOF_IOEVENTFD = 64;
    public static final long SIZEOF_IRQ_ROUTING = 8;
    public static final long SIZEOF_IRQ_ROUTING_ENTRY = 48;
    public static final long SIZEOF_MSI = 32;
    public static final long SIZEOF_CPUID2 = 8;
    public static final long SIZEOF_CPUID_ENTRY2 = 40;
    public static final long SIZEOF_IRQ_LEVEL = 8;
    public static final long SIZEOF_PIT_CONFIG = 64;
    public static final long SIZEOF_MSRS = 8;
    public static final long SIZEOF_MSR_ENTRY = 16;
    public static final long SIZEOF_FPU = 416;
    public static final long SIZEOF_LAPIC_STATE = 1024;

    // system ioctls
    public static final long GET_API_VERSION = Ioctl.io(KVMIO, 0x00);
    public static final long CREATE_VM = Ioctl.io(KVMIO, 0x01);
    public static final long CHECK_EXTENSION = Ioctl.io(KVMIO, 0x03);
    public static final long GET_VCPU_MMAP_SIZE = Ioctl.io(KVMIO, 0x04);
    public static final long GET_SUPPORTED_CPUID = Ioctl.iowr(KVMIO, 0x05, SIZEOF_CPUID2);
    // VM ioctls
    public static final long CREATE_VCPU = Ioctl.io(KVMIO, 0x41);
    public static final long SET_USER_MEMORY_REGION = Ioctl.iow(KVMIO, 0x46, SIZEOF_USERSPACE_MEMORY_REGION);
    public static final long SET_TSS_ADDR = Ioctl.io(KVMIO, 0x47);
    public static final long SET_IDENTITY_MAP_ADDR = Ioctl.iow(KVMIO, 0x48, 8);
    public static final long CREATE_IRQCHIP = Ioctl.io(KVMIO, 0x60);
    public static final long IRQ_LINE = Ioctl.iow(KVMIO, 0x61, SIZEOF_IRQ_LEVEL);
    public static final long CREATE_PIT2 = Ioctl.iow(KVMIO, 0x77, SIZEOF_PIT_CONFIG);
    public static final long SET_GSI_ROUTING = Ioctl.iow(KVMIO, 0x6a, SIZEOF_IRQ_ROUTING);
    public static final long IRQFD = Ioctl.iow(KVMIO, 0x76, SIZEOF_IRQFD);
    public static final long IOEVENTFD = Ioctl.iow(KVMIO, 0x79, SIZEOF_IOEVENTFD);
    public static final long SIGNAL_MSI = Ioctl.iow(KVMIO, 0xa5, SIZEOF_MSI);
    // vCPU ioctls
    public static final long RUN = Ioctl.io(KVMIO, 0x80);
    public static final long GET_REGS = Ioctl.ior(KVMIO, 0x81, SIZEOF_REGS);
    public static final long SET_REGS = Ioctl.iow(KVMIO, 0x82, SIZEOF_REGS);
    public static final long GET_SREGS = Ioctl.ior(KVMIO, 0x83, SIZEOF_SREGS);
    public static final long SET_SREGS = Ioctl.iow(KVMIO, 0x84, SIZEOF_SREGS);
    public static final long SET_CPUID2 = Ioctl.iow(KVMIO, 0x90, SIZEOF_CPUID2);
    public static final long GET_MSRS = Ioctl.iowr(KVMIO, 0x88, SIZEOF_MSRS);
    public static final long SET_MSRS = Ioctl.iow(KVMIO, 0x89, SIZEOF_MSRS);
    public static final long GET_FPU = Ioctl.ior(KVMIO, 0x8c, SIZEOF_FPU);
    public static final long SET_FPU = Ioctl.iow(KVMIO, 0x8d, SIZEOF_FPU);
    public static final long GET_LAPIC = Ioctl.ior(KVMIO, 0x8e, SIZEOF_LAPIC_STATE);
    public static final long SET_LAPIC = Ioctl.iow(KVMIO, 0x8f, SIZEOF_LAPIC_STATE);
    public static final long GET_TSC_KHZ = Ioctl.io(KVMIO, 0xa3);

    // KVM_CHECK_EXTENSION capabilities
    public static final int CAP_IRQCHIP = 0;
    public static final int CAP_USER_MEMORY = 3;
    public static final int CAP_SET_TSS_ADDR = 4;
    public static final int CAP_NR_MEMSLOTS = 10;
    public static final int CAP_IRQ_ROUTING = 25;
    public static final int CAP_IRQFD = 32;
    public static final int CAP_IOEVENTFD = 36;
    public static final int CAP_SET_IDENTITY_MAP_ADDR = 37;
    public static final int CAP_EXT_CPUID = 7;
    public static final int CAP_SIGNAL_MSI = 77;
    public static final int CAP_IRQFD_RESAMPLE = 82;
    public static final int CAP_GET_TSC_KHZ = 61;
    public static final int CAP_IOEVENTFD_ANY_LENGTH = 122;
    public static final int CAP_IMMEDIATE_EXIT = 136;
    public static final int CAP_PIT2 = 33;
    public static final int CAP_TSC_DEADLINE_TIMER = 72;

    // KVM_CREATE_PIT2 flags
    public static final int PIT_SPEAKER_DUMMY = 1;
    // kvm_cpuid_entry2.flags
    public static final int CPUID_FLAG_SIGNIFCANT_INDEX = 1;

    // kvm_run.exit_reason
    public static final int EXIT_UNKNOWN = 0;
    public static final int EXIT_EXCEPTION = 1;
    public static final int EXIT_IO = 2;
    public static final int EXIT_HYPERCALL = 3;
    public static final int EXIT_DEBUG = 4;
    public static final int EXIT_HLT = 5;
    public static final int EXIT_MMIO = 6;
    public static final int EXIT_IRQ_WINDOW_OPEN = 7;
    public static final int EXIT_SHUTDOWN = 8;
    public static final int EXIT_FAIL_ENTRY = 9;
    public static final int EXIT_INTR = 10;
    public static final int EXIT_NMI = 16;
    public static final int EXIT_INTERNAL_ERROR = 17;
    public static final int EXIT_SYSTEM_EVENT = 24;
    public static final int EXIT_IO_IN = 0;
    public static final int EXIT_IO_OUT = 1;
    public static final int INTERNAL_ERROR_EMULATION = 1;
    public static final int INTERNAL_ERROR_SIMUL_EX = 2;
    public static final int INTERNAL_ERROR_DELIVERY_EV = 3;

    // KVM_IOEVENTFD flags
    public static final int IOEVENTFD_FLAG_DATAMATCH = 1;
    public static final int IOEVENTFD_FLAG_PIO = 2;
    public static final int IOEVENTFD_FLAG_DEASSIGN = 4;
    // KVM_IRQFD flags
    public static final int IRQFD_FLAG_DEASSIGN = 1;
    public static final int IRQFD_FLAG_RESAMPLE = 2;
    // GSI routing entry types and irqchips
    public static final int IRQ_ROUTING_IRQCHIP = 1;
    public static final int IRQ_ROUTING_MSI = 2;
    public static final int IRQCHIP_PIC_MASTER = 0;
    public static final int IRQCHIP_PIC_SLAVE = 1;
    public static final int IRQCHIP_IOAPIC = 2;

    private KvmIoctls() {
    }
}
