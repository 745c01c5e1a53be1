package io.vmm4j.cli.metrics;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.vmm4j.cli.capture.PacketCapture;
import io.vmm4j.cli.vm.ToyVm;
import io.vmm4j.virtio.net.NetConfig;
import io.vmm4j.virtio.net.NetQueueCounters;
import io.vmm4j.virtio.net.VirtioNet;
import io.vmm4j.virtio.pci.VirtioPciTransport;

import java.util.function.ToDoubleFunction;

/**
 * The toy VMM's meters. Per data queue of the NIC ({@code device, mac, queue, direction} tags),
 * from its {@link NetQueueCounters}: {@code vmm4j.net.packets}, {@code .bytes}, {@code .kicks},
 * {@code .interrupts}, {@code .interrupts.suppressed}, {@code .drops.no.buffer},
 * {@code .port.errors} and {@code .drops.link.down}. Per virtio device ({@code device, id} tags):
 * <ul>
 *   <li>{@code vmm4j.virtio.needs.reset}: times the device entered DEVICE_NEEDS_RESET (ring errors);</li>
 *   <li>{@code vmm4j.virtio.config.interrupts}: configuration-change interrupts (link changes);</li>
 *   <li>{@code vmm4j.virtio.notifies} and {@code vmm4j.virtio.queue.interrupts} per virtqueue
 *       ({@code queue} tag), the control queue included: what the transport saw, whatever the data plane;</li>
 *   <li>{@code vmm4j.virtio.status}: the device_status byte;</li>
 * </ul>
 * and for the NIC {@code vmm4j.net.link.up} (1 or 0) and {@code vmm4j.net.active.pairs}, and
 * {@code vmm4j.pcap.frames}, frames written by packet capture.
 */
public final class VmMetrics {
    private VmMetrics() {
    }

    public static void register(MeterRegistry registry, ToyVm vm, PacketCapture capture) {
        registerNetQueues(registry, vm.net());
        for (ToyVm.PciSlot slot : vm.pciSlots()) {
            VirtioPciTransport t = slot.transport();
            if (t == null) {
                continue;
            }
            Tags device = Tags.of("device", t.device().name(), "id", slot.id());
            FunctionCounter.builder("vmm4j.virtio.needs.reset", t, VirtioPciTransport::needsResetCount)
                    .description("times the device entered DEVICE_NEEDS_RESET (a ring, queue or activation error)").tags(device)
                    .register(registry);
            FunctionCounter.builder("vmm4j.virtio.config.interrupts", t, VirtioPciTransport::configInterruptCount)
                    .description("configuration-change interrupts sent to the driver").tags(device).register(registry);
            Gauge.builder("vmm4j.virtio.status", t, VirtioPciTransport::status)
                    .description("the device_status byte (1 ACKNOWLEDGE, 2 DRIVER, 4 DRIVER_OK, 8 FEATURES_OK, 64 DEVICE_NEEDS_RESET, 128 FAILED)")
                    .tags(device).register(registry);
            for (int q = 0; q < t.device().queueCount(); q++) {
                int queue = q;
                Tags tags = device.and("queue", Integer.toString(q));
                FunctionCounter.builder("vmm4j.virtio.notifies", t, x -> x.notifyCount(queue))
                        .description("driver notifications (kicks) the transport received for the virtqueue").tags(tags).register(registry);
                FunctionCounter.builder("vmm4j.virtio.queue.interrupts", t, x -> x.queueInterruptCount(queue))
                        .description("used-buffer interrupts the transport raised for the virtqueue").tags(tags).register(registry);
            }
        }
        VirtioNet net = vm.net();
        Tags nic = Tags.of("device", net.name(), "id", "net0");
        Gauge.builder("vmm4j.net.link.up", net, n -> n.linkUp() ? 1 : 0).description("1 while the link is up (set_link)").tags(nic)
                .register(registry);
        Gauge.builder("vmm4j.net.active.pairs", net, VirtioNet::activePairs).description("queue pairs the driver uses (VIRTIO_NET_CTRL_MQ)")
                .tags(nic).register(registry);
        FunctionCounter.builder("vmm4j.pcap.frames", capture, PacketCapture::totalFrames)
                .description("frames written by packet capture (--pcap, x-vmm4j-pcap)").tags(nic).register(registry);
    }

    /** The {@code vmm4j.net.*} counters of each data queue of {@code net}; they read the device's counters, which outlive backend switches. */
    static void registerNetQueues(MeterRegistry registry, VirtioNet net) {
        String mac = NetConfig.format(net.config().mac());
        for (NetQueueCounters c : net.counters()) {
            Tags tags = Tags.of("device", "virtio-net", "mac", mac, "queue", Integer.toString(c.pair()), "direction", c.direction);
            queueCounter(registry, "vmm4j.net.packets", "frames moved through the queue", tags, c, x -> x.packets);
            queueCounter(registry, "vmm4j.net.bytes", "bytes moved, virtio-net header excluded", tags, c, x -> x.bytes);
            queueCounter(registry, "vmm4j.net.kicks", "driver notifications handled", tags, c, x -> x.kicks);
            queueCounter(registry, "vmm4j.net.interrupts", "used-buffer interrupts sent", tags, c, x -> x.interrupts);
            queueCounter(registry, "vmm4j.net.interrupts.suppressed", "interrupts the driver asked not to get", tags, c,
                    x -> x.interruptsSuppressed);
            queueCounter(registry, "vmm4j.net.drops.no.buffer", "frames dropped for want of receive buffers", tags, c, x -> x.dropsNoBuffer);
            queueCounter(registry, "vmm4j.net.port.errors", "failed reads or writes on the packet port", tags, c, x -> x.portErrors);
            queueCounter(registry, "vmm4j.net.drops.link.down", "frames dropped while the link was down", tags, c, x -> x.dropsLinkDown);
        }
    }

    private static void queueCounter(MeterRegistry registry, String name, String help, Tags tags, NetQueueCounters c,
                                     ToDoubleFunction<NetQueueCounters> count) {
        FunctionCounter.builder(name, c, count).description(help).tags(tags).register(registry);
    }
}
