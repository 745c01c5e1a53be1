package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code ./vmm run --port discard} with the Java guest on the emulated data plane: no tap, no root.
 * The port fills every receive buffer the guest posts, so the guest is flooded for --serve seconds;
 * it answers nothing, so a run that would wait for replies is refused up front.
 */
class DiscardPortRunTest {
    @ParameterizedTest(name = "--poll-us {0}")
    @ValueSource(ints = {0, 200})
    void theGuestIsFloodedAndThePortsCountersAgreeWithTheQueues(int pollMicros) throws Exception {
        try (VmmProcess vmm = VmmProcess.start(List.of(), "run", "--port", "discard", "--count", "0", "--serve", "3", "--json",
                "--poll-us", Integer.toString(pollMicros))) {
            assertEquals(0, vmm.waitFor(60), vmm.describe());
            JsonNode j = vmm.json();
            assertEquals("discard port", j.get("port").asText());
            JsonNode d = j.get("discardPort");
            assertTrue(d != null, "--json has the discard port's counters: " + j);
            System.out.println("discard port: " + d + ", queues " + j.get("queues"));
            long made = d.get("rxFrames").asLong();
            assertTrue(made >= 1_000, "the port flooded the guest for 3 s: " + d);
            assertEquals(made * 64, d.get("rxBytes").asLong(), "64-byte frames");
            JsonNode rx0 = j.get("queues").get(0);
            JsonNode tx0 = j.get("queues").get(1);
            assertEquals("rx", rx0.get("direction").asText());
            long delivered = rx0.get("packets").asLong();
            // a frame made into the engine's bounce buffer may wait for buffers when the run stops (then it is a no-buffer drop)
            assertTrue(made - delivered == 0 || made - delivered == 1, "the engine delivered what the port made: made " + made
                    + ", delivered " + delivered + ": " + j);
            assertEquals(tx0.get("packets").asLong(), d.get("txFrames").asLong(), "what the guest sent was counted by the port: " + j);
            assertTrue(vmm.stderr().contains("discard port"), vmm.stderr());
            if (pollMicros > 0) {
                assertTrue(vmm.stderr().contains("busy-poll " + pollMicros + " µs"), vmm.stderr());
                // the I/O thread polls the receive ring with kicks off: the guest posts buffers without kicking
                long kicks = rx0.get("kicks").asLong();
                assertTrue(kicks * 100 < delivered, "a polling I/O thread needs (almost) no receive kicks: " + kicks + " for "
                        + delivered + " frames: " + j);
            }
        }
    }

    @Test
    void pingsThatNobodyWillAnswerAreRefusedNamingTheFlag() throws Exception {
        try (VmmProcess vmm = VmmProcess.start(List.of(), "run", "--port", "discard", "--count", "3")) {
            int exit = vmm.waitFor(60);
            assertNotEquals(0, exit, vmm.describe());
            assertTrue(vmm.stderr().contains("--count: 3: the discard port answers nothing"), vmm.describe());
            assertTrue(vmm.stderr().contains("--count 0 --udp-port 0 and --serve N"), vmm.describe());
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource(delimiter = '|', value = {
            "--frame-size | 59      | --frame-size must be 60..1514 bytes (an Ethernet frame without its FCS), was 59",
            "--poll-us    | 1000001 | --poll-us 1000001 is out of range; allowed: 0 to 1000000 µs (0: no busy-poll)"})
    void theDaemonRefusesAValueOutOfRangeNamingTheFlagBeforeItMakesItsSocket(String flag, String value, String message) throws Exception {
        java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("vmm4j-discard");
        try (VmmProcess vmm = VmmProcess.start(List.of(), "vhost-user-backend", "--socket", dir.resolve("vu.sock").toString(),
                "--port", "discard", flag, value)) {
            assertNotEquals(0, vmm.waitFor(60), vmm.describe());
            assertTrue(vmm.describe().contains(message), vmm.describe());
            assertTrue(!java.nio.file.Files.exists(dir.resolve("vu.sock")), "refused before the socket was made");
        } finally {
            java.nio.file.Files.deleteIfExists(dir.resolve("vu.sock"));
            java.nio.file.Files.delete(dir);
        }
    }
}
