package io.vmm4j.cli.compare;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The parts of {@code compare --guest linux} that need no guest: the steady window, the guest's result lines, the cues. */
class LinuxComparisonTest {
    private static final long MS = 1_000_000;

    private static LinuxComparison.Sample sample(long ms, long console, long exits, long vmmSyscalls, long workerNs, long tapRx) {
        return new LinuxComparison.Sample(ms * MS, console, exits, new CpuSample(0, vmmSyscalls / 2, vmmSyscalls, 0),
                new CpuSample(workerNs, 0, 0, 0), tapRx, 0);
    }

    @Test
    void theSteadyWindowIsTheQuietStretchThatMovedTheMostPackets() {
        List<LinuxComparison.Sample> s = List.of(
                sample(0, 100, 0, 0, 0, 0),
                sample(200, 100, 1, 10, 1000, 50),         // quiet run 1: 0..400 ms, 100 packets
                sample(400, 100, 2, 20, 2000, 100),
                sample(600, 180, 90, 30, 3000, 5000),      // the console printed a line: exits that are not the data plane's
                sample(800, 180, 90, 30, 4000, 6000),      // quiet run 2: 600..1200 ms, 3000 packets
                sample(1000, 180, 90, 30, 5000, 7000),
                sample(1200, 180, 96, 30, 6000, 8000),
                sample(1400, 250, 200, 40, 7000, 8100));
        LinuxReport.Steady w = LinuxComparison.steady(s, 0, 1400 * MS, LinuxComparison.Sample::tapRx);
        assertNotNull(w);
        assertEquals(3000, w.packets());
        assertEquals(0.6, w.seconds(), 1e-9);
        assertEquals(6 / 3000.0, w.exitsPerPacket(), 1e-12, "the console's 88 exits are outside the window");
        assertEquals(0, w.vmmSyscallsPerPacket(), 1e-12);
        assertEquals(3000 / 3000.0, w.workerCpuNsPerPacket(), 1e-12);

        LinuxReport.Steady early = LinuxComparison.steady(s, 0, 500 * MS, LinuxComparison.Sample::tapRx);
        assertEquals(100, early.packets(), "only samples inside the phase count");
        assertEquals(10 / 100.0, early.vmmWakeupsPerPacket(), 1e-12);
        assertEquals(20 / 100.0, early.vmmSyscallsPerPacket(), 1e-12);
    }

    @Test
    void noSteadyWindowWithoutTrafficOrOutsideThePhase() {
        List<LinuxComparison.Sample> idle = List.of(sample(0, 1, 0, 0, 0, 7), sample(200, 1, 5, 0, 0, 7), sample(400, 1, 9, 0, 0, 7));
        assertNull(LinuxComparison.steady(idle, 0, 400 * MS, LinuxComparison.Sample::tapRx), "no packets moved");
        List<LinuxComparison.Sample> chatty = List.of(sample(0, 1, 0, 0, 0, 0), sample(200, 2, 5, 0, 0, 100), sample(400, 3, 9, 0, 0, 200));
        assertNull(LinuxComparison.steady(chatty, 0, 400 * MS, LinuxComparison.Sample::tapRx), "the console was never quiet");
        assertNull(LinuxComparison.steady(idle, Long.MAX_VALUE, Long.MIN_VALUE, LinuxComparison.Sample::tapRx), "the phase never began");
        assertNull(LinuxComparison.steady(List.of(), 0, 1, LinuxComparison.Sample::tapRx));
    }

    private static JsonNode json(String s) throws Exception {
        return new ObjectMapper().readTree(s);
    }

