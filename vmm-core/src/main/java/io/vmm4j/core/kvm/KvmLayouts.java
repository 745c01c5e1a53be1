package io.vmm4j.core.kvm;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.StructLayout;
import java.lang.invoke.VarHandle;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * The KVM structures vmm4j passes to and reads from the kernel, as named layouts
 * (include/uapi/linux/kvm.h, arch/x86/include/uapi/asm/kvm.h; native order and alignment, as the
 * ioctls take them), so every access goes through a field's name rather than a byte offset.
 * {@code LinuxConstantsTest} checks their sizes and offsets against the headers with gcc.
 */
public final class KvmLayouts {
    /** {@code struct kvm_cpuid_entry2}. */
    public static final StructLayout CPUID_ENTRY2 = MemoryLayout.structLayout(
            JAVA_INT.withName("function"), JAVA_INT.withName("index"), JAVA_INT.withName("flags"),
            JAVA_INT.withName("eax"), JAVA_INT.withName("ebx"), JAVA_INT.withName("ecx"), JAVA_INT.withName("edx"),
            MemoryLayout.sequenceLayout(3, JAVA_INT).withName("padding")).withName("kvm_cpuid_entry2");
    /** {@code struct kvm_cpuid2} without its flexible entries array. */
    public static final StructLayout CPUID2 = MemoryLayout.structLayout(
            JAVA_INT.withName("nent"), JAVA_INT.withName("padding")).withName("kvm_cpuid2");
    /** {@code struct kvm_msr_entry}. */
    public static final StructLayout MSR_ENTRY = MemoryLayout.structLayout(
            JAVA_INT.withName("index"), JAVA_INT.withName("reserved"), JAVA_LONG.withName("data")).withName("kvm_msr_entry");
    /** {@code struct kvm_msrs} without its flexible entries array. */
    public static final StructLayout MSRS = MemoryLayout.structLayout(
            JAVA_INT.withName("nmsrs"), JAVA_INT.withName("pad")).withName("kvm_msrs");
    /** {@code struct kvm_fpu}. */
    public static final StructLayout FPU = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(8 * 16, JAVA_BYTE).withName("fpr"),
            JAVA_SHORT.withName("fcw"), JAVA_SHORT.withName("fsw"), JAVA_BYTE.withName("ftwx"), JAVA_BYTE.withName("pad1"),
            JAVA_SHORT.withName("last_opcode"), JAVA_LONG.withName("last_ip"), JAVA_LONG.withName("last_dp"),
            MemoryLayout.sequenceLayout(16 * 16, JAVA_BYTE).withName("xmm"),
            JAVA_INT.withName("mxcsr"), JAVA_INT.withName("pad2")).withName("kvm_fpu");
    /** {@code struct kvm_lapic_state}: the local APIC's 1 KiB register page (KVM_APIC_REG_SIZE). */
    public static final StructLayout LAPIC_STATE = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(1024, JAVA_BYTE).withName("regs")).withName("kvm_lapic_state");
    /** {@code struct kvm_pit_config}. */
    public static final StructLayout PIT_CONFIG = MemoryLayout.structLayout(
            JAVA_INT.withName("flags"), MemoryLayout.sequenceLayout(15, JAVA_INT).withName("pad")).withName("kvm_pit_config");
    /** {@code struct kvm_irq_level}: the irq (a union with status) and the level. */
    public static final StructLayout IRQ_LEVEL = MemoryLayout.structLayout(
            JAVA_INT.withName("irq"), JAVA_INT.withName("level")).withName("kvm_irq_level");

    /** {@code struct kvm_userspace_memory_region}: one memory slot (KVM_SET_USER_MEMORY_REGION). */
    public static final StructLayout USERSPACE_MEMORY_REGION = MemoryLayout.structLayout(
            JAVA_INT.withName("slot"), JAVA_INT.withName("flags"), JAVA_LONG.withName("guest_phys_addr"),
            JAVA_LONG.withName("memory_size"), JAVA_LONG.withName("userspace_addr")).withName("kvm_userspace_memory_region");
    /** {@code struct kvm_irq_routing} without its flexible entries array. */
    public static final StructLayout IRQ_ROUTING = MemoryLayout.structLayout(
            JAVA_INT.withName("nr"), JAVA_INT.withName("flags")).withName("kvm_irq_routing");
    /** {@code struct kvm_irq_routing_irqchip}. */
    public static final StructLayout IRQ_ROUTING_IRQCHIP = MemoryLayout.structLayout(
            JAVA_INT.withName("irqchip"), JAVA_INT.withName("pin")).withName("kvm_irq_routing_irqchip");
    /** {@code struct kvm_irq_routing_msi}; its last word is a union of pad and devid, named devid here. */
    public static final StructLayout IRQ_ROUTING_MSI = MemoryLayout.structLayout(
            JAVA_INT.withName("address_lo"), JAVA_INT.withName("address_hi"), JAVA_INT.withName("data"),
            JAVA_INT.withName("devid")).withName("kvm_irq_routing_msi");
    /** {@code struct kvm_irq_routing_entry}: the union {@code u} holds the route of {@code type} (only irqchip and MSI here). */
    public static final StructLayout IRQ_ROUTING_ENTRY = MemoryLayout.structLayout(
            JAVA_INT.withName("gsi"), JAVA_INT.withName("type"), JAVA_INT.withName("flags"), JAVA_INT.withName("pad"),
            MemoryLayout.unionLayout(IRQ_ROUTING_IRQCHIP.withName("irqchip"), IRQ_ROUTING_MSI.withName("msi"),
                    MemoryLayout.sequenceLayout(8, JAVA_INT).withName("pad")).withName("u")).withName("kvm_irq_routing_entry");
    /** {@code struct kvm_irqfd}. */
    public static final StructLayout IRQFD = MemoryLayout.structLayout(
            JAVA_INT.withName("fd"), JAVA_INT.withName("gsi"), JAVA_INT.withName("flags"), JAVA_INT.withName("resamplefd"),
            MemoryLayout.sequenceLayout(16, JAVA_BYTE).withName("pad")).withName("kvm_irqfd");
    /** {@code struct kvm_ioeventfd}. */
    public static final StructLayout IOEVENTFD = MemoryLayout.structLayout(
            JAVA_LONG.withName("datamatch"), JAVA_LONG.withName("addr"), JAVA_INT.withName("len"), JAVA_INT.withName("fd"),
            JAVA_INT.withName("flags"), MemoryLayout.sequenceLayout(36, JAVA_BYTE).withName("pad")).withName("kvm_ioeventfd");
    /** {@code struct kvm_msi} (KVM_SIGNAL_MSI). */
    public static final StructLayout MSI = MemoryLayout.structLayout(
            JAVA_INT.withName("address_lo"), JAVA_INT.withName("address_hi"), JAVA_INT.withName("data"), JAVA_INT.withName("flags"),
            JAVA_INT.withName("devid"), MemoryLayout.sequenceLayout(12, JAVA_BYTE).withName("pad")).withName("kvm_msi");

    /** The general-purpose registers of {@code struct kvm_regs}, in the header's order (then rip and rflags). */
    static final String[] REGISTER_NAMES = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"};
    /** {@code struct kvm_regs}: 18 registers of 64 bits. */
    public static final StructLayout REGS = MemoryLayout.structLayout(
            java.util.Arrays.stream(REGISTER_NAMES).map(JAVA_LONG::withName).toArray(MemoryLayout[]::new)).withName("kvm_regs");
    /** {@code struct kvm_segment}. */
    public static final StructLayout SEGMENT = MemoryLayout.structLayout(
            JAVA_LONG.withName("base"), JAVA_INT.withName("limit"), JAVA_SHORT.withName("selector"), JAVA_BYTE.withName("type"),
            JAVA_BYTE.withName("present"), JAVA_BYTE.withName("dpl"), JAVA_BYTE.withName("db"), JAVA_BYTE.withName("s"),
            JAVA_BYTE.withName("l"), JAVA_BYTE.withName("g"), JAVA_BYTE.withName("avl"), JAVA_BYTE.withName("unusable"),
            JAVA_BYTE.withName("padding")).withName("kvm_segment");
    /** {@code struct kvm_dtable}: a descriptor table register (GDTR, IDTR). */
    public static final StructLayout DTABLE = MemoryLayout.structLayout(
            JAVA_LONG.withName("base"), JAVA_SHORT.withName("limit"),
            MemoryLayout.sequenceLayout(3, JAVA_SHORT).withName("padding")).withName("kvm_dtable");
    /** {@code struct kvm_sregs}; the interrupt bitmap has (KVM_NR_INTERRUPTS + 63) / 64 = 4 words. */
    public static final StructLayout SREGS = MemoryLayout.structLayout(
            SEGMENT.withName("cs"), SEGMENT.withName("ds"), SEGMENT.withName("es"), SEGMENT.withName("fs"),
            SEGMENT.withName("gs"), SEGMENT.withName("ss"), SEGMENT.withName("tr"), SEGMENT.withName("ldt"),
            DTABLE.withName("gdt"), DTABLE.withName("idt"),
            JAVA_LONG.withName("cr0"), JAVA_LONG.withName("cr2"), JAVA_LONG.withName("cr3"), JAVA_LONG.withName("cr4"),
            JAVA_LONG.withName("cr8"), JAVA_LONG.withName("efer"), JAVA_LONG.withName("apic_base"),
            MemoryLayout.sequenceLayout(4, JAVA_LONG).withName("interrupt_bitmap")).withName("kvm_sregs");

    /**
     * {@code struct kvm_run} (x86): the exit union, anonymous in C, is named {@code exit} here and
     * spells out the exits vmm4j serves or reports; the synced registers ({@code s}) are unused.
     * The mapping is larger (KVM_GET_VCPU_MMAP_SIZE): PIO data follows in the same pages.
     */
    public static final StructLayout RUN = MemoryLayout.structLayout(
            JAVA_BYTE.withName("request_interrupt_window"), JAVA_BYTE.withName("immediate_exit"),
            MemoryLayout.sequenceLayout(6, JAVA_BYTE).withName("padding1"),
            JAVA_INT.withName("exit_reason"), JAVA_BYTE.withName("ready_for_interrupt_injection"), JAVA_BYTE.withName("if_flag"),
            JAVA_SHORT.withName("flags"), JAVA_LONG.withName("cr8"), JAVA_LONG.withName("apic_base"),
            MemoryLayout.unionLayout(
                    MemoryLayout.structLayout(JAVA_LONG.withName("hardware_exit_reason")).withName("hw"),
                    MemoryLayout.structLayout(JAVA_LONG.withName("hardware_entry_failure_reason"), JAVA_INT.withName("cpu"),
                            MemoryLayout.paddingLayout(4)).withName("fail_entry"),
                    MemoryLayout.structLayout(JAVA_INT.withName("exception"), JAVA_INT.withName("error_code")).withName("ex"),
                    MemoryLayout.structLayout(JAVA_BYTE.withName("direction"), JAVA_BYTE.withName("size"), JAVA_SHORT.withName("port"),
                            JAVA_INT.withName("count"), JAVA_LONG.withName("data_offset")).withName("io"),
                    MemoryLayout.structLayout(JAVA_LONG.withName("phys_addr"), MemoryLayout.sequenceLayout(8, JAVA_BYTE).withName("data"),
                            JAVA_INT.withName("len"), JAVA_BYTE.withName("is_write"), MemoryLayout.paddingLayout(3)).withName("mmio"),
                    MemoryLayout.structLayout(JAVA_INT.withName("suberror"), JAVA_INT.withName("ndata"),
                            MemoryLayout.sequenceLayout(16, JAVA_LONG).withName("data")).withName("internal"),
                    // in C the data words share an anonymous union with flags
                    MemoryLayout.structLayout(JAVA_INT.withName("type"), JAVA_INT.withName("ndata"),
                            MemoryLayout.sequenceLayout(16, JAVA_LONG).withName("data")).withName("system_event"),
                    MemoryLayout.sequenceLayout(256, JAVA_BYTE).withName("padding")).withName("exit"),
            JAVA_LONG.withName("kvm_valid_regs"), JAVA_LONG.withName("kvm_dirty_regs"),
            MemoryLayout.unionLayout(MemoryLayout.sequenceLayout(2048, JAVA_BYTE).withName("padding")).withName("s")) // SYNC_REGS_SIZE_BYTES
            .withName("kvm_run");

    private KvmLayouts() {
    }

    /** Byte offset of the member at {@code path} (a field name, or group names outermost first) in {@code struct}. */
    public static long offset(StructLayout struct, String... path) {
        return struct.byteOffset(elements(path));
    }

    /**
     * A VarHandle on the member at {@code path} of {@code struct}, with coordinates (segment, offset
     * of the struct in it): {@code (int) handle.get(s, 0L)} reads the field of a struct at the
     * segment's start.
     */
    static VarHandle handle(StructLayout struct, String... path) {
        return struct.varHandle(elements(path));
    }

    private static MemoryLayout.PathElement[] elements(String... path) {
        MemoryLayout.PathElement[] e = new MemoryLayout.PathElement[path.length];
        for (int i = 0; i < path.length; i++) {
            e[i] = MemoryLayout.PathElement.groupElement(path[i]);
        }
        return e;
    }
}
