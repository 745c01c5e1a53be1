package io.vmm4j.cli.config;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bad VM config files, one per row: each message names the file, the JSON path and what is allowed. Good ones load. */
class VmConfigLoaderTest {
    static Stream<Arguments> badConfigs() {
        return Stream.of(
                // unknown fields
                Arguments.of("{\"backend\": \"emulated\", \"memory\": 128}", "$.memory",
                        "unknown field 'memory'; allowed in $: backend, memoryMiB, net, guest, management"),
                Arguments.of("{\"net\": {\"queueSzie\": 256}}", "$.net.queueSzie",
                        "allowed in $.net: port, tap, bridge, mac, mtu, queues, queueSize, hostIp, socket"),
                Arguments.of("{\"guest\": {\"ping\": {\"every\": 5}}}", "$.guest.ping.every", "allowed in $.guest.ping: target, count, size, intervalMs"),
                // wrong JSON types, no coercion
                Arguments.of("{\"net\": {\"mtu\": \"1500\"}}", "$.net.mtu", "expected an integer, got a string (\"1500\")"),
                Arguments.of("{\"net\": {\"queues\": 1.5}}", "$.net.queues", "expected an integer, got a fractional number (1.5)"),
                Arguments.of("{\"memoryMiB\": true}", "$.memoryMiB", "expected an integer, got a boolean (true)"),
                Arguments.of("{\"net\": {\"mac\": 5}}", "$.net.mac", "expected a string, got an integer (5)"),
                Arguments.of("{\"backend\": [\"emulated\"]}", "$.backend", "expected a string, got an array"),
                Arguments.of("{\"guest\": {\"features\": \"GUEST_CSUM\"}}", "$.guest.features", "expected an array of strings, got a string"),
                Arguments.of("{\"guest\": {\"features\": [\"GUEST_CSUM\", 7]}}", "$.guest.features[1]", "expected a string, got an integer (7)"),
                Arguments.of("{\"net\": 3}", "$.net", "expected an object with fields port, tap, bridge"),
                Arguments.of("[]", "$", "expected an object with fields backend, memoryMiB, net, guest, management, got an array"),
                // impossible values
                Arguments.of("{\"net\": {\"queueSize\": 300}}", "$.net.queueSize",
                        "300 is not a power of two; allowed: a power of two from 64 to 1024 (64, 128, 256, 512, 1024)"),
                Arguments.of("{\"net\": {\"queueSize\": 2048}}", "$.net.queueSize", "2048 is out of range; allowed: a power of two from 64 to 1024"),
                Arguments.of("{\"net\": {\"mac\": \"52:54:00:12:34\"}}", "$.net.mac",
                        "'52:54:00:12:34' is not a MAC address; allowed: six hex bytes separated by colons"),
                Arguments.of("{\"net\": {\"mac\": \"52-54-00-12-34-56\"}}", "$.net.mac", "allowed: six hex bytes separated by colons"),
                Arguments.of("{\"net\": {\"mac\": \"01:00:5e:00:00:01\"}}", "$.net.mac", "multicast address; allowed: a unicast MAC (even first byte)"),
                Arguments.of("{\"memoryMiB\": 8}", "$.memoryMiB", "8 is out of range; allowed: 16 to 4096 MiB"),
                Arguments.of("{\"memoryMiB\": 8192}", "$.memoryMiB", "allowed: 16 to 4096 MiB"),
                Arguments.of("{\"net\": {\"queues\": 0}}", "$.net.queues", "0 is out of range; allowed: 1 to 16 queue pairs"),
                Arguments.of("{\"net\": {\"queues\": 17}}", "$.net.queues", "allowed: 1 to 16 queue pairs"),
                Arguments.of("{\"net\": {\"mtu\": 40}}", "$.net.mtu", "allowed: 68 to 65535 bytes"),
                Arguments.of("{\"backend\": \"qemu\"}", "$.backend", "'qemu' is not allowed; allowed: emulated, emulated-sync, vhost-net, vhost-user"),
                Arguments.of("{\"net\": {\"port\": \"wifi\"}}", "$.net.port", "allowed: auto, tap, memory"),
                Arguments.of("{\"net\": {\"tap\": \"a-very-long-tap-name\"}}", "$.net.tap", "allowed: 1 to 15 bytes without '/', ':' or whitespace"),
                Arguments.of("{\"net\": {\"hostIp\": \"10.0.2.300/24\"}}", "$.net.hostIp", "allowed: IPv4/1..30 like 10.0.2.2/24"),
                Arguments.of("{\"guest\": {\"ip\": \"10.0.2\"}}", "$.guest.ip", "allowed: four numbers 0..255 like 10.0.2.15"),
                Arguments.of("{\"guest\": {\"features\": [\"GUEST_CSUM\", \"TURBO\"]}}", "$.guest.features[1]",
                        "'TURBO' is not a virtio-net feature; allowed: CSUM, CTRL_GUEST_OFFLOADS"),
                Arguments.of("{\"guest\": {\"ping\": {\"count\": -1}}}", "$.guest.ping.count", "allowed: 0 or more"),
                Arguments.of("{\"guest\": {\"ping\": {\"intervalMs\": 0}}}", "$.guest.ping.intervalMs", "allowed: 1 to 60000 ms"),
                Arguments.of("{\"guest\": {\"udpPort\": 70000}}", "$.guest.udpPort", "allowed: 0 to 65535"),
                Arguments.of("{\"management\": {\"metrics\": \"localhost:http\"}}", "$.management.metrics", "allowed: ADDR:PORT like 127.0.0.1:9464"),
                Arguments.of("{\"management\": {\"qmp\": \" \"}}", "$.management.qmp", "allowed: a file path"));
    }

