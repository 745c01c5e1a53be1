package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code ./vmm run --config vm.json} as a process, on the in-memory port (no privileges needed): the file sets the VM, a flag overrides it. */
class ConfigFileRunTest {
    @Test
    void theFileDescribesTheVmAndAFlagOverridesIt(@TempDir Path dir) throws Exception {
        Path config = Files.writeString(dir.resolve("vm.json"), """
                {
                  "net": {"port": "memory", "mac": "52:54:00:00:00:42", "queueSize": 128},
                  "guest": {"ping": {"count": 5, "intervalMs": 50}}
                }
                """);
        try (VmmProcess vmm = VmmProcess.start(List.of(), "run", "--config", config.toString(), "--count", "2", "--json")) {
            assertEquals(0, vmm.waitFor(60), vmm.describe());
            JsonNode j = vmm.json();
            assertEquals("in-memory port", j.get("port").asText(), "net.port from the file");
            assertEquals(2, j.get("ping").get("sent").asInt(), "--count overrides guest.ping.count");
            assertEquals(2, j.get("ping").get("received").asInt(), vmm.describe());
            assertTrue(vmm.stderr().contains("guest: virtio-net up: mac 52:54:00:00:00:42"), "net.mac from the file\n" + vmm.stderr());
            assertTrue(vmm.stderr().contains("virtio-net: queue 0 size 128 "), "net.queueSize from the file\n" + vmm.stderr());
        }
    }

    /** The refusal of a config file, as a user sees it: exit status 2 at once, one line on stderr, no boot log, no stack trace. */
    private static void assertRefused(VmmProcess vmm, String expected) throws InterruptedException {
        assertEquals(2, vmm.waitFor(30), vmm.describe());
        assertTrue(vmm.stderr().contains("vmm run: " + expected), "says '" + expected + "':\n" + vmm.describe());
        assertFalse(vmm.stderr().contains("Exception") || vmm.stderr().contains("Error") || vmm.stderr().contains("\tat "),
                "no stack trace:\n" + vmm.stderr());
        assertEquals("", vmm.stdout(), "nothing booted");
    }

    @Test
    void aFifoOrADeviceIsRefusedWithoutReadingIt(@TempDir Path dir) throws Exception {
        String rule = "not a regular file; a VM config is a JSON file of at most 1 MiB (1048576 bytes)";
        Path fifo = dir.resolve("vm.fifo");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        try (VmmProcess vmm = VmmProcess.start(List.of(), "run", "--port", "memory", "--config", fifo.toString())) {
            assertRefused(vmm, fifo + ": is a named pipe (FIFO), " + rule); // opening it would wait for a writer forever
        }
        // /dev/zero never ends: with a small heap, reading it whole would be an OutOfMemoryError
        List<String> cmd = VmmProcess.javaCommand(System.getProperty("java.class.path"));
        cmd.add(1, "-Xmx64m");
        cmd.addAll(List.of("run", "--port", "memory", "--config", "/dev/zero"));
        try (VmmProcess vmm = VmmProcess.startRaw(cmd)) {
            assertRefused(vmm, "/dev/zero: is a character device, " + rule);
        }
    }

    @Test
    void aBadValueOrEncodingInTheFileIsRefusedBeforeBoot(@TempDir Path dir) throws Exception {
        Path zeroGuest = Files.writeString(dir.resolve("guest.json"), "{\"net\": {\"port\": \"memory\"}, \"guest\": {\"ip\": \"0.0.0.0\"}}");
        try (VmmProcess vmm = VmmProcess.start(List.of(), "run", "--config", zeroGuest.toString())) {
            assertRefused(vmm, zeroGuest + ": $.guest.ip: '0.0.0.0' is the unspecified address");
        }
        Path binary = Files.write(dir.resolve("vm.bin"), new byte[] {'{', '"', (byte) 0xC3, '"', ':', '1', '}'});
        try (VmmProcess vmm = VmmProcess.start(List.of(), "run", "--port", "memory", "--config", binary.toString())) {
            assertRefused(vmm, binary + ": not valid UTF-8 at byte offset 2 (line 1): byte 0xC3 is not part of a valid UTF-8 sequence");
        }
    }
}
