package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vmm4j.cli.Management;
import io.vmm4j.cli.qmp.QmpTestClient;
import io.vmm4j.virtio.net.VirtioNet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The guest driver's control-queue commands reaching QMP clients, in one JVM on the in-memory port
 * (no privileges): VIRTIO_NET_CTRL_RX from the Java guest raises NIC_RX_FILTER_CHANGED once, as
 * QEMU does, query-rx-filter shows the new filter and re-arms the event; a backend that goes away
 * is announced.
 */
class ManagementInProcessTest {
    @Test
    void rxFilterChangesFromTheGuestBecomeEventsAndQueries(@TempDir Path dir) throws Exception {
        VmOptions options = VmOptions.builder().port(VmOptions.Port.MEMORY).count(0).intervalMs(50).build();
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        Path socket = dir.resolve("vm.qmp");
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (ToyVm vm = new ToyVm(options, quiet);
             Management management = Management.start(vm, new Management.Settings(socket, null, null), registry, quiet)) {
            vm.run(); // boots the NIC, no pings: the driver stays usable from this thread
            try (QmpTestClient c = QmpTestClient.connect(socket)) {
                c.next();
                c.execute("{\"execute\": \"qmp_capabilities\"}");

                assertEquals(0, vm.guest().nic().driver().setRxMode(VirtioNet.RX_PROMISC, true), "the device acks");
                JsonNode event = c.awaitEvent("NIC_RX_FILTER_CHANGED");
                assertEquals("net0", event.get("data").get("name").asText());
                assertEquals("/machine/peripheral/net0/virtio-backend", event.get("data").get("path").asText());

                assertEquals(0, vm.guest().nic().driver().setRxMode(VirtioNet.RX_ALLMULTI, true));
                assertNull(c.nextLine(300), "no second event until a client queries the filter");

                JsonNode filter = c.execute("{\"execute\": \"query-rx-filter\"}").get("return").get(0);
                assertTrue(filter.get("promiscuous").asBoolean(), filter.toString());
                assertEquals("all", filter.get("multicast").asText(), filter.toString());

                assertEquals(0, vm.guest().nic().driver().setRxMode(VirtioNet.RX_PROMISC, false));
                assertEquals("NIC_RX_FILTER_CHANGED", c.awaitEvent("NIC_RX_FILTER_CHANGED").get("event").asText(), "re-armed by the query");
                assertEquals("shutdown", c.execute("{\"execute\": \"query-status\"}").get("return").get("status").asText());

                management.backendConnections().disconnected("netdev0", "the backend process exited");
                assertEquals("netdev0", c.awaitEvent("NETDEV_VHOST_USER_DISCONNECTED").get("data").get("netdev-id").asText());
            }
        }
    }
}
