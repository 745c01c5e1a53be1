package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.tap.CommandResult;
import io.vmm4j.tap.NetNamespace;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code ./vmm run --qmp PATH} in a fresh network namespace, driven by socat as a user would:
 * greeting and negotiation, the queries, set_link down and up (seen by the guest driver, which
 * re-reads STATUS on the configuration interrupt), system_reset (the guest boots again and still
 * answers pings), bad input, and quit with its SHUTDOWN event.
 */
class ControlSocketTest {
    @TempDir
    Path dir;

    @BeforeEach
    void requirements() {
        HostRequirements.requireTapsAndNamespaces("network namespaces and taps");
        HostRequirements.requireCommand("ping", "iputils-ping");
        HostRequirements.requireCommand("socat", "socat");
    }

    private static void assertError(JsonNode reply, String errorClass, String descPart, SocatQmpClient c) {
        assertTrue(reply.has("error"), "error reply expected: " + reply + "\n" + c.transcript());
        assertEquals(errorClass, reply.get("error").get("class").asText(), reply.toString());
        assertTrue(reply.get("error").get("desc").asText().contains(descPart), reply.toString());
    }

    private static JsonNode ok(JsonNode reply, SocatQmpClient c) {
        assertTrue(reply.has("return"), "return expected: " + reply + "\n" + c.transcript());
        return reply.get("return");
    }

    private static JsonNode nic(JsonNode virtio) {
        for (JsonNode d : virtio) {
            if (d.get("name").asText().equals("net0")) {
                return d;
            }
        }
        throw new AssertionError("no net0 in " + virtio);
    }

    @Test
    void socatDrivesTheVmThroughTheControlSocket() throws Exception {
        Path socket = dir.resolve("vm.qmp");
        try (NetNamespace ns = NetNamespace.create(ToyVmNetworkTest.unique("vtns"));
             VmmProcess vmm = VmmProcess.start(List.of("ip", "netns", "exec", ns.name()), "run", "--count", "0", "--serve", "60",
                     "--json", "--qmp", socket.toString())) {
            vmm.awaitOutput("guest: serving at 10.0.2.15", 30);
            long droppedLinkDown;
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(socket)), "only the owner may connect");

