package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code ./vmm compare} end to end, briefly: every mode asked for is measured against the ceiling, with nothing lost. */
class CompareCommandTest {
    @Test
    void compareMeasuresEachModeAgainstTheCeilingAndDrawsAChart() throws Exception {
        HostRequirements.requireTaps("taps");
        Path dir = Files.createTempDirectory("vmm4j-compare");
        Path json = dir.resolve("out.json");
        Path png = dir.resolve("out.png");
        try (VmmProcess vmm = VmmProcess.start(List.of(), "compare", "--modes", "emulated-sync,emulated", "--sizes", "64",
                "--duration", "0.3", "--json", json.toString(), "--chart", png.toString())) {
            assertEquals(0, vmm.waitFor(120), vmm.describe());
            String table = vmm.stdout();
            assertTrue(table.contains("| raw tap (ceiling) | tx | 64 |"), table);
            assertTrue(table.contains("| emulated-sync | tx | 64 |") && table.contains("| emulated | rx | 64 |"), table);
            JsonNode report = new ObjectMapper().readTree(json.toFile());
            assertEquals(4, report.get("rows").size(), "2 modes x tx/rx x 1 size");
            for (JsonNode row : report.get("rows")) {
                assertTrue(row.get("error").isNull(), row.toString());
                assertTrue(row.get("received").asLong() > 0, row.toString());
                if (row.get("direction").asText().equals("rx")) {
                    assertEquals(row.get("sent").asLong(), row.get("received").asLong(), "the receive window loses nothing: " + row);
                }
            }
            assertEquals(2, report.get("ceiling").get("rows").size());
            byte[] head = Files.readAllBytes(png);
            assertTrue(head.length > 10_000, "a real chart, not an empty file");
            assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G'}, java.util.Arrays.copyOf(head, 4));
        }
    }

    /** Split and packed rings side by side: each mode measured with each layout, the rows labelled with it. */
    @Test
    void compareMeasuresSplitAndPackedRingsSideBySide() throws Exception {
        HostRequirements.requireTaps("taps");
        Path json = Files.createTempDirectory("vmm4j-compare-rings").resolve("out.json");
        try (VmmProcess vmm = VmmProcess.start(List.of(), "compare", "--modes", "emulated", "--sizes", "64", "--duration", "0.3",
                "--rings", "split,packed", "--json", json.toString())) {
            assertEquals(0, vmm.waitFor(120), vmm.describe());
            String table = vmm.stdout();
            assertTrue(table.contains("| emulated (split) | tx | 64 |") && table.contains("| emulated (packed) | rx | 64 |"), table);
            JsonNode rows = new ObjectMapper().readTree(json.toFile()).get("rows");
            assertEquals(4, rows.size(), "1 mode x 2 ring layouts x tx/rx: " + rows);
            for (JsonNode row : rows) {
                assertTrue(row.get("error").isNull(), row.toString());
                assertTrue(row.get("received").asLong() > 0, row.toString());
            }
        }
        try (VmmProcess bad = VmmProcess.start(List.of(), "compare", "--modes", "emulated", "--rings", "circular")) {
            assertTrue(bad.waitFor(60) != 0, bad.describe());
            assertTrue(bad.stderr().contains("--rings: 'circular' is not allowed; allowed: split, packed"), bad.describe());
        }
    }

