package io.vmm4j.cli.config;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bad VM config files, one per row: each message names the file, the JSON path and what is allowed. Good ones load. */
class VmConfigLoaderTest {
    private static final String IFNAME_RULE = "an interface name is 1 to 15 printable ASCII characters without '/', ':' or whitespace, "
            + "and not '.' or '..' (Linux IFNAMSIZ and dev_valid_name)";

    static Stream<Arguments> badConfigs() {
        return Stream.of(
                // unknown fields
                Arguments.of("{\"backend\": \"emulated\", \"memory\": 128}", "$.memory",
                        "unknown field 'memory'; allowed in $: backend, memoryMiB, net, guest, management, vcpu, linux"),
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
                Arguments.of("[]", "$", "expected an object with fields backend, memoryMiB, net, guest, management, vcpu, linux, got an array"),
                // impossible values
                Arguments.of("{\"net\": {\"queueSize\": 300}}", "$.net.queueSize",
                        "300 is not a power of two; allowed: a power of two from 64 to 1024 (64, 128, 256, 512, 1024)"),
                Arguments.of("{\"net\": {\"queueSize\": 2048}}", "$.net.queueSize", "2048 is out of range; allowed: a power of two from 64 to 1024"),
                Arguments.of("{\"net\": {\"mac\": \"52:54:00:12:34\"}}", "$.net.mac",
                        "'52:54:00:12:34' is not a MAC address; allowed: six hex bytes separated by colons"),
                Arguments.of("{\"net\": {\"mac\": \"52-54-00-12-34-56\"}}", "$.net.mac", "allowed: six hex bytes separated by colons"),
                Arguments.of("{\"net\": {\"mac\": \"01:00:5e:00:00:01\"}}", "$.net.mac",
                        "'01:00:5e:00:00:01' is a multicast address (the I/G bit of the first byte is set); allowed: a unicast MAC (even first byte)"),
                Arguments.of("{\"net\": {\"mac\": \"00:00:00:00:00:00\"}}", "$.net.mac", "'00:00:00:00:00:00' is the all-zero address, which no NIC may have"),
                Arguments.of("{\"net\": {\"mac\": \"FF:ff:ff:ff:ff:ff\"}}", "$.net.mac", "'FF:ff:ff:ff:ff:ff' is the broadcast address; allowed: a unicast MAC"),
                Arguments.of("{\"memoryMiB\": 8}", "$.memoryMiB", "8 is out of range; allowed: 16 to 4096 MiB"),
                Arguments.of("{\"guest\": {\"workload\": {\"kind\": \"flood\"}}}", "$.guest.workload.kind",
                        "'flood' is not allowed; allowed: tx-flood, rx-count"),
                Arguments.of("{\"guest\": {\"workload\": {\"frameSize\": 59}}}", "$.guest.workload.frameSize",
                        "59 is out of range; allowed: 60 to 1514 bytes"),
                Arguments.of("{\"guest\": {\"workload\": {\"durationMs\": 0}}}", "$.guest.workload.durationMs",
                        "0 is out of range; allowed: 1 to 3600000 ms"),
                Arguments.of("{\"memoryMiB\": 99999999999}", "$.memoryMiB",
                        "99999999999 does not fit in an integer (-2147483648 to 2147483647; at line 1, column 15)"),
                Arguments.of("{\"memoryMiB\": 1e3}", "$.memoryMiB", "expected an integer, got a fractional number (1e3)"),
                Arguments.of("{\"memoryMiB\": 8192}", "$.memoryMiB", "allowed: 16 to 4096 MiB"),
                Arguments.of("{\"net\": {\"queues\": 0}}", "$.net.queues", "0 is out of range; allowed: 1 to 16 queue pairs"),
                Arguments.of("{\"net\": {\"queues\": 17}}", "$.net.queues", "allowed: 1 to 16 queue pairs"),
                Arguments.of("{\"net\": {\"mtu\": 40}}", "$.net.mtu", "allowed: 68 to 65535 bytes"),
                Arguments.of("{\"backend\": \"qemu\"}", "$.backend", "'qemu' is not allowed; allowed: emulated, emulated-sync, vhost-net, vhost-user"),
                Arguments.of("{\"net\": {\"port\": \"wifi\"}}", "$.net.port", "allowed: auto, tap, memory"),
                Arguments.of("{\"net\": {\"tap\": \"a-very-long-tap-name\"}}", "$.net.tap",
                        "'a-very-long-tap-name' is 20 bytes long; " + IFNAME_RULE),
                // a NUL is valid JSON (escaped as backslash, u, 0000) but no Linux name can hold one
                Arguments.of("{\"net\": {\"tap\": \"vm\\u0000tap\"}}", "$.net.tap", "'vm\\u0000tap' contains a NUL character at index 2; " + IFNAME_RULE),
                Arguments.of("{\"net\": {\"tap\": \"\"}}", "$.net.tap", "'' is empty; " + IFNAME_RULE),
                Arguments.of("{\"net\": {\"tap\": \"..\"}}", "$.net.tap", "'..' is reserved (a path component); " + IFNAME_RULE),
                Arguments.of("{\"net\": {\"tap\": \"vm/0\"}}", "$.net.tap", "'vm/0' contains '/' at index 2; " + IFNAME_RULE),
                Arguments.of("{\"net\": {\"tap\": \"eth0:1\"}}", "$.net.tap", "'eth0:1' contains ':' at index 4; " + IFNAME_RULE),
                Arguments.of("{\"net\": {\"tap\": \"vm\\t0\"}}", "$.net.tap", "'vm\\u00090' contains whitespace (U+0009) at index 2"),
                Arguments.of("{\"net\": {\"bridge\": \"br\\u001b[0m\"}}", "$.net.bridge",
                        "'br\\u001B[0m' contains a control character (U+001B) at index 2; " + IFNAME_RULE),
                Arguments.of("{\"net\": {\"bridge\": \"brücke\"}}", "$.net.bridge", "'brücke' contains a non-ASCII character (U+00FC) at index 2"),
                Arguments.of("{\"net\": {\"hostIp\": \"10.0.2.300/24\"}}", "$.net.hostIp",
                        "'10.0.2.300/24': '10.0.2.300' is not an IPv4 address; allowed: ADDRESS/PREFIX with a prefix of 1 to 30 like 10.0.2.2/24"),
                Arguments.of("{\"net\": {\"hostIp\": \"10.0.2.2/32\"}}", "$.net.hostIp",
                        "'10.0.2.2/32': a /32 prefix leaves no address for the guest next to the host; allowed: ADDRESS/PREFIX with a prefix of 1 to 30"),
                Arguments.of("{\"net\": {\"hostIp\": \"10.0.2.2/31\"}}", "$.net.hostIp", "a /31 prefix leaves no address for the guest"),
                Arguments.of("{\"net\": {\"hostIp\": \"10.0.2.2/0\"}}", "$.net.hostIp", "a /0 prefix would put every address on the link"),
                Arguments.of("{\"net\": {\"hostIp\": \"10.0.2.2/\"}}", "$.net.hostIp", "'10.0.2.2/': the prefix '' is not a number"),
                Arguments.of("{\"net\": {\"hostIp\": \"10.0.2.0/24\"}}", "$.net.hostIp",
                        "'10.0.2.0/24': 10.0.2.0 is the network address of 10.0.2.0/24 (host part all zeros); allowed: an address inside it like 10.0.2.1/24"),
                Arguments.of("{\"net\": {\"hostIp\": \"10.0.3.255/23\"}}", "$.net.hostIp",
                        "'10.0.3.255/23': 10.0.3.255 is the broadcast address of 10.0.2.0/23 (host part all ones)"),
                Arguments.of("{\"net\": {\"hostIp\": \"127.0.0.1/8\"}}", "$.net.hostIp", "127.0.0.1 is a loopback address (127.0.0.0/8)"),
                Arguments.of("{\"guest\": {\"ip\": \"10.0.2\"}}", "$.guest.ip",
                        "'10.0.2' is not an IPv4 address; allowed: a unicast IPv4 address like 10.0.2.15 (four numbers 0..255)"),
                Arguments.of("{\"guest\": {\"ip\": \"0.0.0.0\"}}", "$.guest.ip",
                        "'0.0.0.0' is the unspecified address ('any'), which no host can be reached at; allowed: a unicast IPv4 address"),
                Arguments.of("{\"guest\": {\"ip\": \"0.1.2.3\"}}", "$.guest.ip", "'0.1.2.3' is in 0.0.0.0/8 ('this network', RFC 1122 3.2.1.3)"),
                Arguments.of("{\"guest\": {\"ip\": \"255.255.255.255\"}}", "$.guest.ip", "'255.255.255.255' is the limited broadcast address"),
                Arguments.of("{\"guest\": {\"ip\": \"224.0.0.1\"}}", "$.guest.ip", "'224.0.0.1' is a multicast address (224.0.0.0/4), not one host's"),
                Arguments.of("{\"guest\": {\"ip\": \"127.0.0.2\"}}", "$.guest.ip", "'127.0.0.2' is a loopback address"),
                Arguments.of("{\"guest\": {\"ip\": \"240.1.2.3\"}}", "$.guest.ip", "'240.1.2.3' is in the reserved block 240.0.0.0/4"),
                Arguments.of("{\"guest\": {\"ping\": {\"target\": \"239.255.255.250\"}}}", "$.guest.ping.target", "'239.255.255.250' is a multicast address"),
                Arguments.of("{\"guest\": {\"ping\": {\"target\": \"0.0.0.0\"}}}", "$.guest.ping.target", "'0.0.0.0' is the unspecified address"),
                Arguments.of("{\"management\": {\"pcap\": \"/tmp/x\\u0000.pcap\"}}", "$.management.pcap",
                        "'/tmp/x\\u0000.pcap' contains a NUL character at index 6, which no Linux path can hold"),
                Arguments.of("{\"guest\": {\"features\": [\"GUEST_CSUM\", \"TURBO\"]}}", "$.guest.features[1]",
                        "'TURBO' is not a virtio-net feature; allowed: CSUM, CTRL_GUEST_OFFLOADS"),
                Arguments.of("{\"guest\": {\"ping\": {\"count\": -1}}}", "$.guest.ping.count", "allowed: 0 or more"),
                Arguments.of("{\"guest\": {\"ping\": {\"intervalMs\": 0}}}", "$.guest.ping.intervalMs", "allowed: 1 to 60000 ms"),
                Arguments.of("{\"guest\": {\"udpPort\": 70000}}", "$.guest.udpPort", "allowed: 0 to 65535"),
                Arguments.of("{\"management\": {\"metrics\": \"localhost:http\"}}", "$.management.metrics",
                        "'localhost:http': the port 'http' is not a number; allowed: ADDR:PORT like 127.0.0.1:9464"),
                Arguments.of("{\"management\": {\"metrics\": \"127.0.0.1:70000\"}}", "$.management.metrics",
                        "'127.0.0.1:70000': the port 70000 is out of range 0..65535; allowed: ADDR:PORT"),
                Arguments.of("{\"management\": {\"qmp\": \" \"}}", "$.management.qmp", "allowed: a file path"),
                Arguments.of("{\"net\": {\"ring\": \"circular\"}}", "$.net.ring", "'circular' is not allowed; allowed: split, packed"),
                Arguments.of("{\"net\": {\"pollUs\": -1}}", "$.net.pollUs", "-1 is out of range; allowed: 0 to 1000000 µs"),
                Arguments.of("{\"net\": {\"pollUs\": 2000000}}", "$.net.pollUs", "2000000 is out of range; allowed: 0 to 1000000 µs"));
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

    /** Problems of the document as a whole: the message says where, with no JSON path to name. */
    static Stream<Arguments> badDocuments() {
        return Stream.of(
                Arguments.of("{} {}", "trailing content after the top-level object at line 1, column 4; a VM config is exactly one JSON object"),
                Arguments.of("{\"backend\": \"emulated\"}\n\n  {\"memoryMiB\": 64}\n",
                        "trailing content after the top-level object at line 3, column 3"),
                Arguments.of("{}}", "trailing content after the top-level object at line 1, column 3"),
                Arguments.of("{} x", "trailing content after the top-level object at line 1, column 4"),
                Arguments.of("null null", "trailing content after the top-level value at line 1, column 6"),
                Arguments.of("{\"backend\": \"emul\u0000ated\"}", "$.backend: not valid JSON at line 1, column 18: Illegal unquoted "
                        + "character ((CTRL-CHAR, code 0)): has to be escaped"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badDocuments")
    void aBadDocumentSaysWhereAndWhat(String json, String expected) {
        ConfigException e = assertThrows(ConfigException.class, () -> VmConfigLoader.parse("vm.json", json));
        assertEquals(1, e.problems().size(), e.getMessage());
        assertTrue(e.problems().getFirst().startsWith(expected), "says '" + expected + "': " + e.getMessage());
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
    void aFileThatIsNotUtf8NamesTheByte(@TempDir Path dir) throws Exception {
        byte[] bytes = "{\"net\": {\n  \"tap\": \"vm\u00e40\"}}".getBytes(StandardCharsets.ISO_8859_1); // Latin-1 ä, 0xE4
        Path file = Files.write(dir.resolve("latin1.json"), bytes);
        ConfigException e = assertThrows(ConfigException.class, () -> VmConfigLoader.load(file));
        assertEquals(file + ": not valid UTF-8 at byte offset 22 (line 2): byte 0xE4 is not part of a valid UTF-8 sequence there; "
                + "a VM config is JSON text in UTF-8 (RFC 8259 section 8.1)", e.getMessage());
        Path binary = Files.write(dir.resolve("vm.bin"), new byte[] {(byte) 0xFF, (byte) 0xFE, 0, 0x7B});
        String message = assertThrows(ConfigException.class, () -> VmConfigLoader.load(binary)).getMessage();
        assertTrue(message.contains(": not valid UTF-8 at byte offset 0 (line 1): byte 0xFF is not part"), "a binary file: " + message);
    }

    @Test
    void aByteOrderMarkIsIgnored(@TempDir Path dir) throws Exception {
        byte[] json = "{\"memoryMiB\": 64}".getBytes(StandardCharsets.UTF_8);
        byte[] withBom = new byte[json.length + 3];
        withBom[0] = (byte) 0xEF;
        withBom[1] = (byte) 0xBB;
        withBom[2] = (byte) 0xBF;
        System.arraycopy(json, 0, withBom, 3, json.length);
        assertEquals(64, VmConfigLoader.load(Files.write(dir.resolve("bom.json"), withBom)).memoryMiB());
    }

    @Test
    void onlyARegularFileIsRead(@TempDir Path dir) throws Exception {
        String rule = "a VM config is a JSON file of at most 1 MiB (1048576 bytes)";
        assertEquals(dir + ": is a directory, not a regular file; " + rule,
                assertThrows(ConfigException.class, () -> VmConfigLoader.load(dir)).getMessage());
        assertEquals("/dev/null: is a character device, not a regular file; " + rule,
                assertThrows(ConfigException.class, () -> VmConfigLoader.load(Path.of("/dev/null"))).getMessage());
        // a FIFO: open(2) would block until a writer came; the type is checked first, so no wait
        Path fifo = dir.resolve("vm.fifo");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        ConfigException e = assertTimeoutPreemptively(Duration.ofSeconds(10), () -> assertThrows(ConfigException.class,
                () -> VmConfigLoader.load(fifo)));
        assertEquals(fifo + ": is a named pipe (FIFO), not a regular file; " + rule, e.getMessage());
        Path link = Files.createSymbolicLink(dir.resolve("link.json"), fifo);
        assertTrue(assertTimeoutPreemptively(Duration.ofSeconds(10), () -> assertThrows(ConfigException.class,
                () -> VmConfigLoader.load(link))).getMessage().contains("is a named pipe (FIFO)"), "a link is followed to what it names");
    }

    @Test
    void aFileOverTheLimitIsRefusedUnread(@TempDir Path dir) throws Exception {
        Path big = dir.resolve("big.json");
        try (RandomAccessFile f = new RandomAccessFile(big.toFile(), "rw")) {
            f.setLength(VmConfigLoader.MAX_FILE_BYTES + 1L); // sparse: no disk used
        }
        assertEquals(big + ": is 1048577 bytes, too large; a VM config is a JSON file of at most 1 MiB (1048576 bytes)",
                assertThrows(ConfigException.class, () -> VmConfigLoader.load(big)).getMessage());
        Path justFits = Files.writeString(dir.resolve("fits.json"), "{}" + " ".repeat(VmConfigLoader.MAX_FILE_BYTES - 2));
        assertEquals(0, VmConfigLoader.load(justFits).asFlags().size(), "exactly the limit is fine");
    }

    @Test
    void everyFlagHasItsField() {
        VmConfig full = VmConfigLoader.parse("full", FULL);
        assertEquals(full.asFlags().keySet(), VmConfig.FIELD_OF_FLAG.keySet(), "one JSON path per flag the file can set");
    }

    private static final String FULL = """
            {
              "backend": "emulated",
              "memoryMiB": 256,
              "net": {"port": "tap", "tap": "vmm4j7", "bridge": "br0", "mac": "52:54:00:ab:cd:ef", "mtu": 9000,
                      "queues": 2, "queueSize": 1024, "hostIp": "10.0.9.1/24", "socket": "/tmp/vu.sock",
                      "reconnect": 2, "socketListen": "/tmp/vmm.sock", "ring": "packed",
                      "pollUs": 50},
              "guest": {"ip": "10.0.9.15", "features": ["GUEST_CSUM", "GUEST_TSO4"],
                        "ping": {"target": "10.0.9.1", "count": 5, "size": 1000, "intervalMs": 100},
                        "udpPort": 7, "serveSeconds": 30, "workload": {"kind": "tx-flood", "frameSize": 128, "durationMs": 500}},
              "management": {"qmp": "/run/vm.qmp", "metrics": "127.0.0.1:9464", "pcap": "/tmp/vm.pcap"},
              "vcpu": "kvm",
              "linux": {"kernel": "/boot/vmlinuz", "initrd": "/tmp/guest.cpio.gz", "append": "console=ttyS0", "cpus": 2}
            }
            """;

    @Test
    void theBackendSocketFieldsAreChecked() {
        ConfigException e = assertThrows(ConfigException.class, () -> VmConfigLoader.parse("vm.json",
                "{\"net\": {\"socket\": \"/tmp/a.sock\", \"reconnect\": 7200}}"));
        assertEquals(List.of("$.net.reconnect"), e.problems().stream().map(p -> p.substring(0, p.indexOf(':'))).toList(), e.getMessage());
        assertTrue(e.getMessage().contains("7200 is out of range; allowed: 0 to 3600 seconds"), e.getMessage());
        assertEquals("/tmp/b.sock", VmConfigLoader.parse("vm.json", "{\"net\": {\"socketListen\": \"/tmp/b.sock\"}}").asFlags()
                .get("--socket-listen"));
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
        assertEquals("10.0.9.1", VmConfigLoader.parse("no prefix", "{\"net\": {\"hostIp\": \"10.0.9.1\"}}").net().hostIp(),
                "a host address without a prefix is accepted (it gets /24)");
    }
}