            try (SocatQmpClient c = SocatQmpClient.connect(socket)) {
                JsonNode greeting = c.next();
                assertTrue(greeting.get("QMP").get("version").get("qemu").get("minor").isInt(), greeting.toString());
                assertTrue(greeting.get("QMP").get("version").get("package").asText().startsWith("vmm4j"), greeting.toString());
                assertTrue(greeting.get("QMP").get("capabilities").isArray(), greeting.toString());

                JsonNode early = c.execute("{\"execute\": \"query-status\", \"id\": 1}");
                assertError(early, "CommandNotFound", "qmp_capabilities", c);
                assertEquals(1, early.get("id").asInt());
                assertEquals("{}", ok(c.execute("{\"execute\": \"qmp_capabilities\"}"), c).toString());

                JsonNode status = c.execute("{\"execute\": \"query-status\", \"id\": \"s\"}");
                assertEquals("s", status.get("id").asText());
                assertTrue(ok(status, c).get("running").asBoolean());
                assertEquals("running", status.get("return").get("status").asText());

                // query-pci: QEMU's PciInfo shape, the NIC at 00:01.0 with the BARs the guest firmware assigned
                JsonNode pci = ok(c.execute("{\"execute\": \"query-pci\"}"), c);
                assertEquals(0, pci.get(0).get("bus").asInt());
                JsonNode devices = pci.get(0).get("devices");
                assertEquals(3, devices.size(), devices.toString());
                JsonNode nicPci = devices.get(1);
                assertEquals(1, nicPci.get("slot").asInt());
                assertEquals(0x1AF4, nicPci.get("id").get("vendor").asInt());
                assertEquals(0x1041, nicPci.get("id").get("device").asInt());
                assertEquals(0x0200, nicPci.get("class_info").get("class").asInt());
                assertEquals("net0", nicPci.get("qdev_id").asText());
                JsonNode bar0 = nicPci.get("regions").get(0);
                assertEquals(0, bar0.get("bar").asInt());
                assertEquals("memory", bar0.get("type").asText());
                assertEquals(0xC000_0000L, bar0.get("address").asLong(), "firmware put BAR0 at the window's base");
                assertEquals(16384, bar0.get("size").asInt());
                assertEquals(0x1044, devices.get(2).get("id").get("device").asInt(), "virtio-rng in slot 2");
                assertEquals(0x0600, devices.get(0).get("class_info").get("class").asInt(), "host bridge in slot 0");

                // x-vmm4j-query-virtio: negotiation, queues and link as the device has them
                JsonNode virtio = nic(ok(c.execute("{\"execute\": \"x-vmm4j-query-virtio\"}"), c));
                assertEquals("ACKNOWLEDGE|DRIVER|DRIVER_OK|FEATURES_OK", virtio.get("status").asText());
                assertTrue(virtio.get("features").get("acked").toString().contains("\"STATUS\""), virtio.toString());
                assertTrue(virtio.get("features").get("offered").toString().contains("\"MRG_RXBUF\""), virtio.toString());
                JsonNode rxq = virtio.get("queues").get(0);
                assertEquals("receiveq1", rxq.get("name").asText());
                assertEquals(256, rxq.get("size").asInt());
                assertTrue(rxq.get("desc").asLong() > 0 && rxq.get("msix-vector").isInt(), rxq.toString());
                assertEquals("controlq", virtio.get("queues").get(2).get("name").asText());
                assertTrue(virtio.get("net").get("link-up").asBoolean());
                assertTrue(virtio.get("msix").get("enabled").asBoolean());

                // set_link down: STATUS bit cleared, config interrupt, the guest driver reads it
                long configInterrupts = virtio.get("msix").get("config-interrupts").asLong();
                assertEquals("{}", ok(c.execute("{\"execute\": \"set_link\", \"arguments\": {\"name\": \"net0\", \"up\": false}, \"id\": 2}"), c)
                        .toString());
                JsonNode down = c.awaitEvent("X_VMM4J_NIC_LINK_CHANGED");
                assertEquals("net0", down.get("data").get("name").asText());
                assertFalse(down.get("data").get("up").asBoolean());
                assertTrue(down.get("timestamp").get("seconds").asLong() > 0 && down.get("timestamp").has("microseconds"));
                vmm.awaitOutput("guest: link is down", 10);
                virtio = nic(ok(c.execute("{\"execute\": \"x-vmm4j-query-virtio\"}"), c));
                assertFalse(virtio.get("net").get("link-up").asBoolean());
                assertEquals(configInterrupts + 1, virtio.get("msix").get("config-interrupts").asLong(), "one config interrupt");
                // what the host sends to a guest whose link is down is dropped, and counted as such
                ns.exec("ping", "-c", "2", "-i", "0.2", "-W", "1", "10.0.2.15");
                JsonNode rxDown = ok(c.execute("{\"execute\": \"x-vmm4j-query-backend\"}"), c).get("queues").get(0);
                droppedLinkDown = rxDown.get("drops-link-down").asLong();
                assertTrue(droppedLinkDown >= 1, "rx0 counts the frames dropped with the link down: " + rxDown);

                ok(c.execute("{\"execute\": \"set_link\", \"arguments\": {\"name\": \"net0\", \"up\": true}}"), c);
                assertTrue(c.awaitEvent("X_VMM4J_NIC_LINK_CHANGED").get("data").get("up").asBoolean());
                vmm.awaitOutput("guest: link is up", 10);

                // bad input: QMP errors naming the problem, the session goes on
                JsonNode unknown = c.execute("{\"execute\": \"x-no-such-command\", \"id\": 42}");
                assertError(unknown, "CommandNotFound", "x-no-such-command", c);
                assertEquals(42, unknown.get("id").asInt());
                assertError(c.execute("{\"execute\": \"set_link\", \"arguments\": {\"name\": \"net0\"}}"), "GenericError",
                        "Parameter 'up' is missing", c);
                assertError(c.execute("{\"execute\": \"set_link\", \"arguments\": {\"name\": \"net0\", \"up\": \"yes\"}}"), "GenericError",
                        "expected: boolean", c);
                assertError(c.execute("{\"execute\": \"set_link\", \"arguments\": {\"name\": \"eth9\", \"up\": true}}"), "DeviceNotFound",
                        "eth9", c);
                assertError(c.execute("{\"execute\": }"), "GenericError", "JSON parse error", c);

                JsonNode rx = ok(c.execute("{\"execute\": \"query-rx-filter\", \"arguments\": {\"name\": \"net0\"}}"), c).get(0);
                assertEquals("52:54:00:12:34:56", rx.get("main-mac").asText());
                assertEquals("normal", rx.get("unicast").asText());
                assertTrue(rx.get("multicast-table").isArray());

                JsonNode backend = ok(c.execute("{\"execute\": \"x-vmm4j-query-backend\"}"), c);
                assertEquals("emulated", backend.get("name").asText());
                assertEquals("rx0", backend.get("queues").get(0).get("queue").asText());
                assertTrue(backend.get("queues").get(0).has("drops-no-buffer"), backend.toString());

                // system_reset: the VMM resets the devices, the guest boots again and answers pings
                ok(c.execute("{\"execute\": \"system_reset\"}"), c);
                JsonNode reset = c.awaitEvent("RESET");
                assertEquals("host-qmp-system-reset", reset.get("data").get("reason").asText());
                vmm.awaitOutput("guest: system reset: rebooting", 10);
                awaitCount(vmm, "guest: virtio-net up", 2);
                CommandResult ping = ns.exec("ping", "-c", "3", "-i", "0.2", "-W", "2", "10.0.2.15");
                assertTrue(ping.stdout().contains("3 packets transmitted, 3 received"), ping.stdout() + ping.stderr());

                ok(c.execute("{\"execute\": \"quit\"}"), c);
                JsonNode shutdown = c.awaitEvent("SHUTDOWN");
                assertEquals("host-qmp-quit", shutdown.get("data").get("reason").asText());
                assertFalse(shutdown.get("data").get("guest").asBoolean());
            }
            assertEquals(0, vmm.waitFor(30), vmm.describe());
            JsonNode summary = vmm.json();
            assertEquals("[\"down\",\"up\"]", summary.get("guestLink").get("changes").toString(), "what the guest driver saw");
            assertTrue(summary.get("guestLink").get("up").asBoolean());
            assertEquals(1, summary.get("guestLink").get("reboots").asInt());
            assertTrue(summary.get("echoRequestsAnswered").asLong() >= 3, vmm.describe());
            JsonNode rx0 = summary.get("queues").get(0);
            assertEquals(0, rx0.get("pair").asInt(), rx0.toString());
            assertEquals("rx", rx0.get("direction").asText(), rx0.toString());
            assertTrue(rx0.get("dropsLinkDown").asLong() >= droppedLinkDown, "the summary has the link-down drops QMP showed: " + rx0);
            assertFalse(Files.exists(socket), "the socket is removed at exit");
        }
    }

    private static void awaitCount(VmmProcess vmm, String text, int n) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 15_000;
        while (System.currentTimeMillis() < deadline) {
            List<String> hits = new ArrayList<>((vmm.stdout() + vmm.stderr()).lines().filter(l -> l.contains(text)).toList());
            if (hits.size() >= n) {
                return;
            }
            Thread.sleep(50);
        }
        throw new AssertionError("'" + text + "' did not appear " + n + " times\n" + vmm.describe());
    }
}