    @ParameterizedTest(name = "{1}")
    @MethodSource("badConfigs")
    void badConfigIsRejectedNamingPathAndAllowedValues(String json, String path, String expected) {
        ConfigException e = assertThrows(ConfigException.class, () -> VmConfigLoader.parse("vm.json", json));
        assertTrue(e.getMessage().startsWith("vm.json: "), e.getMessage());
        assertEquals(1, e.problems().size(), e.getMessage());
        String problem = e.problems().getFirst();
        assertTrue(problem.startsWith(path + ": "), "names " + path + ": " + problem);
        assertTrue(problem.contains(expected), "says '" + expected + "': " + problem);
    }

    @ParameterizedTest
    @ValueSource(strings = {"{\"backend\": }", "{\"backend\": \"emulated\"", "{\"backend\": \"emulated\"} {}",
            "{\"backend\": \"emulated\", \"backend\": \"vhost-net\"}"})
    void malformedJsonSaysWhere(String json) {
        ConfigException e = assertThrows(ConfigException.class, () -> VmConfigLoader.parse("vm.json", json));
        assertTrue(e.getMessage().startsWith("vm.json: "), e.getMessage());
        assertTrue(e.getMessage().contains("line 1, column") || e.getMessage().contains("$"), e.getMessage());
    }

    @Test
    void everyValueProblemIsReportedAtOnce() {
        ConfigException e = assertThrows(ConfigException.class, () -> VmConfigLoader.parse("vm.json",
                "{\"memoryMiB\": 8, \"net\": {\"queueSize\": 100, \"mac\": \"zz\"}, \"guest\": {\"ping\": {\"count\": -2}}}"));
        assertEquals(List.of("$.memoryMiB", "$.net.mac", "$.net.queueSize", "$.guest.ping.count"),
                e.problems().stream().map(p -> p.substring(0, p.indexOf(':'))).toList(), e.getMessage());
        assertTrue(e.getMessage().startsWith("vm.json: 4 problems:"), e.getMessage());
    }

    @Test
    void nullOrEmptyFileIsNamed() {
        assertTrue(assertThrows(ConfigException.class, () -> VmConfigLoader.parse("vm.json", "null")).getMessage()
                .contains("$: the file holds null"));
        assertTrue(assertThrows(ConfigException.class, () -> VmConfigLoader.load(Path.of("/nonexistent/vm.json"))).getMessage()
                .contains("/nonexistent/vm.json: no such file"));
    }

    @Test
    void goodConfigsLoad() {
        assertEquals(0, VmConfigLoader.parse("empty", "{}").asFlags().size(), "an empty object: every default");
        VmConfig full = VmConfigLoader.parse("full", """
                {
                  "backend": "emulated",
                  "memoryMiB": 256,
                  "net": {"port": "tap", "tap": "vmm4j7", "bridge": null, "mac": "52:54:00:ab:cd:ef", "mtu": 9000,
                          "queues": 2, "queueSize": 1024, "hostIp": "10.0.9.1/24", "socket": null},
                  "guest": {"ip": "10.0.9.15", "features": ["GUEST_CSUM", "GUEST_TSO4"],
                            "ping": {"target": "10.0.9.1", "count": 5, "size": 1000, "intervalMs": 100},
                            "udpPort": 7, "serveSeconds": 30},
                  "management": {"qmp": "/run/vm.qmp", "metrics": "127.0.0.1:9464", "pcap": "/tmp/vm.pcap"}
                }
                """);
        var flags = full.asFlags();
        assertEquals("emulated", flags.get("--backend"));
        assertEquals(256, flags.get("--memory"));
        assertEquals(1024, flags.get("--queue-size"));
        assertEquals("52:54:00:ab:cd:ef", flags.get("--mac"));
        assertEquals(5, flags.get("--count"));
        assertEquals(100, flags.get("--interval"));
        assertArrayEquals(new String[] {"GUEST_CSUM", "GUEST_TSO4"}, (String[]) flags.get("--guest-features"));
        assertEquals(Path.of("/run/vm.qmp"), flags.get("--qmp"));
        assertEquals("127.0.0.1:9464", flags.get("--metrics"));
        assertEquals(false, flags.containsKey("--bridge"), "null is absent: the default");
        assertEquals(20, flags.size());
    }
}
