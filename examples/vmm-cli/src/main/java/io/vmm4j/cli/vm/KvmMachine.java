package io.vmm4j.cli.vm;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.irq.MsiSink;
import io.vmm4j.core.kvm.Kvm;
import io.vmm4j.core.kvm.KvmIoctls;
import io.vmm4j.core.kvm.KvmVcpu;
import io.vmm4j.core.kvm.KvmVm;
import io.vmm4j.core.memory.GuestMemory;

import java.lang.foreign.Arena;

/**
 * The toy VM's KVM side: one VM with the in-kernel irqchip, all guest RAM as memory slots, and
 * one vCPU whose exits go to the toy VM's buses, with the CPUID KVM supports (as QEMU's -cpu host).
 */
final class KvmMachine implements AutoCloseable {
    private final KvmVm vm;
    private final KvmVcpu vcpu;

    private KvmMachine(KvmVm vm, KvmVcpu vcpu) {
        this.vm = vm;
        this.vcpu = vcpu;
    }

    /** Fails with a {@link io.vmm4j.core.kvm.KvmException} naming what the host lacks. */
    static KvmMachine create(GuestMemory memory, Bus pio, Bus mmio) {
        try (Kvm kvm = Kvm.open()) {
            kvm.requireExtension(KvmIoctls.CAP_IRQFD, "KVM_CAP_IRQFD", "turns a backend's call eventfd into a guest interrupt");
            kvm.requireExtension(KvmIoctls.CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "turns a guest kick into an eventfd signal");
            kvm.requireExtension(KvmIoctls.CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI", "delivers config and pending MSI-X messages");
            kvm.requireExtension(KvmIoctls.CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stops a vCPU cleanly");
            KvmVm vm = kvm.createVm();
            try {
                vm.createIrqchip();
                vm.mapMemory(memory);
                KvmVcpu vcpu = vm.createVcpu(0, pio, mmio);
                try (Arena arena = Arena.ofConfined()) {
                    vcpu.setCpuid(kvm.supportedCpuid(arena));
                }
                return new KvmMachine(vm, vcpu);
            } catch (RuntimeException e) {
                vm.close();
                throw e;
            }
        }
    }

    KvmVm vm() {
        return vm;
    }

    KvmVcpu vcpu() {
        return vcpu;
    }

    /** Where the devices' MSI messages go: KVM_SIGNAL_MSI into this VM's local APICs. */
    MsiSink msiSink() {
        return vm::signalMsi;
    }

    @Override
    public void close() {
        vm.close();
    }

    @Override
    public String toString() {
        return "KVM VM";
    }
}
