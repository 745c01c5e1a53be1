package io.vmm4j.core.linux;

import io.vmm4j.core.kvm.KvmIoctls;
import io.vmm4j.core.kvm.KvmLayouts;
import io.vmm4j.core.testing.HeaderConstants;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every libc/KVM constant and struct size vmm4j uses equals what the system headers say. */
class LinuxConstantsTest {
    @Test
    void libcConstantsMatchHeaders() throws Exception {
        new HeaderConstants()
                .include("fcntl.h", "sys/eventfd.h", "sys/mman.h", "sys/epoll.h", "poll.h", "sys/socket.h",
                        "sys/un.h", "sys/uio.h", "signal.h", "sys/wait.h", "spawn.h", "linux/memfd.h")
                .expect("O_RDONLY", LibC.O_RDONLY).expect("O_WRONLY", LibC.O_WRONLY).expect("O_RDWR", LibC.O_RDWR)
                .expect("O_NONBLOCK", LibC.O_NONBLOCK).expect("O_CLOEXEC", LibC.O_CLOEXEC)
                .expect("F_GETFD", LibC.F_GETFD).expect("F_SETFD", LibC.F_SETFD).expect("F_GETFL", LibC.F_GETFL)
                .expect("F_SETFL", LibC.F_SETFL).expect("FD_CLOEXEC", LibC.FD_CLOEXEC)
                .expect("EFD_NONBLOCK", LibC.EFD_NONBLOCK).expect("EFD_CLOEXEC", LibC.EFD_CLOEXEC)
                .expect("MFD_CLOEXEC", LibC.MFD_CLOEXEC).expect("MFD_ALLOW_SEALING", LibC.MFD_ALLOW_SEALING)
                .expect("PROT_NONE", LibC.PROT_NONE).expect("PROT_READ", LibC.PROT_READ).expect("PROT_WRITE", LibC.PROT_WRITE)
                .expect("MAP_SHARED", LibC.MAP_SHARED).expect("MAP_PRIVATE", LibC.MAP_PRIVATE)
                .expect("MAP_ANONYMOUS", LibC.MAP_ANONYMOUS).expect("MAP_NORESERVE", LibC.MAP_NORESERVE)
                .expect("EPOLL_CLOEXEC", LibC.EPOLL_CLOEXEC).expect("EPOLL_CTL_ADD", LibC.EPOLL_CTL_ADD)
                .expect("EPOLL_CTL_DEL", LibC.EPOLL_CTL_DEL).expect("EPOLL_CTL_MOD", LibC.EPOLL_CTL_MOD)
                .expect("EPOLLIN", LibC.EPOLLIN).expect("EPOLLOUT", LibC.EPOLLOUT).expect("EPOLLERR", LibC.EPOLLERR)
                .expect("EPOLLHUP", LibC.EPOLLHUP).expect("EPOLLRDHUP", LibC.EPOLLRDHUP)
                .expect("(unsigned int)EPOLLET", LibC.EPOLLET & 0xFFFF_FFFFL)
                .expect("POLLIN", LibC.POLLIN).expect("POLLOUT", LibC.POLLOUT)
                .expect("AF_UNIX", LibC.AF_UNIX).expect("SOCK_STREAM", LibC.SOCK_STREAM).expect("SOCK_DGRAM", LibC.SOCK_DGRAM)
                .expect("SOCK_SEQPACKET", LibC.SOCK_SEQPACKET).expect("SOCK_NONBLOCK", LibC.SOCK_NONBLOCK)
                .expect("SOCK_CLOEXEC", LibC.SOCK_CLOEXEC).expect("SOL_SOCKET", LibC.SOL_SOCKET)
                .expect("SCM_RIGHTS", LibC.SCM_RIGHTS).expect("MSG_DONTWAIT", LibC.MSG_DONTWAIT)
                .expect("MSG_NOSIGNAL", LibC.MSG_NOSIGNAL).expect("MSG_CTRUNC", LibC.MSG_CTRUNC)
                .expect("MSG_TRUNC", LibC.MSG_TRUNC).expect("MSG_CMSG_CLOEXEC", LibC.MSG_CMSG_CLOEXEC)
                .expect("SIGKILL", LibC.SIGKILL).expect("SIGTERM", LibC.SIGTERM).expect("WNOHANG", LibC.WNOHANG)
                .expectLayout("iovec", LibC.IOVEC)
                .expectLayout("cmsghdr", LibC.CMSGHDR)
                .expectLayout("epoll_event", LibC.EPOLL_EVENT)
                .expect("__builtin_offsetof(struct epoll_event, data)", 4)
                .expectLayout("msghdr", LibC.MSGHDR)
                .expect("sizeof(struct cmsghdr)", LibC.CMSG_HEADER)
                .expect("CMSG_SPACE(3 * sizeof(int))", UnixSocket.cmsgSpace(3))
                .expect("sizeof(struct sockaddr_un)", LibC.SOCKADDR_UN_SIZE)
                .expect("sizeof(((struct sockaddr_un *)0)->sun_path)", LibC.SUN_PATH_MAX)
                .expect("sizeof(posix_spawn_file_actions_t) <= " + LibC.SPAWN_FILE_ACTIONS_SIZE, 1)
                .expect("sizeof(struct sigaction)", LibC.SIGACTION_SIZE)
                .expect("__builtin_offsetof(struct sigaction, sa_flags)", LibC.SIGACTION_FLAGS_OFFSET)
                .expect("__builtin_offsetof(struct sigaction, sa_handler)", 0)
                .verify();
    }

