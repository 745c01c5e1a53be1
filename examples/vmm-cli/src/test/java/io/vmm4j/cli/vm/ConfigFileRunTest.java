package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
}
