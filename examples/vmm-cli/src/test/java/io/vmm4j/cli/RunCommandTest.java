package io.vmm4j.cli;

import io.vmm4j.cli.vm.DataPlane;
import io.vmm4j.cli.vm.VmOptions;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code ./vmm run --config}: the file's values under the flags given; and --help on every subcommand. */
class RunCommandTest {
    @TempDir
    Path dir;

    private static RunCommand parse(String... args) {
        RunCommand run = new RunCommand();
        new CommandLine(run).parseArgs(args);
        return run;
    }

    @Test
    void flagsOverrideTheFileAndTheFileOverridesDefaults() throws Exception {
        Path file = Files.writeString(dir.resolve("vm.json"), """
                {"backend": "emulated-sync", "memoryMiB": 64,
                 "net": {"port": "memory", "queues": 2, "queueSize": 512, "mac": "52:54:00:aa:bb:cc"},
                 "guest": {"features": ["GUEST_CSUM"], "ping": {"count": 7, "intervalMs": 50}},
                 "management": {"metrics": "127.0.0.1:9999", "pcap": "/tmp/from-file.pcap"}}
                """);
        RunCommand run = parse("--config", file.toString(), "--count", "3", "--queue-size", "128", "--metrics", "9100");
        VmOptions o = run.resolve();
        assertEquals(DataPlane.EMULATED_SYNC, o.dataPlane(), "from the file");
        assertEquals(64, o.memoryMiB(), "from the file");
        assertEquals(2, o.pairs(), "from the file");
        assertEquals(VmOptions.Port.MEMORY, o.port(), "from the file");
        assertEquals("52:54:00:aa:bb:cc", o.mac(), "from the file");
        assertEquals(50, o.intervalMs(), "from the file");
        assertEquals(3, o.count(), "the flag wins, even when it equals the default");
        assertEquals(128, o.queueSize(), "the flag wins");
        assertEquals(1500, o.mtu(), "neither: the default");
        assertTrue(VirtioFeatures.has(o.wantedFeatures(), NetFeatures.GUEST_CSUM), "features from the file");
        Management.Settings s = run.managementSettings();
        assertEquals("9100", s.metrics(), "the flag wins");
        assertEquals(Path.of("/tmp/from-file.pcap"), s.pcap(), "from the file");
        assertNull(s.qmp());
    }

    @Test
    void aWorkloadBecomesTheFloodOfTheKvmGuestOnItsPort() throws Exception {
        VmOptions o = parse("--vcpu", "kvm", "--count", "0", "--workload", "tx-flood", "--frame-size", "1500", "--duration-ms", "250")
                .resolve();
        assertEquals(new io.vmm4j.cli.vm.FloodWorkload(io.vmm4j.cli.vm.FloodWorkload.Kind.TX_FLOOD, 1500, 250, 9), o.flood(),
                "port 9 (discard) when --udp-port is not given");
        assertEquals(0, o.udpPort(), "--udp-port is the flood's, not a UDP echo flow of the Java guest");
        o = parse("--vcpu", "kvm", "--workload", "rx-count", "--udp-port", "5001").resolve();
        assertEquals(5001, o.flood().port());
        assertEquals(0, o.udpPort());
        Path file = Files.writeString(dir.resolve("flood.json"), """
                {"vcpu": "kvm", "guest": {"workload": {"kind": "rx-count", "durationMs": 400}}}
                """);
        assertEquals(new io.vmm4j.cli.vm.FloodWorkload(io.vmm4j.cli.vm.FloodWorkload.Kind.RX_COUNT, 64, 400, 9),
                parse("--config", file.toString()).resolve().flood(), "from the file, the frame size by default");
        assertNull(parse().resolve().flood(), "no --workload, no flood");
    }

    @Test
    void withoutAFileTheDefaultsHold() {
        VmOptions o = parse().resolve();
        assertEquals(DataPlane.EMULATED, o.dataPlane());
        assertEquals(VmOptions.DEFAULT_QUEUE_SIZE, o.queueSize());
        assertEquals(3, o.count());
    }

