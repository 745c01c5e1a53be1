package io.vmm4j.cli.vm;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.irq.IntxLine;
import io.vmm4j.core.irq.MsiSink;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.pci.VirtioPciTransport;

import java.io.PrintStream;

/**
 * The machine one kind of guest needs under the toy VM's devices: guest memory, the PIO and MMIO
 * buses its accesses land on, where the devices' MSI messages go and how a queue's kick and call
 * travel; once the devices are wired onto it, the {@link GuestRunner} for the vCPU thread. Each
 * guest kind is one subclass, chosen in {@link #create}: {@link JavaGuestMachine} (the Java guest
 * on a thread), {@link KvmMachine} (the C guest on a KVM vCPU) and {@link LinuxGuestMachine} (a
 * Linux bzImage booted directly on KVM, on {@code LinuxVm}'s memory, buses and VM).
 */
abstract class GuestMachine implements AutoCloseable {
    private final GuestMemory memory;
    private final Bus pio;
    private final Bus mmio;

    GuestMachine(GuestMemory memory, Bus pio, Bus mmio) {
        this.memory = memory;
        this.pio = pio;
        this.mmio = mmio;
    }

    /** The machine {@code options} ask for; what that guest kind cannot do is refused before anything is created. */
    static GuestMachine create(VmOptions options, PrintStream log) {
        if (options.flood() != null && (options.linux() || !options.kvm())) {
            throw new ToyVm.VmException("--workload " + options.flood().kind().label() + " is a workload of the C guest on KVM: "
                    + (options.linux() ? "drop --kernel/--guest linux" : "add --vcpu kvm"));
        }
        if (options.linux()) {
            return LinuxGuestMachine.create(options, log);
        }
        return switch (options.vcpu()) {
            case JAVA -> new JavaGuestMachine(options, log);
            case KVM -> KvmMachine.create(options, log);
        };
    }

    /** Guest RAM of {@code --memory} MiB from guest-physical address 0, in one region. */
    static GuestMemory ramFromZero(VmOptions options) {
        return GuestMemory.builder().region(0, (long) options.memoryMiB() << 20).build();
    }

    final GuestMemory memory() {
        return memory;
    }

    /** The port I/O bus the vCPU's IN/OUT accesses land on. */
    final Bus pio() {
        return pio;
    }

    /** The MMIO bus the vCPU's accesses outside RAM land on. */
    final Bus mmio() {
        return mmio;
    }

    /** Where the PCI host's ECAM window is (for a guest that reads configuration space through memory). */
    long ecamBase() {
        return PciDevices.ECAM_BASE;
    }

    /** The INTx line of the device in {@code slot}; none for our own guests, which use MSI-X only. */
    IntxLine intx(int slot) {
        return IntxLine.NONE;
    }

    /**
     * Called once every device is on the PCI bus, before the guest runs: a guest without firmware
     * of its own (Linux booted directly) gets its BARs placed here; ours enumerate the bus themselves.
     */
    void devicesAttached(PrintStream log) {
    }

    /** Where the devices' MSI-X messages go: the guest's local APIC. */
    abstract MsiSink msiSink();

    /**
     * The VMM thread that turns a signalled call eventfd into an MSI message, or null where the
     * hypervisor does that itself (a KVM irqfd).
     */
    abstract EventLoop irqfdLoop();

    /**
     * Hands {@code transport}'s kick and call eventfds to the hypervisor (KVM ioeventfds and
     * irqfds), undone when the returned resource is closed; null when kicks and calls stay in the
     * VMM (a guest on a thread).
     */
    abstract AutoCloseable connectDoorbells(VirtioPciTransport transport, EventLoop control);

    /** How the boot log line ends for this guest kind (who runs it, how kicks and interrupts travel); may be empty. */
    abstract String describe(VirtioPciTransport.NotifyMode mode);

    /** The guest for the vCPU thread, on the devices wired onto this machine (called once, before the run). */
    abstract GuestRunner runner(PciDevices devices);

    /** Closes what the machine opened, guest memory last. */
    @Override
    public abstract void close();
}