    @Test
    void readWriteFlagConstantsMatchHeaders() throws Exception {
        new HeaderConstants().include("linux/fs.h").expect("(int)RWF_NOWAIT", LibC.RWF_NOWAIT).verify();
    }

    @Test
    void sealConstantsMatchHeaders() throws Exception {
        new HeaderConstants().include("linux/fcntl.h")
                .expect("F_ADD_SEALS", LibC.F_ADD_SEALS).expect("F_GET_SEALS", LibC.F_GET_SEALS)
                .expect("F_SEAL_SEAL", LibC.F_SEAL_SEAL).expect("F_SEAL_SHRINK", LibC.F_SEAL_SHRINK)
                .expect("F_SEAL_GROW", LibC.F_SEAL_GROW)
                .verify();
    }

    @Test
    void errnoValuesMatchHeaders() throws Exception {
        new HeaderConstants().include("errno.h")
                .expect("EPERM", Errno.EPERM).expect("ENOENT", Errno.ENOENT).expect("EINTR", Errno.EINTR)
                .expect("EIO", Errno.EIO).expect("EBADF", Errno.EBADF).expect("ECHILD", Errno.ECHILD)
                .expect("EAGAIN", Errno.EAGAIN).expect("ENOMEM", Errno.ENOMEM).expect("EACCES", Errno.EACCES)
                .expect("EFAULT", Errno.EFAULT).expect("EBUSY", Errno.EBUSY).expect("EEXIST", Errno.EEXIST)
                .expect("ENODEV", Errno.ENODEV).expect("EINVAL", Errno.EINVAL).expect("ENOTTY", Errno.ENOTTY)
                .expect("ENOSPC", Errno.ENOSPC).expect("EPIPE", Errno.EPIPE).expect("ENOSYS", Errno.ENOSYS)
                .expect("ENOTSOCK", Errno.ENOTSOCK).expect("EOPNOTSUPP", Errno.EOPNOTSUPP)
                .expect("EADDRINUSE", Errno.EADDRINUSE).expect("ECONNRESET", Errno.ECONNRESET)
                .expect("ENOTCONN", Errno.ENOTCONN).expect("ECONNREFUSED", Errno.ECONNREFUSED)
                .verify();
    }

