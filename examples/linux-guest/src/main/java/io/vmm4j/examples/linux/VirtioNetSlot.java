package io.vmm4j.examples.linux;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.irq.IntxLine;
import io.vmm4j.core.x86.LinuxVm;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.emulated.EmulatedNetBackend;
import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.driver.ConfigAccess;
import io.vmm4j.virtio.driver.PciFirmware;
import io.vmm4j.virtio.net.NetConfig;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.VirtioNet;
import io.vmm4j.virtio.pci.MsixTable;
import io.vmm4j.virtio.pci.PciHost;
import io.vmm4j.virtio.pci.QueueRegisters;
import io.vmm4j.virtio.pci.VirtioPciTransport;
import io.vmm4j.virtio.pci.kvm.KvmDoorbells;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/**
 * Our PCI host on the guest's CF8/CFC ports with one virtio-net device: the virtio-pci transport,
 * the emulated data plane over an in-memory port (nothing is on the other end), kicks as KVM
 * ioeventfds and interrupts as KVM irqfds (KvmDoorbells). Like firmware, it places the BARs in
 * the PCI window and enables decoding before the kernel starts, so Linux keeps them. What the
 * guest's driver does is printed as it happens ("vmm4j: virtio-net: ...").
 */
final class VirtioNetSlot implements AutoCloseable {
    /** ECAM (unused by a guest without ACPI MCFG, which uses CF8/CFC) and the BAR window, inside [3 GiB, 4 GiB). */
    static final long ECAM_BASE = 0xE000_0000L;
    static final long BAR_WINDOW = LinuxVm.LOW_RAM_LIMIT;
    static final long BAR_WINDOW_SIZE = 0x1000_0000L;
    static final int SLOT = 1;
    static final String MAC = "52:54:00:12:34:56";

    private final List<AutoCloseable> owned = new ArrayList<>();
    private final VirtioPciTransport transport;

    VirtioNetSlot(LinuxVm vm, PrintStream log) {
        try {
            PciHost host = new PciHost(vm.pio(), vm.mmio(), ECAM_BASE);
            EventLoop control = own(new EventLoop("vmm-control"));
            MemoryPort[] ports = MemoryPort.pair(1, TapDevice.VNET_HEADER_V1_SIZE);
            own(ports[0]);
            own(ports[1]);
            EmulatedNetBackend backend = own(new EmulatedNetBackend(ports[0]));
            VirtioNet net = new VirtioNet(new NetConfig(NetConfig.parseMac(MAC), 1500, 1, 256), backend, control);
            transport = new VirtioPciTransport(net, vm.memory(), vm.mmio(), vm.kvmVm()::signalMsi, IntxLine.NONE, null,
                    VirtioPciTransport.NotifyMode.IOEVENTFD, 2 + 2);
            transport.addObserver(new Report(log));
            host.attach(SLOT, transport);
            own(new KvmDoorbells(vm.kvmVm(), transport, control));
            for (PciFirmware.Device d : PciFirmware.enumerateAndAssign(ConfigAccess.ports(vm.pio()), BAR_WINDOW, BAR_WINDOW_SIZE)) {
                if (d.slot() == SLOT) {
                    log.printf("vmm4j: PCI 00:%02x.0 %04x:%04x virtio-net %s, BAR0 0x%x (common/notify/isr/device cfg), BAR2 0x%x (MSI-X), "
                                    + "data plane %s over an in-memory port%n", d.slot(), d.vendorId(), d.deviceId(), MAC, d.barAddress()[0],
                            d.barAddress()[2], backend.name());
                }
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private <T extends AutoCloseable> T own(T resource) {
        owned.add(resource);
        return resource;
    }

    VirtioPciTransport transport() {
        return transport;
    }

    /** Prints each step of the guest driver's bring-up: status, features, queues and their MSI-X vectors. */
    private static final class Report implements VirtioPciTransport.Observer {
        private final PrintStream log;

        Report(PrintStream log) {
            this.log = log;
        }

        @Override
        public void statusChanged(int oldStatus, int newStatus) {
            log.printf("vmm4j: virtio-net: status %s%n", DeviceStatus.describe(newStatus));
        }

        @Override
        public void featuresNegotiated(long offered, long acked, boolean accepted, String problem) {
            log.printf("vmm4j: virtio-net: features offered %s%n", NetFeatures.names(offered));
            log.printf("vmm4j: virtio-net: features acked by the driver 0x%x %s%s%n", acked, NetFeatures.names(acked),
                    accepted ? "" : " -- refused: " + problem);
        }

        @Override
        public void queueActivated(QueueRegisters q) {
            log.printf("vmm4j: virtio-net: queue %d size %d msix vector %s%n", q.index(), q.size(),
                    q.msixVector() == MsixTable.NO_VECTOR ? "none" : Integer.toString(q.msixVector()));
        }

        @Override
        public void deviceError(String reason) {
            log.printf("vmm4j: virtio-net: DEVICE_NEEDS_RESET: %s%n", reason);
        }
    }

    @Override
    public void close() {
        for (int i = owned.size() - 1; i >= 0; i--) {
            try {
                owned.get(i).close();
            } catch (Exception e) {
                // closing the rest matters more
            }
        }
    }
}
