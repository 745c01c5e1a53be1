package io.vmm4j.cli.vm;

import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.queue.RingLayout;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.examples.rng.VirtioRng;
import io.vmm4j.virtio.net.NetBackend;
import io.vmm4j.virtio.net.NetConfig;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.NetQueueCounters;
import io.vmm4j.virtio.net.VirtioNet;
import io.vmm4j.virtio.pci.PciHost;
import io.vmm4j.virtio.pci.VirtioPciTransport;

import java.io.PrintStream;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;

/**
 * The toy VM's PCI bus 0 on a guest machine: the host bridge (CF8/CFC, and ECAM at the machine's
 * {@link GuestMachine#ecamBase()}, {@link #ECAM_BASE} unless it says otherwise), virtio-net on slot {@value #NET_SLOT} over the data plane it is given, and
 * virtio-rng on slot {@value #RNG_SLOT} (the transport reused), each on a virtio-pci transport
 * whose kicks and calls travel the machine's way.
 */
final class PciDevices implements AutoCloseable {
    static final long ECAM_BASE = 0xB000_0000L;
    static final int NET_SLOT = 1;
    static final int RNG_SLOT = 2;

    private final GuestMachine machine;
    private final OwnedResources owned;
    private final VirtioNet net;
    private final VirtioPciTransport netTransport;
    private final VirtioPciTransport rngTransport;

    /**
     * Wires the devices onto {@code machine}: virtio-net with {@code config} on {@code backend},
     * its control queue served on {@code control}, every notify handled as {@code mode} says.
     */
    PciDevices(GuestMachine machine, NetConfig config, NetBackend backend, VirtioPciTransport.NotifyMode mode, EventLoop control,
               PrintStream log) {
        this.machine = machine;
        this.owned = new OwnedResources(log);
        try {
            PciHost host = new PciHost(machine.pio(), machine.mmio(), machine.ecamBase());
            net = new VirtioNet(config, backend, control);
            if (config.offeredRings() == RingLayout.PACKED && !VirtioFeatures.has(net.offeredFeatures(), VirtioFeatures.RING_PACKED)) {
                log.printf("virtio-net: --ring packed: the %s data plane does not serve packed rings (%s); the NIC offers split "
                        + "rings only%n", backend.name(), backend.name().equals("vhost-net")
                        ? "the kernel's vhost-net does not report VIRTIO_F_RING_PACKED"
                        : "the back-end does not offer VIRTIO_F_RING_PACKED, or may reconnect: a packed ring's used position lives only "
                        + "in the back-end");
            }
            netTransport = new VirtioPciTransport(net, machine.memory(), machine.mmio(), machine.msiSink(), machine.intx(NET_SLOT),
                    machine.irqfdLoop(), mode, 2 + 2 * config.maxQueuePairs());
            netTransport.addObserver(new BootLog("virtio-net", log, NetFeatures::names));
            net.addListener(new VirtioNet.Listener() {
                @Override
                public void activePairsChanged(int pairs) { // virtio 1.2 5.1.6.5.5: the driver's VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET
                    log.printf("virtio-net: the driver set %d active queue pair(s) (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET)%n", pairs);
                }
            });
            host.attach(NET_SLOT, netTransport);

            EventLoop rngLoop = owned.add(new EventLoop("rng-io"));
            VirtioRng rng = new VirtioRng(rngLoop, new SecureRandom(), config.offeredRings());
            rngTransport = new VirtioPciTransport(rng, machine.memory(), machine.mmio(), machine.msiSink(), machine.intx(RNG_SLOT),
                    machine.irqfdLoop(), mode, 2);
            host.attach(RNG_SLOT, rngTransport);
            owned.add(machine.connectDoorbells(netTransport, control));
            owned.add(machine.connectDoorbells(rngTransport, control));
            machine.devicesAttached(log);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    VirtioNet net() {
        return net;
    }

    VirtioPciTransport netTransport() {
        return netTransport;
    }

    /** Every occupied slot on bus 0: the host bridge, virtio-net (net0), virtio-rng (rng0). */
    List<ToyVm.PciSlot> slots() {
        return List.of(new ToyVm.PciSlot(0, "", null), new ToyVm.PciSlot(NET_SLOT, "net0", netTransport),
                new ToyVm.PciSlot(RNG_SLOT, "rng0", rngTransport));
    }

    /** Reads a slot's configuration space through the ECAM window, as the guest would (reads have no side effects). */
    int readConfig(int slot, int offset, int size) {
        return (int) machine.mmio().read(machine.ecamBase() + ((long) slot << 15) + offset, size);
    }

    /** Resets every device, as a platform reset does. */
    void reset() {
        netTransport.resetDevice();
        rngTransport.resetDevice();
    }

    /** The NIC's data queues' counters, read now. */
    List<NetQueueCounters.Snapshot> queueCounters() {
        List<NetQueueCounters.Snapshot> queues = new ArrayList<>();
        for (NetQueueCounters c : net.counters()) {
            queues.add(c.snapshot());
        }
        return queues;
    }

    /** Frames the NIC's data queues moved so far, both directions. */
    long packetsMoved() {
        long n = 0;
        for (NetQueueCounters c : net.counters()) {
            n += c.packets;
        }
        return n;
    }

    /** Kicks the NIC's data queues served so far. */
    long kicksServed() {
        long n = 0;
        for (NetQueueCounters c : net.counters()) {
            n += c.kicks;
        }
        return n;
    }

    @Override
    public void close() {
        owned.close();
    }
}
