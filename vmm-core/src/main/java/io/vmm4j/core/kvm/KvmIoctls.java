package io.vmm4j.core.kvm;

import io.vmm4j.core.linux.Ioctl;

/** /dev/kvm ioctl requests and struct sizes (include/uapi/linux/kvm.h, x86-64). */
public final class KvmIoctls {
    public static final int KVMIO = 0xAE;
    public static final int API_VERSION = 12;

    public static final long SIZEOF_USERSPACE_MEMORY_REGION = 32;
    public static final long SIZEOF_REGS = 144;
    public static final long SIZEOF_SREGS = 312;
    public static final long SIZEOF_IRQFD = 32;
    public static final long SIZEOF_IOEVENTFD = 64;
    public static final long SIZEOF_IRQ_ROUTING = 8;
    public static final long SIZEOF_IRQ_ROUTING_ENTRY = 48;
    public static final long SIZEOF_CPUID2 = 8;

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
    public static final long SET_GSI_ROUTING = Ioctl.iow(KVMIO, 0x6a, SIZEOF_IRQ_ROUTING);
    public static final long IRQFD = Ioctl.iow(KVMIO, 0x76, SIZEOF_IRQFD);
    public static final long IOEVENTFD = Ioctl.iow(KVMIO, 0x79, SIZEOF_IOEVENTFD);
    // vCPU ioctls
    public static final long RUN = Ioctl.io(KVMIO, 0x80);
    public static final long GET_REGS = Ioctl.ior(KVMIO, 0x81, SIZEOF_REGS);
    public static final long SET_REGS = Ioctl.iow(KVMIO, 0x82, SIZEOF_REGS);
    public static final long GET_SREGS = Ioctl.ior(KVMIO, 0x83, SIZEOF_SREGS);
    public static final long SET_SREGS = Ioctl.iow(KVMIO, 0x84, SIZEOF_SREGS);
    public static final long SET_CPUID2 = Ioctl.iow(KVMIO, 0x90, SIZEOF_CPUID2);

    private KvmIoctls() {
    }
}