    /** DPDK testpmd as the front-end: DPDK's own vhost PMD and our daemon measured in one run, each with numbers and a ratio. */
    @Test
    void compareDrivesDpdksVhostPmdAndOurDaemonWithTestpmd() throws Exception {
        HostRequirements.requireRoot("DPDK testpmd");
        HostRequirements.requireCommand("dpdk-testpmd", "dpdk");
        HostRequirements.requireCommand("gcc", "gcc"); // the C tap ceiling is built with it
        Path json = Files.createTempDirectory("vmm4j-compare-dpdk").resolve("out.json");
        try (VmmProcess vmm = VmmProcess.start(List.of(), "compare", "--guest", "dpdk", "--sizes", "64", "--duration", "2",
                "--ports", "discard,tap", "--poll-us", "0", "--json", json.toString())) {
            assertEquals(0, vmm.waitFor(300), vmm.describe());
            JsonNode rows = new ObjectMapper().readTree(json.toFile()).get("rows");
            System.out.println(vmm.stdout());
            assertEquals(6, rows.size(), "DPDK's vhost PMD tx and rx, the C tap ceiling, the discard port tx and rx, the tap tx: " + rows);
            for (JsonNode r : rows) {
                assertTrue(r.get("error").isNull(), r.toString());
                assertTrue(r.get("mpps").asDouble() > 0.01, "frames moved: " + r);
                assertTrue(r.get("samplesMpps").size() >= 1, r.toString());
                String backEnd = r.get("backEnd").asText();
                boolean ours = backEnd.startsWith("vmm4j");
                assertEquals(ours, !r.get("ratioToDpdk").isNull(), "ours have a ratio to DPDK's, DPDK's and the ceiling none: " + r);
                assertEquals(backEnd.equals("vmm4j daemon --tap"), !r.get("ratioToTapCeiling").isNull(), "the tap row's ratio to the ceiling: " + r);
                if (backEnd.startsWith("C tap") || backEnd.endsWith("--tap")) {
                    // what testpmd (or the C writer) counted is what reached the tap: the tap's own count over the row's window
                    assertTrue(r.get("tapFrames").asLong() > 1000, "the tap counted the frames: " + r);
                }
            }
            assertTrue(vmm.stdout().contains("| vmm4j daemon --port discard | rx 64 B | split |"), vmm.stdout());
            assertTrue(vmm.stdout().contains("| C tap write, one write() per frame | tx 64 B | split |"), vmm.stdout());
        }
    }

    /** The KVM guest's pings, then its floods both ways next to the C tap ceiling of the same run. */
    @Test
    void compareWithTheKvmGuestShowsKicksBypassingTheVmmAndFloodsAgainstTheCTapCeiling() throws Exception {
        HostRequirements.requireRoot("taps");
        HostRequirements.requireKvm();
        HostRequirements.requireCommand("gcc", "gcc"); // the KVM guest image and the tap ceiling helper are built with it
        Path json = Files.createTempDirectory("vmm4j-compare-kvm").resolve("out.json");
        try (VmmProcess vmm = VmmProcess.start(List.of(), "compare", "--vcpu", "kvm", "--modes", "emulated-sync,emulated",
                "--sizes", "64", "--duration", "1", "--json", json.toString())) {
            assertEquals(0, vmm.waitFor(180), vmm.describe());
            JsonNode report = new ObjectMapper().readTree(json.toFile());
            JsonNode ceiling = report.get("ceiling").get("rows");
            assertEquals(2, ceiling.size(), "the C ceiling: tx and rx at 64 B: " + ceiling);
            for (JsonNode c : ceiling) {
                assertTrue(c.get("sent").asLong() > 0 && c.get("received").asLong() > 0 && c.get("packetsPerSecond").asDouble() > 0,
                        c.toString());
            }
            JsonNode floods = report.get("kvmFloodRows");
            assertEquals(4, floods.size(), "2 modes x tx/rx x 1 size: " + floods);
            for (JsonNode f : floods) {
                assertTrue(f.get("error").isNull(), f.toString());
                assertTrue(f.get("received").asLong() > 0 && f.get("received").asLong() <= f.get("sent").asLong(), f.toString());
                assertTrue(f.get("packetsPerSecond").asDouble() > 0 && f.get("ceilingRatio").asDouble() > 0, f.toString());
            }
            String table = vmm.stdout();
            assertTrue(table.contains("| C raw tap (ceiling) | tx | 64 |") && table.contains("| C raw tap (ceiling) | rx | 64 |"), table);
            assertTrue(table.contains("| emulated-sync | tx | 64 |") && table.contains("| emulated | rx | 64 |"), table);
            // 1 ceiling + 2 modes x (pings, tx, rx): the last step is number 6 of 7, and none comes after it
            assertTrue(vmm.stderr().contains("]  6/7 ") && !vmm.stderr().contains("]  7/7 "), "progress steps: " + vmm.stderr());
            JsonNode rows = report.get("kvmRows");
            assertEquals(2, rows.size(), rows.toString());
            for (JsonNode r : rows) {
                assertTrue(r.get("error").isNull(), r.toString());
                assertEquals(r.get("pings").asInt(), r.get("replies").asInt(), "every ping answered: " + r);
            }
            assertTrue(rows.get(0).get("exitsPerPacket").asDouble() >= 0.4, "emulated-sync: each kick exits: " + rows.get(0));
            assertTrue(rows.get(1).get("exitsPerPacket").asDouble() < 0.05, "emulated: kicks by ioeventfd, no exits: " + rows.get(1));
            assertTrue(vmm.stdout().contains("| emulated | 200/200 |"), vmm.stdout());
        }
    }
}
