package io.vmm4j.core.kvm;

/** Names of {@code kvm_run.exit_reason} values (linux/kvm.h KVM_EXIT_*), for counters and messages. */
public final class ExitReason {
    private static final String[] NAMES = {
        "unknown", "exception", "io", "hypercall", "debug", "hlt", "mmio", "irq_window_open", "shutdown", "fail_entry",
        "intr", "set_tpr", "tpr_access", "s390_sieic", "s390_reset", "dcr", "nmi", "internal_error", "osi", "papr_hcall",
        "s390_ucontrol", "watchdog", "s390_tsch", "epr", "system_event", "s390_stsi", "ioapic_eoi", "hyperv", "arm_nisv",
        "x86_rdmsr", "x86_wrmsr", "dirty_ring_full", "ap_reset_hold", "x86_bus_lock", "xen", "riscv_sbi", "riscv_csr",
        "notify", "loongarch_iocsr", "memory_fault",
    };

    /** Reasons at or above this are counted together. */
    public static final int COUNTED = 64;

    private ExitReason() {
    }

    /** Lower-case name without the KVM_EXIT_ prefix, e.g. {@code "io"}; unknown numbers as {@code "exit_42"}. */
    public static String name(int reason) {
        return reason >= 0 && reason < NAMES.length ? NAMES[reason] : "exit_" + reason;
    }
}
