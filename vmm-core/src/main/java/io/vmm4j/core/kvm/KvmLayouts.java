package io.vmm4j.core.kvm;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * The x86 KVM structures the Linux boot needs, as named layouts (include/uapi/linux/kvm.h,
 * arch/x86/include/uapi/asm/kvm.h; native order and alignment, as the ioctls take them).
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

    private KvmLayouts() {
    }

    /** Byte offset of {@code field} in {@code struct}. */
    public static long offset(StructLayout struct, String field) {
        return struct.byteOffset(MemoryLayout.PathElement.groupElement(field));
    }

    static ValueLayout field(StructLayout struct, String field) {
        return (ValueLayout) struct.select(MemoryLayout.PathElement.groupElement(field));
    }
}
