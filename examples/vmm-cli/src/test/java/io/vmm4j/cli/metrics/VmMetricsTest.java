package io.vmm4j.cli.metrics;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmm4j.cli.testing.IdleNetBackend;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.virtio.net.NetConfig;
import io.vmm4j.virtio.net.VirtioNet;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The NIC's per-queue counters as Micrometer meters (moved here from virtio-pci with the registration). */
class VmMetricsTest {
    private static final byte[] MAC = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
    private final EventLoop control = new EventLoop("net-ctrl");
    private final SimpleMeterRegistry registry = new SimpleMeterRegistry();

    @AfterEach
    void close() {
        control.close();
    }

    @Test
    void countersAreMicrometerMeters() {
        VirtioNet net = new VirtioNet(new NetConfig(MAC, 1500, 2, 256), new IdleNetBackend("idle", 2), control);
        VmMetrics.registerNetQueues(registry, net);
        assertEquals(4, registry.find("vmm4j.net.packets").functionCounters().size(), "rx and tx of two pairs");
        net.counters().get(1).packets = 42;
        assertEquals(42.0, registry.find("vmm4j.net.packets").tag("queue", "0").tag("direction", "tx").functionCounter().count());
        for (String name : List.of("vmm4j.net.packets", "vmm4j.net.bytes", "vmm4j.net.kicks", "vmm4j.net.interrupts",
                "vmm4j.net.interrupts.suppressed", "vmm4j.net.drops.no.buffer", "vmm4j.net.port.errors", "vmm4j.net.drops.link.down")) {
            assertEquals(4, registry.find(name).tags("device", "virtio-net", "mac", "52:54:00:12:34:56").functionCounters().size(), name);
        }
    }
}
