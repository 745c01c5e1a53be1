package io.vmm4j.cli.vm;

import io.vmm4j.core.boot.BzImage;
import io.vmm4j.core.boot.KernelImageException;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.irq.IntxLine;
import io.vmm4j.core.irq.MsiSink;
import io.vmm4j.core.kvm.Kvm;
import io.vmm4j.core.kvm.KvmException;
import io.vmm4j.core.kvm.KvmIoctls;
import io.vmm4j.core.x86.LinuxVm;
import io.vmm4j.virtio.driver.ConfigAccess;
import io.vmm4j.virtio.driver.PciFirmware;
import io.vmm4j.virtio.pci.VirtioPciTransport;
import io.vmm4j.virtio.pci.kvm.KvmDoorbells;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * The machine under a Linux kernel booted directly ({@code --kernel}): {@link LinuxVm}'s KVM VM,
 * memory and buses (its UART, i8042, RTC, MP table with PCI INTx), the devices' kicks as KVM
 * ioeventfds and interrupts as KVM irqfds, INTA of each slot on the IOAPIC pin the MP table gives
 * it, and, since no firmware runs, the BARs placed in the PCI window before the kernel starts, where
 * Linux keeps them. The console goes to the VMM's log through a {@link LinuxConsole}; the VMM's stdin
 * is the console's input.
 */
final class LinuxGuestMachine extends GuestMachine {
    /** ECAM inside [3 GiB, 4 GiB) above the BAR window; Linux without ACPI MCFG uses CF8/CFC anyway. */
    static final long ECAM_BASE = 0xE000_0000L;
    /** Where the BARs go: the start of the PCI window Linux's e820 map leaves as a hole. */
    static final long BAR_WINDOW = LinuxVm.LOW_RAM_LIMIT;
    static final long BAR_WINDOW_SIZE = 0x1000_0000L;
    /** Console lines kept for the summary of a run that did not end in a clean reboot. */
    static final int CONSOLE_TAIL = 40;

    private final VmOptions options;
    private final LinuxVm vm;
    private final LinuxConsole console;
    private final String commandLine;
    private final PrintStream log;

    private LinuxGuestMachine(VmOptions options, LinuxVm vm, LinuxConsole console, String commandLine, PrintStream log) {
        super(vm.memory(), vm.pio(), vm.mmio());
        this.options = options;
        this.vm = vm;
        this.console = console;
        this.commandLine = commandLine;
        this.log = log;
    }

