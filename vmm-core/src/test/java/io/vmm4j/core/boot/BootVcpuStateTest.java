package io.vmm4j.core.boot;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.kvm.CpuidTable;
import io.vmm4j.core.kvm.Kvm;
import io.vmm4j.core.kvm.KvmException;
import io.vmm4j.core.kvm.KvmVcpu;
import io.vmm4j.core.kvm.KvmVm;
import io.vmm4j.core.kvm.LocalApicState;
import io.vmm4j.core.linux.LinuxException;
import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The boot vCPU state reaches this host's KVM: MSRs, FPU, LAPIC LINT0/LINT1, the PIT and IRQ lines. */
class BootVcpuStateTest {
    @Test
    void configureSetsMsrsFpuAndLapicLints() {
        HostRequirements.requireKvm();
        try (Kvm kvm = Kvm.open(); Arena a = Arena.ofConfined(); KvmVm vm = kvm.createVm()) {
            vm.createIrqchip();
            KvmVcpu vcpu = vm.createVcpu(0, new Bus("pio"), new Bus("mmio"));
            CpuidTable cpuid = BootVcpuState.configure(vcpu, CpuidTable.read(kvm.supportedCpuid(a)), false, 0, 1);
            assertTrue(cpuid.hypervisorSignature().startsWith("KVMKVMKVM"));

            List<KvmVcpu.Msr> msrs = vcpu.getMsrs(BootVcpuState.MSR_IA32_MISC_ENABLE, BootVcpuState.MSR_MTRR_DEF_TYPE,
                    BootVcpuState.MSR_LSTAR);
            assertEquals(1, msrs.get(0).value() & BootVcpuState.MISC_ENABLE_FAST_STRING, msrs.toString());
            assertEquals(BootVcpuState.MTRR_ENABLED_DEFAULT_WRITE_BACK, msrs.get(1).value(), msrs.toString());
            assertEquals(0, msrs.get(2).value());

            assertEquals(0x37F, vcpu.fpuControlWords() & 0xFFFF, "x87 control word");

            LocalApicState lapic = vcpu.getLapic();
            assertEquals(LocalApicState.DELIVERY_EXTINT, lapic.deliveryMode(LocalApicState.LVT_LINT0));
            assertEquals(LocalApicState.DELIVERY_NMI, lapic.deliveryMode(LocalApicState.LVT_LINT1));
        }
    }

    @Test
    void anMsrKvmDoesNotKnowIsNamed() {
        HostRequirements.requireKvm();
        try (Kvm kvm = Kvm.open(); KvmVm vm = kvm.createVm()) {
            KvmVcpu vcpu = vm.createVcpu(0, new Bus("pio"), new Bus("mmio"));
            KvmException e = assertThrows(KvmException.class, () -> vcpu.setMsrs(List.of(
                    new KvmVcpu.Msr(BootVcpuState.MSR_IA32_TSC, 0), new KvmVcpu.Msr(0x2, 0))));
            assertTrue(e.getMessage().contains("set 1 of 2 MSRs; KVM refused MSR 0x2 = 0x0"), e.getMessage());
        }
    }

    @Test
    void pitAndIrqLinesNeedTheIrqchipAndThenWork() {
        HostRequirements.requireKvm();
        try (Kvm kvm = Kvm.open(); KvmVm vm = kvm.createVm()) {
            assertThrows(IllegalStateException.class, vm::createPit2);
            assertThrows(IllegalStateException.class, () -> vm.irqLine(4, true));
            vm.createIrqchip();
            vm.createPit2();
            LinuxException twice = assertThrows(LinuxException.class, vm::createPit2);
            assertTrue(twice.getMessage().contains("KVM_CREATE_PIT2"), twice.getMessage());
            vm.irqLine(4, true);
            vm.irqLine(4, false);
        }
    }
}
