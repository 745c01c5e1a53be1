package io.vmm4j.cli;

import io.vmm4j.cli.vm.VmOptions;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

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
        assertEquals("emulated-sync", o.backend(), "from the file");
        assertEquals(64, o.memoryMiB(), "from the file");
        assertEquals(2, o.pairs(), "from the file");
        assertEquals("memory", o.port(), "from the file");
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
    void withoutAFileTheDefaultsHold() {
        VmOptions o = parse().resolve();
        assertEquals("emulated", o.backend());
        assertEquals(VmOptions.DEFAULT_QUEUE_SIZE, o.queueSize());
        assertEquals(3, o.count());
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
        assertTrue(assertThrows(IllegalArgumentException.class, () -> parse("--ping-size", "1480").resolve()).getMessage()
                .contains("allowed: 0 to 1472 bytes (the MTU 1500 minus 28"));
    }

    @Test
    void aBadFileStopsTheRunWithItsPath() throws Exception {
        Path file = Files.writeString(dir.resolve("bad.json"), "{\"net\": {\"queueSize\": 300}}");
        StringWriter err = new StringWriter();
        CommandLine cli = cliWithOutput(new StringWriter(), err);
        assertEquals(1, cli.execute("run", "--config", file.toString()));
        assertTrue(err.toString().contains(file + ": $.net.queueSize: 300 is not a power of two"), err.toString());
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
