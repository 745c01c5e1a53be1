package io.vmm4j.virtio.driver.transport;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.irq.IntxLine;
import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.VirtioDevice;
import io.vmm4j.virtio.driver.ConfigAccess;
import io.vmm4j.virtio.driver.GuestLocalApic;
import io.vmm4j.virtio.driver.PciFirmware;
import io.vmm4j.virtio.driver.VirtioPciDriver;
import io.vmm4j.virtio.driver.queue.CanaryGuestMemory;
import io.vmm4j.virtio.pci.PciHost;
import io.vmm4j.virtio.pci.VirtioPciTransport;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/** A VM in miniature for transport tests: memory, buses, PCI host, one device, firmware and driver. */
public final class TransportFixture implements AutoCloseable {
    public static final long RAM = 0;
    public static final long RAM_SIZE = 4L << 20;
    public static final long ECAM = 0xB000_0000L;
    public static final long PCI_WINDOW = 0xC000_0000L;

    /** RAM with canary pages around it (and between its two regions, at RAM_SIZE - 64 KiB): a device access outside it shows. */
    public final CanaryGuestMemory canaries = new CanaryGuestMemory(RAM, RAM_SIZE - 0x1_0000, 0x1_0000);
    public final GuestMemory memory = canaries.memory();
    public final GuestAllocator allocator = new GuestAllocator(0x10_0000, RAM_SIZE - 0x10_0000);
    public final Bus pio = new Bus("pio");
    public final Bus mmio = new Bus("mmio");
    public final PciHost host = new PciHost(pio, mmio, ECAM);
    public final GuestLocalApic apic = new GuestLocalApic();
    public final AtomicInteger intxLevel = new AtomicInteger();
    public final EventLoop interruptLoop = new EventLoop("irqfd-router");
    public final VirtioPciTransport transport;
    public final ConfigAccess cfg;
    public final PciFirmware.Device pci;
    public final VirtioPciDriver driver;

    public TransportFixture(VirtioDevice device, VirtioPciTransport.NotifyMode mode) {
        this(device, mode, 4);
    }

    public TransportFixture(VirtioDevice device, VirtioPciTransport.NotifyMode mode, int vectors) {
        IntxLine intx = new IntxLine() {
            @Override
            public void assertLine() {
                intxLevel.set(1);
            }

            @Override
            public void deassertLine() {
                intxLevel.set(0);
            }
        };
        transport = new VirtioPciTransport(device, memory, mmio, apic::receive, intx, interruptLoop, mode, vectors);
        host.attach(3, transport);
        cfg = ConfigAccess.ports(pio);
        List<PciFirmware.Device> found = PciFirmware.enumerateAndAssign(cfg, PCI_WINDOW, 0x1000_0000L);
        pci = found.stream().filter(d -> d.slot() == 3).findFirst().orElseThrow();
        driver = new VirtioPciDriver(cfg, mmio, memory, allocator, pci);
    }

    public int configRead(int offset, int size) {
        return cfg.read(3, offset, size);
    }

    public void configWrite(int offset, int size, int value) {
        cfg.write(3, offset, size, value);
    }

    @Override
    public void close() {
        interruptLoop.close();
        canaries.close(); // the memory too
    }
}
