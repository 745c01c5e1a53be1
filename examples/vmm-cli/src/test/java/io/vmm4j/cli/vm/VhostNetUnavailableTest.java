package io.vmm4j.cli.vm;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** On a host without /dev/vhost-net, {@code --backend vhost-net} fails at start with one clear line, not a stack trace. */
class VhostNetUnavailableTest {
    @Test
    void missingVhostNetIsOneClearLine() throws Exception {
        Assumptions.assumeFalse(Files.exists(Path.of("/dev/vhost-net")),
                "this host has /dev/vhost-net; the missing-device message is for hosts without it (the lab VM covers the device)");
        try (VmmProcess vmm = VmmProcess.start(List.of(), "run", "--backend", "vhost-net")) {
            assertEquals(1, vmm.waitFor(60), vmm.describe());
            List<String> lines = vmm.stderr().lines().filter(l -> !l.isBlank()).toList();
            assertEquals(1, lines.size(), "exactly one line:\n" + vmm.stderr());
            String line = lines.getFirst();
            assertTrue(line.startsWith("vmm run: --backend vhost-net needs /dev/vhost-net"), line);
            assertTrue(line.contains("lab VM") && line.contains("./vmm doctor"), line);
            assertFalse(vmm.stdout().contains("firmware:"), "nothing was booted");
        }
    }
}