    @Test
    void kvmIoctlsMatchHeaders() throws Exception {
        new HeaderConstants().include("linux/kvm.h")
                .expect("KVMIO", KvmIoctls.KVMIO).expect("KVM_API_VERSION", KvmIoctls.API_VERSION)
                .expect("sizeof(struct kvm_userspace_memory_region)", KvmIoctls.SIZEOF_USERSPACE_MEMORY_REGION)
                .expect("sizeof(struct kvm_regs)", KvmIoctls.SIZEOF_REGS)
                .expect("sizeof(struct kvm_sregs)", KvmIoctls.SIZEOF_SREGS)
                .expect("sizeof(struct kvm_irqfd)", KvmIoctls.SIZEOF_IRQFD)
                .expect("sizeof(struct kvm_ioeventfd)", KvmIoctls.SIZEOF_IOEVENTFD)
                .expect("sizeof(struct kvm_irq_routing)", KvmIoctls.SIZEOF_IRQ_ROUTING)
                .expect("sizeof(struct kvm_irq_routing_entry)", KvmIoctls.SIZEOF_IRQ_ROUTING_ENTRY)
                .expect("sizeof(struct kvm_cpuid2)", KvmIoctls.SIZEOF_CPUID2)
                .expect("KVM_GET_API_VERSION", KvmIoctls.GET_API_VERSION)
                .expect("KVM_CREATE_VM", KvmIoctls.CREATE_VM)
                .expect("KVM_CHECK_EXTENSION", KvmIoctls.CHECK_EXTENSION)
                .expect("KVM_GET_VCPU_MMAP_SIZE", KvmIoctls.GET_VCPU_MMAP_SIZE)
                .expect("KVM_GET_SUPPORTED_CPUID", KvmIoctls.GET_SUPPORTED_CPUID)
                .expect("KVM_CREATE_VCPU", KvmIoctls.CREATE_VCPU)
                .expect("KVM_SET_USER_MEMORY_REGION", KvmIoctls.SET_USER_MEMORY_REGION)
                .expect("KVM_SET_TSS_ADDR", KvmIoctls.SET_TSS_ADDR)
                .expect("KVM_SET_IDENTITY_MAP_ADDR", KvmIoctls.SET_IDENTITY_MAP_ADDR)
                .expect("KVM_CREATE_IRQCHIP", KvmIoctls.CREATE_IRQCHIP)
                .expect("KVM_SET_GSI_ROUTING", KvmIoctls.SET_GSI_ROUTING)
                .expect("KVM_IRQFD", KvmIoctls.IRQFD)
                .expect("KVM_IOEVENTFD", KvmIoctls.IOEVENTFD)
                .expect("KVM_RUN", KvmIoctls.RUN)
                .expect("KVM_GET_REGS", KvmIoctls.GET_REGS).expect("KVM_SET_REGS", KvmIoctls.SET_REGS)
                .expect("KVM_GET_SREGS", KvmIoctls.GET_SREGS).expect("KVM_SET_SREGS", KvmIoctls.SET_SREGS)
                .expect("KVM_SET_CPUID2", KvmIoctls.SET_CPUID2)
                .expect("KVM_SIGNAL_MSI", KvmIoctls.SIGNAL_MSI)
                .expect("KVM_GET_TSC_KHZ", KvmIoctls.GET_TSC_KHZ)
                .expect("sizeof(struct kvm_msi)", KvmIoctls.SIZEOF_MSI)
                .expect("sizeof(struct kvm_segment)", KvmIoctls.SIZEOF_SEGMENT)
                .expect("sizeof(struct kvm_cpuid_entry2)", KvmIoctls.SIZEOF_CPUID_ENTRY2)
                .verify();
    }

    @Test
    void kvmBootIoctlsAndLayoutsMatchHeaders() throws Exception {
        HeaderConstants c = new HeaderConstants().include("stddef.h", "linux/kvm.h")
                .expect("KVM_IRQ_LINE", KvmIoctls.IRQ_LINE).expect("KVM_CREATE_PIT2", KvmIoctls.CREATE_PIT2)
                .expect("KVM_GET_MSRS", KvmIoctls.GET_MSRS).expect("KVM_SET_MSRS", KvmIoctls.SET_MSRS)
                .expect("KVM_GET_FPU", KvmIoctls.GET_FPU).expect("KVM_SET_FPU", KvmIoctls.SET_FPU)
                .expect("KVM_GET_LAPIC", KvmIoctls.GET_LAPIC).expect("KVM_SET_LAPIC", KvmIoctls.SET_LAPIC)
                .expect("KVM_CAP_PIT2", KvmIoctls.CAP_PIT2).expect("KVM_CAP_TSC_DEADLINE_TIMER", KvmIoctls.CAP_TSC_DEADLINE_TIMER)
                .expect("KVM_PIT_SPEAKER_DUMMY", KvmIoctls.PIT_SPEAKER_DUMMY)
                .expect("KVM_CPUID_FLAG_SIGNIFCANT_INDEX", KvmIoctls.CPUID_FLAG_SIGNIFCANT_INDEX)
                .expect("sizeof(struct kvm_irq_level)", KvmIoctls.SIZEOF_IRQ_LEVEL)
                .expect("sizeof(struct kvm_pit_config)", KvmIoctls.SIZEOF_PIT_CONFIG)
                .expect("sizeof(struct kvm_msrs)", KvmIoctls.SIZEOF_MSRS)
                .expect("sizeof(struct kvm_msr_entry)", KvmIoctls.SIZEOF_MSR_ENTRY)
                .expect("sizeof(struct kvm_fpu)", KvmIoctls.SIZEOF_FPU)
                .expect("sizeof(struct kvm_lapic_state)", KvmIoctls.SIZEOF_LAPIC_STATE);
        c.expectLayout("kvm_cpuid_entry2", KvmLayouts.CPUID_ENTRY2)
                .expectLayout("kvm_cpuid2", KvmLayouts.CPUID2)
                .expectLayout("kvm_msr_entry", KvmLayouts.MSR_ENTRY)
                .expectLayout("kvm_msrs", KvmLayouts.MSRS)
                .expectLayout("kvm_fpu", KvmLayouts.FPU)
                .expectLayout("kvm_lapic_state", KvmLayouts.LAPIC_STATE)
                .expectLayout("kvm_pit_config", KvmLayouts.PIT_CONFIG)
                .expectLayout("kvm_irq_level", KvmLayouts.IRQ_LEVEL)
                .verify();
    }

