package io.vmm4j.cli.compare;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Linux comparison's table: ratios against emulated, the nested-KVM warning, and rows that were not measured. */
class LinuxReportTest {
    private static LinuxReport.Row row(String mode, long pps64, long pps1500, long floodReceived, double syscalls) {
        return new LinuxReport.Row(mode, "worker of " + mode,
                List.of(new LinuxReport.Pktgen(64, pps64 * 2, pps64, 0), new LinuxReport.Pktgen(1500, pps1500 * 2, pps1500, 0)),
                new LinuxReport.Flood(1000, floodReceived, 0, 2.0), new LinuxReport.Ping(10, 10, 0.25, 1.5),
                new LinuxReport.Steady(5000, 1.0, 0.0, syscalls, syscalls / 2, 1500), new LinuxReport.Steady(800, 0.8, 0.01, syscalls, 0, 2500),
                null);
    }

    @Test
    void rowsShowRatiosAgainstEmulatedAndTheNestedWarning() {
        LinuxReport r = new LinuxReport(List.of(row("emulated", 1000, 500, 800, 1.0), row("vhost-net", 3000, 1000, 1000, 0.0),
                LinuxReport.Row.failed("vhost-user", "the vhost-user back-end did not start")),
                "UDP datagrams", "This host is itself a virtual machine (CPU \"QEMU Virtual CPU\")", true, 2, 64);
        String md = r.markdown();
        String[] lines = md.split("\n");
        assertTrue(lines[0].startsWith("| data plane (Linux guest on KVM) | guest TX 64 B pps (pktgen) | guest TX 1500 B pps (pktgen) |"), md);
        assertEquals(lines[0].chars().filter(c -> c == '|').count(), lines[1].chars().filter(c -> c == '|').count(), "header and rule agree");
        assertEquals("| emulated | 1000 | 500 | 800/1000 (200) | 400 | 0.25 (10/10) | 0.00 / 0.01 | 1.00 / 1.00 | 0.50 / 0.00 "
                + "| 1.50 / 2.50 | worker of emulated |", lines[2]);
        assertEquals("| vhost-net | 3000 (x3.00) | 1000 (x2.00) | 1000/1000 (0) | 500 (x1.25) | 0.25 (10/10) | 0.00 / 0.01 "
                + "| 0.00 / 0.00 | 0.00 / 0.00 | 1.50 / 2.50 | worker of vhost-net |", lines[3]);
        assertTrue(lines[4].startsWith("| vhost-user | not measured |"), md);
        assertEquals(lines[0].chars().filter(c -> c == '|').count(), lines[4].chars().filter(c -> c == '|').count(), "a failed row keeps the columns");
        assertTrue(md.contains("**This host is itself a virtual machine (CPU \"QEMU Virtual CPU\"): KVM here is nested, so absolute "
                + "speeds are meaningless"), md);
        assertTrue(md.contains("- Host→guest flood: UDP datagrams for 2 s"), md);
        assertTrue(md.contains("over the longest stretch of pktgen at 64 B (TX)"), md);
        assertTrue(md.contains("Not measured:\n- vhost-user: the vhost-user back-end did not start"), md);
    }

    @Test
    void withoutAnEmulatedRowThereAreNoRatiosAndOnABareHostNoWarning() {
        LinuxReport r = new LinuxReport(List.of(row("vhost-net", 3000, 1000, 1000, 0.0)), "UDP datagrams", "This host (CPU \"x\")", false, 1, 64);
        String md = r.markdown();
        assertTrue(md.contains("| vhost-net | 3000 | 1000 | 1000/1000 (0) | 500 |"), md);
        assertTrue(!md.contains("meaningless") && !md.matches("(?s).*\\(x[0-9].*"), md);
    }

    @Test
    void aRowWithSomeResultsKeepsThemAndTheErrorIsListed() {
        LinuxReport.Row partial = new LinuxReport.Row("emulated", "w", List.of(new LinuxReport.Pktgen(64, 10, 10, 0)), null, null,
                null, null, "no count result from the guest");
        String md = new LinuxReport(List.of(partial), "g", "h", false, 1, 64).markdown();
        assertTrue(md.contains("| emulated | 10 | - | - | - | - / - | - / - | - / - | - / - | w |"), md);
        assertTrue(md.contains("- emulated: no count result from the guest"), md);
    }
}
