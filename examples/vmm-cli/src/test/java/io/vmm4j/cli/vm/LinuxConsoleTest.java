package io.vmm4j.cli.vm;

import io.vmm4j.core.x86.LinuxVm;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * A Linux guest's console: passed through to the log line by line, its result lines parsed, its
 * panic and last lines kept; how a run's ending becomes the VMM's error (and so its exit status).
 */
class LinuxConsoleTest {
    @Test
    void passesTheConsoleThroughAndKeepsWhatTheSummaryNeeds() throws Exception {
        ByteArrayOutputStream logged = new ByteArrayOutputStream();
        LinuxConsole console = new LinuxConsole(new PrintStream(logged, true, StandardCharsets.UTF_8), 3);
        String text = "[    0.000000] Linux version 6.1.0\r\n"
                + "vmm4j-result: {\"workload\":\"ping\",\"sent\":5,\"received\":5}\r\n"
                + "[    1.0] random line\n"
                + "vmm4j-result: not json\n"
                + "[    2.0] Kernel panic - not syncing: Attempted to kill init!\n"
                + "partial";
        console.write(text.getBytes(StandardCharsets.UTF_8));
        console.flush();
        assertEquals(text, logged.toString(StandardCharsets.UTF_8), "the log gets the console as the guest sent it");
        assertEquals(List.of(Map.of("workload", "ping", "sent", 5, "received", 5), "not json"), console.results());
        assertEquals("Kernel panic - not syncing: Attempted to kill init!", console.panic());
        assertEquals(List.of("[    1.0] random line", "vmm4j-result: not json", "[    2.0] Kernel panic - not syncing: Attempted to kill init!", "partial"),
                console.tail(), "the last 3 complete lines and the one being written");
    }

    /** The VMM's own line, printed while a console line is half sent, lands before that line, not inside it. */
    @Test
    void theVmmsLinesNeverLandInsideAConsoleLine() throws Exception {
        ByteArrayOutputStream logged = new ByteArrayOutputStream();
        PrintStream log = new PrintStream(logged, true, StandardCharsets.UTF_8);
        LinuxConsole console = new LinuxConsole(log, 3);
        console.write("vmm4j-guest: re".getBytes(StandardCharsets.UTF_8));
        log.println("virtio-net: status ACKNOWLEDGE -> ACKNOWLEDGE|DRIVER");
        console.write("bind: virtio0 unbound\n".getBytes(StandardCharsets.UTF_8));
        assertEquals("virtio-net: status ACKNOWLEDGE -> ACKNOWLEDGE|DRIVER\nvmm4j-guest: rebind: virtio0 unbound\n",
                logged.toString(StandardCharsets.UTF_8));
    }

    /** A prompt without a newline still reaches the log, a moment after its last byte. */
    @Test
    void aLineWithoutItsNewlineIsLoggedAfterAMoment() throws Exception {
        ByteArrayOutputStream logged = new ByteArrayOutputStream();
        LinuxConsole console = new LinuxConsole(new PrintStream(logged, true, StandardCharsets.UTF_8), 3);
        console.write("(none) login: ".getBytes(StandardCharsets.UTF_8));
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (logged.size() == 0 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals("(none) login: ", logged.toString(StandardCharsets.UTF_8));
    }

    @Test
    void aCleanConsoleHasNoPanic() throws Exception {
        LinuxConsole console = new LinuxConsole(new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8), 3);
        console.write("reboot: Restarting system\n".getBytes(StandardCharsets.UTF_8));
        assertNull(console.panic());
        assertEquals(List.of(), console.results());
    }

    @Test
    void onlyACleanRebootOrAStopAskedForIsASuccessfulRun() {
        assertNull(LinuxGuest.error(LinuxVm.Ending.REBOOTED, null, null, false), "reboot in the guest: status 0");
        assertEquals("the guest panicked: Kernel panic - not syncing: VFS", LinuxGuest.error(LinuxVm.Ending.REBOOTED, null,
                "Kernel panic - not syncing: VFS", false), "panic=-1 resets through the i8042 too; the console tells them apart");
        assertEquals("a vCPU failed: triple fault", LinuxGuest.error(LinuxVm.Ending.FAILED, new IllegalStateException("triple fault"),
                null, false));
        assertNull(LinuxGuest.error(LinuxVm.Ending.STOPPED, null, null, true), "QMP quit or Ctrl-C");
        assertEquals("the guest was stopped", LinuxGuest.error(LinuxVm.Ending.STOPPED, null, null, false));
    }

    @Test
    void theCommandLineCarriesTheLinksAddressesUnlessAppendGivesThem() {
        VmOptions o = VmOptions.builder().vcpu(VmOptions.Vcpu.KVM).build();
        assertEquals(VmOptions.DEFAULT_APPEND + " vmm4j.ip=10.0.2.15/24 vmm4j.host=10.0.2.2", LinuxGuestMachine.commandLine(o));
        assertEquals("console=ttyS0 vmm4j.ip=10.9.0.5/16 vmm4j.host=10.9.0.1",
                LinuxGuestMachine.commandLine(o.toBuilder().append("console=ttyS0 vmm4j.ip=10.9.0.5/16").hostIp("10.9.0.1/16").build()));
    }
}
