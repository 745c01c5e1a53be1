package io.vmm4j.cli.vm;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.irq.MsiSink;
import io.vmm4j.virtio.driver.GuestLocalApic;
import io.vmm4j.virtio.pci.VirtioPciTransport;

import java.io.PrintStream;

/**
 * The machine under the Java guest: guest RAM from address 0, the buses its vCPU thread accesses
 * directly, the guest's own APIC model as the MSI sink, and a VMM thread delivering the interrupts
 * the data planes signal on call eventfds.
 */
final class JavaGuestMachine extends GuestMachine {
    private final VmOptions options;
    private final PrintStream log;
    private final GuestLocalApic apic = new GuestLocalApic();
    private final EventLoop irqfd;

    JavaGuestMachine(VmOptions options, PrintStream log) {
        super(ramFromZero(options), new Bus("pio"), new Bus("mmio"));
        this.options = options;
        this.log = log;
        try {
            this.irqfd = new EventLoop("irqfd");
        } catch (RuntimeException e) {
            memory().close();
            throw e;
        }
    }

    @Override
    MsiSink msiSink() {
        return apic::receive;
    }

    @Override
    EventLoop irqfdLoop() {
        return irqfd;
    }

    @Override
    AutoCloseable connectDoorbells(VirtioPciTransport transport, EventLoop control) {
        return null; // the transport signals the kick eventfd itself; irqfd delivers the calls
    }

    @Override
    String describe(VirtioPciTransport.NotifyMode mode) {
        return "";
    }

    /** The Java guest; a reboot it asks for resets every device first. */
    @Override
    JavaGuest runner(PciDevices devices) {
        JavaGuest guest = guest();
        guest.onPlatformReset(devices::reset);
        return guest;
    }

    /** The Java guest on this machine, not started. */
    JavaGuest guest() {
        return new JavaGuest(options, pio(), mmio(), memory(), apic, log);
    }

    @Override
    public void close() {
        try {
            irqfd.close();
        } finally {
            memory().close();
        }
    }

    @Override
    public String toString() {
        return "Java guest machine";
    }
}