    @Test
    void theBuildersDefaultsAreTheFlagsDefaults() {
        assertEquals(VmOptions.builder().build(), parse().resolve(), "a VM built in code runs as ./vmm run with no flags");
        assertEquals(VmOptions.builder().vcpu(VmOptions.Vcpu.KVM).dataPlane(DataPlane.VHOST_USER).socket("/tmp/vu.sock").pairs(2).build(),
                parse("--vcpu", "kvm", "--backend", "vhost-user", "--socket", "/tmp/vu.sock", "--queues", "2").resolve());
    }

    @Test
    void aBadFlagIsNamedWithItsAllowedValues() throws Exception {
        Path file = Files.writeString(dir.resolve("ok.json"), "{\"net\": {\"queueSize\": 256}}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> parse("--config", file.toString(), "--queue-size", "100").resolve());
        assertEquals("--queue-size: 100 is not a power of two; allowed: a power of two from 64 to 1024 (64, 128, 256, 512, 1024)",
                e.getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> parse("--mac", "01:02:03:04:05:06").resolve()).getMessage()
                .startsWith("--mac: '01:02:03:04:05:06' is a multicast address"));
        assertEquals("--guest-features: unknown virtio-net feature 'TURBO'", assertThrows(IllegalArgumentException.class,
                () -> parse("--guest-features", "GUEST_CSUM,TURBO").resolve()).getMessage().replaceAll("; known:.*", ""));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> parse("--ping-size", "1480").resolve()).getMessage()
                .contains("allowed: 0 to 1472 bytes (the MTU 1500 minus 28"));
    }

    @Test
    void aBadFileStopsTheRunWithItsPath() throws Exception {
        Path file = Files.writeString(dir.resolve("bad.json"), "{\"net\": {\"queueSize\": 300}}");
        StringWriter err = new StringWriter();
        CommandLine cli = cliWithOutput(new StringWriter(), err);
        assertEquals(RunCommand.EXIT_REFUSED, cli.execute("run", "--config", file.toString()));
        assertTrue(err.toString().contains(file + ": $.net.queueSize: 300 is not a power of two"), err.toString());
    }

    /**
     * Bad flags, one per row: the flag, its value, why, what to do. Each row runs the whole command
     * (as root that would be a tap and a VM), so the exit status and an empty boot log show the
     * refusal came before anything was created.
     */
    static Stream<Arguments> badFlags() {
        return Stream.of(
                Arguments.of(List.of("--ring", "circular"), "--ring: 'circular' is not allowed; allowed: split, packed"),
                Arguments.of(List.of("--poll-us", "-5"), "--poll-us: -5 is out of range; allowed: 0 to 1000000 µs (0: no busy-poll)"),
                Arguments.of(List.of("--poll-us", "50", "--backend", "emulated-sync"), "--poll-us: 50: busy-poll is for the emulated "
                        + "data plane's I/O threads, and --backend is emulated-sync: emulated-sync serves kicks on the vCPU thread"),
                Arguments.of(List.of("--poll-us", "50", "--backend", "vhost-user", "--socket", "/tmp/none.sock"), "--poll-us: 50: busy-poll"
                        + " is for the emulated data plane's I/O threads, and --backend is vhost-user: give --poll-us to the back-end"),
                // the guest's address
                Arguments.of(List.of("--guest-ip", "0.0.0.0"), "--guest-ip: '0.0.0.0' is the unspecified address ('any'), which no host "
                        + "can be reached at; allowed: a unicast IPv4 address like 10.0.2.15"),
                Arguments.of(List.of("--guest-ip", "255.255.255.255"), "--guest-ip: '255.255.255.255' is the limited broadcast address"),
                Arguments.of(List.of("--guest-ip", "224.0.0.251"), "--guest-ip: '224.0.0.251' is a multicast address (224.0.0.0/4)"),
                Arguments.of(List.of("--guest-ip", "127.0.0.1"), "--guest-ip: '127.0.0.1' is a loopback address"),
                Arguments.of(List.of("--guest-ip", "10.0.2.256"), "--guest-ip: '10.0.2.256' is not an IPv4 address"),
                Arguments.of(List.of("--guest-ip", "10.0.2.2"), "--guest-ip: '10.0.2.2' is the host side's address (--host-ip 10.0.2.2/24); "
                        + "give the guest another address in 10.0.2.0/24, like 10.0.2.15"),
                Arguments.of(List.of("--guest-ip", "10.0.2.255"), "--guest-ip: '10.0.2.255' is the broadcast address of the host side's subnet "
                        + "10.0.2.0/24 (--host-ip 10.0.2.2/24), not a host"),
                Arguments.of(List.of("--guest-ip", "10.0.2.0"), "--guest-ip: '10.0.2.0' is the network address of the host side's subnet"),
                Arguments.of(List.of("--guest-ip", "10.0.3.15"), "--guest-ip: '10.0.3.15' is outside the host side's subnet 10.0.2.0/24 "
                        + "(--host-ip 10.0.2.2/24) and the guest has no router; the guest reaches the host only inside one subnet: change "
                        + "--guest-ip to one like 10.0.2.15, or --host-ip"),
                Arguments.of(List.of("--host-ip", "10.231.4.1", "--guest-ip", "10.231.5.15"), "--guest-ip: '10.231.5.15' is outside the host "
                        + "side's subnet 10.231.4.0/24 (--host-ip 10.231.4.1 (/24))"),
                // the host side
                Arguments.of(List.of("--host-ip", "10.0.2.2/32"), "--host-ip: '10.0.2.2/32': a /32 prefix leaves no address for the guest "
                        + "next to the host; allowed: ADDRESS/PREFIX with a prefix of 1 to 30 like 10.0.2.2/24 (no /PREFIX: /24)"),
                Arguments.of(List.of("--host-ip", "10.0.2.2/31"), "--host-ip: '10.0.2.2/31': a /31 prefix leaves no address for the guest"),
                Arguments.of(List.of("--host-ip", "0.0.0.0/24"), "--host-ip: '0.0.0.0/24': 0.0.0.0 is the unspecified address"),
                Arguments.of(List.of("--host-ip", "10.0.2.255/24"), "--host-ip: '10.0.2.255/24': 10.0.2.255 is the broadcast address of 10.0.2.0/24"),
                Arguments.of(List.of("--host-ip", "10.0.2.2/2x"), "--host-ip: '10.0.2.2/2x': the prefix '2x' is not a number"),
                // the ping target
                Arguments.of(List.of("--ping", "0.0.0.0"), "--ping: '0.0.0.0' is the unspecified address"),
                Arguments.of(List.of("--ping", "255.255.255.255"), "--ping: '255.255.255.255' is the limited broadcast address"),
                Arguments.of(List.of("--ping", "239.1.2.3"), "--ping: '239.1.2.3' is a multicast address"),
                Arguments.of(List.of("--ping", "10.0.2.15"), "--ping: '10.0.2.15' is the guest's own address (--guest-ip); ping the host "
                        + "side (leave --ping out) or another host on the link"),
                Arguments.of(List.of("--ping", "10.0.2.255"), "--ping: '10.0.2.255' is the broadcast address of the host side's subnet"),
                Arguments.of(List.of("--ping", "8.8.8.8"), "--ping: '8.8.8.8' is outside the host side's subnet 10.0.2.0/24 (--host-ip "
                        + "10.0.2.2/24) and the guest has no router; the guest sends only to its own link: ping an address in 10.0.2.0/24, "
                        + "like the host side 10.0.2.2"),
                // the NIC
                Arguments.of(List.of("--mac", "00:00:00:00:00:00"), "--mac: '00:00:00:00:00:00' is the all-zero address, which no NIC may have"),
                Arguments.of(List.of("--mac", "ff:ff:ff:ff:ff:ff"), "--mac: 'ff:ff:ff:ff:ff:ff' is the broadcast address"),
                Arguments.of(List.of("--mac", "33:33:00:00:00:01"), "--mac: '33:33:00:00:00:01' is a multicast address (the I/G bit of the "
                        + "first byte is set)"),
                Arguments.of(List.of("--tap", "vm\t0"), "--tap: 'vm\\u00090' contains whitespace (U+0009) at index 2; an interface name is"),
                Arguments.of(List.of("--tap", "tap.with.long.name"), "--tap: 'tap.with.long.name' is 18 bytes long"),
                Arguments.of(List.of("--bridge", "br/0"), "--bridge: 'br/0' contains '/' at index 2"),
                Arguments.of(List.of("--bridge", "ovs:"), "--bridge: the bridge name in 'ovs:': '' is empty"),
                Arguments.of(List.of("--bridge", "ovs:br/0"), "--bridge: the bridge name in 'ovs:br/0': 'br/0' contains '/' at index 2"),
                Arguments.of(List.of("--bridge", "ovx:br0"), "--bridge: 'ovx:br0' contains ':' at index 3"),
                Arguments.of(List.of("--metrics", "127.0.0.1:http"), "--metrics: '127.0.0.1:http': the port 'http' is not a number"),
                // the vhost-user back-end's socket
                Arguments.of(List.of("--backend", "vhost-user", "--socket", "/tmp/a.sock", "--reconnect", "-1"), "--reconnect: -1 is "
                        + "out of range; allowed: 0 to 3600 seconds (0: never reconnect)"),
                Arguments.of(List.of("--backend", "vhost-user", "--socket", "/tmp/a.sock", "--socket-listen", "/tmp/b.sock"),
                        "--socket-listen and --socket both given: the VMM either listens for the back-end (--socket-listen) or connects "
                        + "to it (--socket); give one"),
                Arguments.of(List.of("--backend", "vhost-user", "--socket-listen", "/tmp/b.sock", "--reconnect", "2"), "--reconnect 2 "
                        + "with --socket-listen: a listening VMM accepts the back-end again by itself; --reconnect is for --socket"),
                Arguments.of(List.of("--reconnect", "2"), "--reconnect is for --backend vhost-user; --backend is emulated"),
                Arguments.of(List.of("--backend", "vhost-user", "--reconnect", "2"), "--reconnect 2 needs --socket PATH, the back-end's "
                        + "socket to retry"),
                // the C guest's floods
                Arguments.of(List.of("--workload", "tx-flood"), "--workload: tx-flood is a workload of the C guest on KVM: add --vcpu kvm"),
                Arguments.of(List.of("--vcpu", "kvm", "--workload", "flood"), "--workload: 'flood' is not allowed; allowed: tx-flood, rx-count"),
                Arguments.of(List.of("--vcpu", "kvm", "--workload", "tx-flood", "--frame-size", "2000"), "--frame-size: 2000 is out of "
                        + "range; allowed: 60 to 1514 bytes (an Ethernet frame without FCS)"),
                Arguments.of(List.of("--vcpu", "kvm", "--workload", "tx-flood", "--frame-size", "1514", "--mtu", "1400"), "--frame-size: "
                        + "1514 bytes do not fit the NIC's --mtu 1400 (at most MTU + 14 bytes of Ethernet header)"),
                Arguments.of(List.of("--vcpu", "kvm", "--workload", "rx-count", "--duration-ms", "0"), "--duration-ms: 0 is out of range; "
                        + "allowed: 1 to 3600000 ms"),
                Arguments.of(List.of("--vcpu", "kvm", "--frame-size", "128"), "--frame-size: goes with --workload tx-flood or rx-count"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badFlags")
    void aBadFlagIsRefusedBeforeAnythingIsCreated(List<String> flags, String expected) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = cliWithOutput(out, err);
        List<String> args = new ArrayList<>(List.of("run", "--count", "1", "--interval", "1"));
        args.addAll(flags);
        ByteArrayOutputStream bootLog = new ByteArrayOutputStream();
        PrintStream stdout = System.out;
        int exit;
        System.setOut(new PrintStream(bootLog, true, StandardCharsets.UTF_8)); // where a VM would log its boot
        try {
            exit = cli.execute(args.toArray(String[]::new));
        } finally {
            System.setOut(stdout);
        }
        String log = bootLog.toString(StandardCharsets.UTF_8);
        assertEquals("", log, "nothing was booted, no tap created: the boot log is empty");
        assertEquals(RunCommand.EXIT_REFUSED, exit, err.toString());
        assertTrue(err.toString().startsWith("vmm run: " + expected), "says '" + expected + "':\n" + err);
        assertEquals(1, err.toString().lines().count(), "one line:\n" + err);
    }

    @Test
    void aValueFromTheFileIsNamedWithItsFieldWhenAFlagConflictsWithIt() throws Exception {
        Path file = Files.writeString(dir.resolve("vm.json"), "{\"guest\": {\"ip\": \"10.0.9.15\"}}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> parse("--config", file.toString(), "--host-ip", "10.0.2.2/24").resolve());
        assertTrue(e.getMessage().startsWith("--guest-ip ($.guest.ip in " + file + "): '10.0.9.15' is outside the host side's subnet "
                + "10.0.2.0/24 (--host-ip 10.0.2.2/24)"), e.getMessage());
    }

    @Test
    void aHostAddressWithoutPrefixGetsTheDefaultSlash24() {
        VmOptions o = parse("--host-ip", "10.231.4.1", "--guest-ip", "10.231.4.15").resolve();
        assertEquals("10.231.4.1/24", o.hostIp(), "what goes on the tap: the guest's subnet, not a /32");
        assertEquals(24, o.prefixLength());
        assertEquals("10.231.4.1", o.hostAddress());
        assertEquals("10.231.4.1", o.target(), "the ping goes to the host side");
        assertEquals("10.0.2.2/16", parse("--host-ip", "10.0.2.2/16", "--guest-ip", "10.0.200.1").resolve().hostIp(), "a prefix is kept");
    }

    @Test
    void onABridgeTheLinkIsNotOursSoOnlyConflictsAreChecked() {
        // as in the README: two VMs on one bridge, addressed apart from the default host side
        VmOptions o = parse("--bridge", "br0", "--guest-ip", "10.0.3.11", "--ping", "10.0.3.12").resolve();
        assertEquals("10.0.3.12", o.target());
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> parse("--bridge", "br0", "--guest-ip", "10.0.3.11", "--ping", "10.0.3.11").resolve()).getMessage()
                .startsWith("--ping: '10.0.3.11' is the guest's own address"));
    }

    @Test
    void everySubcommandHasHelp() {
        StringWriter out = new StringWriter();
        CommandLine cli = cliWithOutput(out, new StringWriter());
        Map<String, CommandLine> subcommands = cli.getSubcommands();
        assertTrue(subcommands.keySet().containsAll(java.util.List.of("run", "doctor", "help")), subcommands.keySet().toString());
        for (String name : subcommands.keySet()) {
            out.getBuffer().setLength(0);
            assertEquals(0, cli.execute(name, "--help"), name + " --help");
            if (!name.equals("help")) { // picocli's own help command prints its usage elsewhere
                assertTrue(out.toString().startsWith("Usage: vmm " + name), name + " --help printed:\n" + out);
            }
        }
        out.getBuffer().setLength(0);
        cli.execute("run", "--help");
        for (String flag : new String[] {"--config", "--qmp", "--metrics", "--pcap", "--queue-size"}) {
            assertTrue(out.toString().contains(flag), "run --help lists " + flag);
        }
        assertTrue(out.toString().replaceAll("\\s+", " ").contains("without one, /24"), "run --help says a bare --host-ip gets /24:\n" + out);
    }

    private static CommandLine cliWithOutput(StringWriter out, StringWriter err) {
        CommandLine cli = new CommandLine(new Main());
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            cmd.getErr().println("vmm " + cmd.getCommandName() + ": " + e.getMessage());
            return 1;
        });
        return cli;
    }
}