    @Test
    void kvmCapabilitiesExitReasonsAndFlagsMatchHeaders() throws Exception {
        new HeaderConstants().include("linux/kvm.h")
                .expect("KVM_CAP_IRQCHIP", KvmIoctls.CAP_IRQCHIP).expect("KVM_CAP_USER_MEMORY", KvmIoctls.CAP_USER_MEMORY)
                .expect("KVM_CAP_SET_TSS_ADDR", KvmIoctls.CAP_SET_TSS_ADDR).expect("KVM_CAP_NR_MEMSLOTS", KvmIoctls.CAP_NR_MEMSLOTS)
                .expect("KVM_CAP_IRQ_ROUTING", KvmIoctls.CAP_IRQ_ROUTING).expect("KVM_CAP_IRQFD", KvmIoctls.CAP_IRQFD)
                .expect("KVM_CAP_IOEVENTFD", KvmIoctls.CAP_IOEVENTFD)
                .expect("KVM_CAP_SET_IDENTITY_MAP_ADDR", KvmIoctls.CAP_SET_IDENTITY_MAP_ADDR)
                .expect("KVM_CAP_EXT_CPUID", KvmIoctls.CAP_EXT_CPUID).expect("KVM_CAP_SIGNAL_MSI", KvmIoctls.CAP_SIGNAL_MSI)
                .expect("KVM_CAP_IRQFD_RESAMPLE", KvmIoctls.CAP_IRQFD_RESAMPLE).expect("KVM_CAP_GET_TSC_KHZ", KvmIoctls.CAP_GET_TSC_KHZ)
                .expect("KVM_CAP_IOEVENTFD_ANY_LENGTH", KvmIoctls.CAP_IOEVENTFD_ANY_LENGTH)
                .expect("KVM_CAP_IMMEDIATE_EXIT", KvmIoctls.CAP_IMMEDIATE_EXIT)
                .expect("KVM_EXIT_UNKNOWN", KvmIoctls.EXIT_UNKNOWN).expect("KVM_EXIT_EXCEPTION", KvmIoctls.EXIT_EXCEPTION)
                .expect("KVM_EXIT_IO", KvmIoctls.EXIT_IO).expect("KVM_EXIT_HYPERCALL", KvmIoctls.EXIT_HYPERCALL)
                .expect("KVM_EXIT_DEBUG", KvmIoctls.EXIT_DEBUG).expect("KVM_EXIT_HLT", KvmIoctls.EXIT_HLT)
                .expect("KVM_EXIT_MMIO", KvmIoctls.EXIT_MMIO).expect("KVM_EXIT_IRQ_WINDOW_OPEN", KvmIoctls.EXIT_IRQ_WINDOW_OPEN)
                .expect("KVM_EXIT_SHUTDOWN", KvmIoctls.EXIT_SHUTDOWN).expect("KVM_EXIT_FAIL_ENTRY", KvmIoctls.EXIT_FAIL_ENTRY)
                .expect("KVM_EXIT_INTR", KvmIoctls.EXIT_INTR).expect("KVM_EXIT_NMI", KvmIoctls.EXIT_NMI)
                .expect("KVM_EXIT_INTERNAL_ERROR", KvmIoctls.EXIT_INTERNAL_ERROR)
                .expect("KVM_EXIT_SYSTEM_EVENT", KvmIoctls.EXIT_SYSTEM_EVENT)
                .expect("KVM_EXIT_IO_IN", KvmIoctls.EXIT_IO_IN).expect("KVM_EXIT_IO_OUT", KvmIoctls.EXIT_IO_OUT)
                .expect("KVM_INTERNAL_ERROR_EMULATION", KvmIoctls.INTERNAL_ERROR_EMULATION)
                .expect("KVM_INTERNAL_ERROR_SIMUL_EX", KvmIoctls.INTERNAL_ERROR_SIMUL_EX)
                .expect("KVM_INTERNAL_ERROR_DELIVERY_EV", KvmIoctls.INTERNAL_ERROR_DELIVERY_EV)
                .expect("KVM_IOEVENTFD_FLAG_DATAMATCH", KvmIoctls.IOEVENTFD_FLAG_DATAMATCH)
                .expect("KVM_IOEVENTFD_FLAG_PIO", KvmIoctls.IOEVENTFD_FLAG_PIO)
                .expect("KVM_IOEVENTFD_FLAG_DEASSIGN", KvmIoctls.IOEVENTFD_FLAG_DEASSIGN)
                .expect("KVM_IRQFD_FLAG_DEASSIGN", KvmIoctls.IRQFD_FLAG_DEASSIGN)
                .expect("KVM_IRQFD_FLAG_RESAMPLE", KvmIoctls.IRQFD_FLAG_RESAMPLE)
                .expect("KVM_IRQ_ROUTING_IRQCHIP", KvmIoctls.IRQ_ROUTING_IRQCHIP)
                .expect("KVM_IRQ_ROUTING_MSI", KvmIoctls.IRQ_ROUTING_MSI)
                .expect("KVM_IRQCHIP_PIC_MASTER", KvmIoctls.IRQCHIP_PIC_MASTER)
                .expect("KVM_IRQCHIP_PIC_SLAVE", KvmIoctls.IRQCHIP_PIC_SLAVE)
                .expect("KVM_IRQCHIP_IOAPIC", KvmIoctls.IRQCHIP_IOAPIC)
                .verify();
    }