    @Test
    void theGuestsPingLineGivesCountsAndTheMedianRoundTrip() throws Exception {
        List<String> errors = new ArrayList<>();
        LinuxReport.Ping p = LinuxComparison.ping(json("{\"workload\":\"ping\",\"host\":\"10.0.2.2\",\"sent\":5,\"received\":4,"
                + "\"rtt_ms\":[0.9,0.3,5.1,0.4]}"), errors);
        assertEquals(5, p.sent());
        assertEquals(4, p.received());
        assertEquals(0.4, p.rttP50Ms(), 1e-12);
        assertEquals(5.1, p.rttMaxMs(), 1e-12);
        assertTrue(errors.isEmpty(), errors.toString());

        assertNull(LinuxComparison.ping(json("{\"workload\":\"ping\",\"error\":\"no eth0\"}"), errors));
        assertNull(LinuxComparison.ping(null, errors));
        assertEquals(List.of("ping: no eth0", "no ping result from the guest"), errors);
    }

    @Test
    void theGuestsPktgenLineGivesEachSizeAndNamesAFailedOne() throws Exception {
        List<String> errors = new ArrayList<>();
        List<LinuxReport.Pktgen> runs = LinuxComparison.pktgen(json("{\"workload\":\"pktgen\",\"dst\":\"10.0.2.2\",\"runs\":["
                + "{\"size\":64,\"packets\":12000,\"usec\":1000000,\"pps\":12000,\"errors\":0,\"tx_packets\":12000},"
                + "{\"size\":1500,\"packets\":0,\"usec\":0,\"pps\":0,\"errors\":0,\"tx_packets\":0,\"error\":\"Result: Idle\"}]}"), errors);
        assertEquals(List.of(new LinuxReport.Pktgen(64, 12000, 12000, 0)), runs);
        assertEquals(List.of("pktgen 1500 B: Result: Idle"), errors);
        assertNull(LinuxComparison.pktgen(json("{\"workload\":\"pktgen\",\"error\":\"insmod pktgen: no such file\"}"), errors));
        assertEquals("pktgen: insmod pktgen: no such file", errors.get(1));
    }

    @Test
    void theKernelCommandLineAsksForTheWorkloadsWithThePlansSecondsAndSizes() {
        PrintStream quiet = new PrintStream(PrintStream.nullOutputStream(), true, StandardCharsets.UTF_8);
        LinuxComparison c = new LinuxComparison(new LinuxComparison.Plan(List.of("emulated"), List.of(64, 1500), 2, null, null, null, quiet,
                new Progress(quiet, 1)));
        String append = c.append();
        assertTrue(append.startsWith(io.vmm4j.cli.vm.VmOptions.DEFAULT_APPEND + " "), append);
        for (String w : List.of("vmm4j.workload=ping,pktgen,count", "vmm4j.pktgen_seconds=2", "vmm4j.sizes=64,1500",
                "vmm4j.count_seconds=5", "vmm4j.ping_count=" + LinuxComparison.PINGS)) {
            assertTrue((" " + append + " ").contains(" " + w + " "), w + " in " + append);
        }
    }

    @Test
    void cuesFireOnceOnTheirLineAndResultLinesAreKeptByWorkload() throws Exception {
        ConsoleCues cues = new ConsoleCues(null);
        List<String> seen = new ArrayList<>();
        cues.once(LinuxComparison.COUNT_READY, seen::add);
        cues.once(LinuxComparison.PKTGEN_RESULT, l -> seen.add("pktgen done"));
        PrintStream out = new PrintStream(cues, true, StandardCharsets.UTF_8);
        out.print("[    1.0] virtio_net virtio0 eth0: renamed\r\n");
        out.print("vmm4j-guest: count: ready, counting eth0's rx for 3 s\n");
        out.print("vmm4j-guest: count: ready, again\n");
        out.print("vmm4j-result: {\"workload\":\"pktgen\",\"runs\":[]}\n");
        out.print("vmm4j-result: {\"workload\":\"count\",\"rx_packets\":42}\n");
        out.print("vmm4j-result: {broken\n");
        assertEquals(List.of("vmm4j-guest: count: ready, counting eth0's rx for 3 s", "pktgen done"), seen);
        assertEquals(42, cues.result("count").path("rx_packets").asLong());
        assertNull(cues.result("ping"));
        assertEquals(6, cues.tail().size());
    }
}
