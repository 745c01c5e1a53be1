package io.vmm4j.cli.vm;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.irq.MsiSink;
import io.vmm4j.core.kvm.Kvm;
import io.vmm4j.core.kvm.KvmException;
import io.vmm4j.core.kvm.KvmIoctls;
import io.vmm4j.core.kvm.KvmVcpu;
import io.vmm4j.core.kvm.KvmVm;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.guest.KvmGuestImage;
import io.vmm4j.virtio.pci.VirtioPciTransport;
import io.vmm4j.virtio.pci.kvm.KvmDoorbells;

import java.io.PrintStream;
import java.lang.foreign.Arena;

/**
 * The machine under the C guest: one KVM VM with the in-kernel irqchip, all guest RAM (from
 * address 0) as memory slots, and one vCPU whose exits go to the buses, with the CPUID KVM
 * supports (as QEMU's -cpu host). Kicks are KVM ioeventfds and interrupts KVM irqfds on the same
 * eventfds the data planes use.
 */
final class KvmMachine extends GuestMachine {
    private final VmOptions options;
    private final PrintStream log;
    private final KvmVm vm;
    private final KvmVcpu vcpu;

    private KvmMachine(VmOptions options, PrintStream log, GuestMemory memory, Bus pio, Bus mmio, KvmVm vm, KvmVcpu vcpu) {
        super(memory, pio, mmio);
        this.options = options;
        this.log = log;
        this.vm = vm;
        this.vcpu = vcpu;
    }

    /** Refuses what the C guest cannot do, then builds the machine; what the host's KVM lacks is said with {@code --vcpu kvm}. */
    static KvmMachine create(VmOptions options, PrintStream log) {
        checkOptions(options);
        GuestMemory memory = ramFromZero(options);
        Bus pio = new Bus("pio");
        Bus mmio = new Bus("mmio");
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
                return new KvmMachine(options, log, memory, pio, mmio, vm, vcpu);
            } catch (RuntimeException e) {
                vm.close();
                throw e;
            }
        } catch (KvmException e) {
            memory.close();
            throw new ToyVm.VmException("--vcpu kvm: " + e.getMessage());
        } catch (RuntimeException e) {
            memory.close();
            throw e;
        }
    }

    /** What the C guest cannot do, said before anything is created. */
    private static void checkOptions(VmOptions options) {
        if (((long) options.memoryMiB() << 20) > PciDevices.ECAM_BASE) {
            throw new ToyVm.VmException(String.format("--vcpu kvm needs --memory of at most %d MiB: guest RAM above 0x%x would cover the "
                    + "PCI windows, and device accesses there would no longer exit to the VMM", PciDevices.ECAM_BASE >> 20,
                    PciDevices.ECAM_BASE));
        }
        if (options.pairs() != 1 || options.udpPort() > 0) {
            throw new ToyVm.VmException("the KVM guest drives one queue pair and sends no UDP echo flows: drop --queues, and --udp-port "
                    + "unless it is the port of a --workload, with --vcpu kvm");
        }
        if (options.wantedFeatures() != GuestDefaults.features()) {
            throw new ToyVm.VmException("--guest-features configures the Java guest; the KVM guest negotiates VERSION_1, MAC, STATUS, "
                    + "EVENT_IDX and RING_PACKED (when --ring packed offers it)");
        }
        if (!KvmGuestImage.built()) {
            throw new ToyVm.VmException("--vcpu kvm: the KVM guest image was not built (this build had no gcc): apt-get install gcc, "
                    + "then ./vmm build");
        }
    }

    KvmVcpu vcpu() {
        return vcpu;
    }

    /** KVM_SIGNAL_MSI into this VM's local APICs. */
    @Override
    MsiSink msiSink() {
        return vm::signalMsi;
    }

    /** None: the irqfds are in the kernel. */
    @Override
    EventLoop irqfdLoop() {
        return null;
    }

    @Override
    AutoCloseable connectDoorbells(VirtioPciTransport transport, EventLoop control) {
        return new KvmDoorbells(vm, transport, control);
    }

    @Override
    String describe(VirtioPciTransport.NotifyMode mode) {
        return mode == VirtioPciTransport.NotifyMode.SYNCHRONOUS
                ? ", KVM vCPU (every kick exits; interrupts by KVM irqfd)"
                : ", KVM vCPU (kicks by KVM ioeventfd, interrupts by KVM irqfd)";
    }

    /** The C guest, its exits weighed against the frames and kicks the NIC's queues count. */
    @Override
    KvmGuest runner(PciDevices devices) {
        return new KvmGuest(options, this, log, devices::packetsMoved, devices::kicksServed);
    }

    @Override
    public void close() {
        try {
            vm.close();
        } finally {
            memory().close();
        }
    }

    @Override
    public String toString() {
        return "KVM VM";
    }
}