    @Test
    void kvmStructLayoutsMatchHeaders() throws Exception {
        new HeaderConstants().include("stddef.h", "linux/kvm.h")
                .expectLayout("kvm_run", KvmLayouts.RUN, "exit") // the exit union is anonymous in C
                .expectLayout("kvm_regs", KvmLayouts.REGS)
                .expectLayout("kvm_segment", KvmLayouts.SEGMENT)
                .expectLayout("kvm_dtable", KvmLayouts.DTABLE)
                .expectLayout("kvm_sregs", KvmLayouts.SREGS)
                .expectLayout("kvm_userspace_memory_region", KvmLayouts.USERSPACE_MEMORY_REGION)
                .expectLayout("kvm_irq_routing", KvmLayouts.IRQ_ROUTING)
                .expectLayout("kvm_irq_routing_irqchip", KvmLayouts.IRQ_ROUTING_IRQCHIP)
                .expectLayout("kvm_irq_routing_msi", KvmLayouts.IRQ_ROUTING_MSI)
                .expectLayout("kvm_irq_routing_entry", KvmLayouts.IRQ_ROUTING_ENTRY)
                .expectLayout("kvm_irqfd", KvmLayouts.IRQFD)
                .expectLayout("kvm_ioeventfd", KvmLayouts.IOEVENTFD)
                .expectLayout("kvm_msi", KvmLayouts.MSI)
                // KvmRegs' register numbers index the struct's 64-bit fields
                .expect("offsetof(struct kvm_regs, rip)", 8L * io.vmm4j.core.kvm.KvmRegs.RIP)
                .expect("offsetof(struct kvm_regs, rflags)", 8L * io.vmm4j.core.kvm.KvmRegs.RFLAGS)
                .expect("offsetof(struct kvm_regs, rdi)", 8L * io.vmm4j.core.kvm.KvmRegs.RDI)
                .verify();
    }

    @Test
    void ioctlEncodingFollowsTheKernelLayout() {
        // _IOR(0xAF, 0x00, __u64) is VHOST_GET_FEATURES: read dir (2) << 30 | size 8 << 16 | type << 8 | nr
        assertTrue(Ioctl.ior(0xAF, 0x00, 8) == 0x8008AF00L);
        assertTrue(Ioctl.iow(0xAF, 0x00, 8) == 0x4008AF00L);
        assertTrue(Ioctl.iowr(0xAF, 0x12, 8) == 0xC008AF12L);
        assertTrue(Ioctl.io(0xAE, 0x80) == 0xAE80L);
    }
}