    /** Reads the kernel and initrd, then builds the VM and loads the kernel; each problem is one line naming its flag. */
    static LinuxGuestMachine create(VmOptions options, PrintStream log) {
        if (!options.kvm()) {
            throw new ToyVm.VmException("--kernel boots Linux on KVM: add --vcpu kvm");
        }
        BzImage kernel;
        byte[] initrd;
        try {
            kernel = BzImage.read(options.kernel());
        } catch (KernelImageException e) {
            throw new ToyVm.VmException("--kernel " + e.getMessage());
        }
        initrd = options.initrd() == null ? null : readInitrd(options.initrd());
        String commandLine = commandLine(options);
        LinuxConsole console = new LinuxConsole(log, CONSOLE_TAIL);
        try (Kvm kvm = Kvm.open()) {
            kvm.requireExtension(KvmIoctls.CAP_IRQFD, "KVM_CAP_IRQFD", "turns a backend's call eventfd into a guest interrupt");
            kvm.requireExtension(KvmIoctls.CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "turns a guest kick into an eventfd signal");
            kvm.requireExtension(KvmIoctls.CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI", "delivers config and pending MSI-X messages");
        } catch (KvmException e) {
            throw new ToyVm.VmException("--vcpu kvm: " + e.getMessage());
        }
        LinuxVm vm;
        try {
            // the VMM's stdin is the UART's receiver, as Firecracker's serial console is: the guest reads what is typed
            vm = LinuxVm.create(new LinuxVm.Config(kernel, initrd, commandLine, options.cpus(), options.memoryMiB(), console, System.in, log));
        } catch (KvmException e) {
            throw new ToyVm.VmException("--vcpu kvm: " + e.getMessage());
        } catch (KernelImageException e) {
            throw new ToyVm.VmException("--kernel " + options.kernel() + " does not fit: " + e.getMessage());
        } catch (IllegalArgumentException e) {
            throw new ToyVm.VmException(e.getMessage());
        }
        return new LinuxGuestMachine(options, vm, console, commandLine, log);
    }

    /**
     * {@code --append} (or {@link VmOptions#DEFAULT_APPEND}), then the link's addresses for the
     * project's initramfs (vmm4j.ip, vmm4j.host: scripts/linux-guest/init) unless --append sets them.
     */
    static String commandLine(VmOptions options) {
        StringBuilder b = new StringBuilder(options.append() == null ? VmOptions.DEFAULT_APPEND : options.append());
        if (!b.toString().contains("vmm4j.ip=")) {
            b.append(" vmm4j.ip=").append(options.guestIp()).append('/').append(options.prefixLength());
        }
        if (!b.toString().contains("vmm4j.host=")) {
            b.append(" vmm4j.host=").append(options.hostAddress());
        }
        return b.toString();
    }

    private static byte[] readInitrd(Path p) {
        try {
            return Files.readAllBytes(p);
        } catch (NoSuchFileException e) {
            throw new ToyVm.VmException("--initrd " + p + ": no such file (give an initramfs, e.g. the output of scripts/linux-guest/build-initramfs)");
        } catch (IOException e) {
            throw new ToyVm.VmException("--initrd " + p + ": cannot read it: " + e.getMessage());
        }
    }

    LinuxVm vm() {
        return vm;
    }

    LinuxConsole console() {
        return console;
    }

    String commandLine() {
        return commandLine;
    }

    PrintStream log() {
        return log;
    }

    VmOptions options() {
        return options;
    }

    @Override
    long ecamBase() {
        return ECAM_BASE;
    }

    /** INTA of the slot on the IOAPIC pin the MP table routes it to (Linux falls back to it without MSI-X, e.g. pci=nomsi). */
    @Override
    IntxLine intx(int slot) {
        return vm.pciIntx(slot);
    }

    /** Firmware's job, as no firmware runs: every BAR placed in the PCI window and decoding enabled, so Linux keeps them. */
    @Override
    void devicesAttached(PrintStream log) {
        for (PciFirmware.Device d : PciFirmware.enumerateAndAssign(ConfigAccess.ports(pio()), BAR_WINDOW, BAR_WINDOW_SIZE)) {
            if (d.slot() != 0) {
                log.printf("vmm4j: PCI 00:%02x.0 %04x:%04x BAR0 0x%x, BAR2 0x%x (MSI-X), INTA on IOAPIC pin %d%n", d.slot(), d.vendorId(),
                        d.deviceId(), d.barAddress()[0], d.barAddress()[2], io.vmm4j.core.boot.MpTable.pciIntxPin(d.slot()));
            }
        }
    }

    /** KVM_SIGNAL_MSI into this VM's local APICs. */
    @Override
    MsiSink msiSink() {
        return vm.kvmVm()::signalMsi;
    }

    /** None: the irqfds are in the kernel. */
    @Override
    EventLoop irqfdLoop() {
        return null;
    }

    @Override
    AutoCloseable connectDoorbells(VirtioPciTransport transport, EventLoop control) {
        return new KvmDoorbells(vm.kvmVm(), transport, control);
    }

    @Override
    String describe(VirtioPciTransport.NotifyMode mode) {
        return String.format(", Linux on %d KVM vCPU%s (%s; interrupts by KVM irqfd)", options.cpus(), options.cpus() == 1 ? "" : "s",
                mode == VirtioPciTransport.NotifyMode.SYNCHRONOUS ? "every kick exits" : "kicks by KVM ioeventfd");
    }

    @Override
    GuestRunner runner(PciDevices devices) {
        return new LinuxGuest(this, devices);
    }

    @Override
    public void close() {
        vm.close(); // its memory too
    }

    @Override
    public String toString() {
        return "Linux KVM VM";
    }
}
