package io.vmm4j.core.boot;

import io.vmm4j.core.kvm.CpuidTable;
import io.vmm4j.core.kvm.KvmVcpu;
import io.vmm4j.core.kvm.LocalApicState;

import java.lang.foreign.Arena;
import java.util.List;

/**
 * What a vCPU needs from the VMM before a Linux kernel runs on it, as Firecracker
 * (arch/x86_64/{regs,msr,interrupts}.rs) and Cloud Hypervisor set it up: normalised CPUID, the
 * boot MSRs, a reset FPU, and the local APIC's LINT0 as ExtINT (the PIC, virtual-wire mode) and
 * LINT1 as NMI. The register state for the entry itself is {@link LinuxLoader#enter}.
 */
public final class BootVcpuState {
    // MSR numbers: Intel SDM Vol. 4 Table 2-2; AMD APM Vol. 2 Appendix A
    public static final int MSR_IA32_TSC = 0x10;
    public static final int MSR_IA32_SYSENTER_CS = 0x174;
    public static final int MSR_IA32_SYSENTER_ESP = 0x175;
    public static final int MSR_IA32_SYSENTER_EIP = 0x176;
    public static final int MSR_IA32_MISC_ENABLE = 0x1A0;
    public static final int MSR_MTRR_DEF_TYPE = 0x2FF;
    public static final int MSR_STAR = 0xC000_0081;
    public static final int MSR_LSTAR = 0xC000_0082;
    public static final int MSR_CSTAR = 0xC000_0083;
    public static final int MSR_SYSCALL_MASK = 0xC000_0084;
    public static final int MSR_KERNEL_GS_BASE = 0xC000_0102;
    /** IA32_MISC_ENABLE bit 0: fast-string operations (rep movs/stos) enabled. */
    public static final long MISC_ENABLE_FAST_STRING = 1;
    /** IA32_MTRR_DEF_TYPE: MTRRs enabled (bit 11), default memory type write-back (6) (SDM Vol. 3A §11.11.2.1). */
    public static final long MTRR_ENABLED_DEFAULT_WRITE_BACK = (1 << 11) | 6;
    /** x87 control word after FNINIT: all exceptions masked, 64-bit precision, round to nearest. */
    public static final int FPU_CONTROL_WORD = 0x37F;
    /** MXCSR after reset: all SIMD exceptions masked. */
    public static final int MXCSR_DEFAULT = 0x1F80;

    private BootVcpuState() {
    }

    /** The MSRs at their boot values: the syscall/sysenter MSRs and the TSC zero, fast strings on, MTRRs write-back. */
    public static List<KvmVcpu.Msr> bootMsrs() {
        return List.of(
                new KvmVcpu.Msr(MSR_IA32_SYSENTER_CS, 0),
                new KvmVcpu.Msr(MSR_IA32_SYSENTER_ESP, 0),
                new KvmVcpu.Msr(MSR_IA32_SYSENTER_EIP, 0),
                new KvmVcpu.Msr(MSR_STAR, 0),
                new KvmVcpu.Msr(MSR_CSTAR, 0),
                new KvmVcpu.Msr(MSR_KERNEL_GS_BASE, 0),
                new KvmVcpu.Msr(MSR_SYSCALL_MASK, 0),
                new KvmVcpu.Msr(MSR_LSTAR, 0),
                new KvmVcpu.Msr(MSR_IA32_TSC, 0),
                new KvmVcpu.Msr(MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING),
                new KvmVcpu.Msr(MSR_MTRR_DEF_TYPE, MTRR_ENABLED_DEFAULT_WRITE_BACK));
    }

    /**
     * Configures {@code vcpu} (APIC id {@code apicId} of {@code cpuCount}) from {@code supported}
     * (KVM_GET_SUPPORTED_CPUID). Needs the in-kernel irqchip (for the LAPIC); call before its first run.
     */
    public static CpuidTable configure(KvmVcpu vcpu, CpuidTable supported, boolean tscDeadline, int apicId, int cpuCount) {
        CpuidTable cpuid = supported.normalizedFor(apicId, cpuCount, tscDeadline);
        try (Arena arena = Arena.ofConfined()) {
            vcpu.setCpuid(cpuid.toKvm(arena));
        }
        vcpu.setMsrs(bootMsrs());
        vcpu.setFpu(FPU_CONTROL_WORD, MXCSR_DEFAULT);
        LocalApicState lapic = vcpu.getLapic();
        lapic.setDeliveryMode(LocalApicState.LVT_LINT0, LocalApicState.DELIVERY_EXTINT);
        lapic.setDeliveryMode(LocalApicState.LVT_LINT1, LocalApicState.DELIVERY_NMI);
        vcpu.setLapic(lapic);
        return cpuid;
    }
}
