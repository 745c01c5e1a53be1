package io.vmm4j.tap;

import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class NetNamespaceTest {
    @Test
    void execReportsExitCodeAndBothStreamsAndDeleteIsIdempotent() {
        HostRequirements.requireRoot("creating network namespaces needs CAP_SYS_ADMIN");
        NetNamespace ns = NetNamespace.create(ScratchNames.namespace());
        try {
            assertTrue(Files.exists(Path.of("/run/netns", ns.name())));
            CommandResult r = ns.exec("sh", "-c", "echo out; echo err >&2; exit 3");
            assertEquals(3, r.exitCode());
            assertEquals("out\n", r.stdout());
            assertEquals("err\n", r.stderr());
            assertFalse(r.succeeded());
            TapException e = assertThrows(TapException.class, () -> r.orThrow("run the probe"));
            assertEquals("could not run the probe: `" + r.commandLine() + "` exited with 3: err", e.getMessage());

            // a fresh namespace has nothing but its own loopback
            String links = ns.exec("ip", "-br", "link").orThrow("list links").stdout();
            assertEquals(1, links.strip().lines().count(), links);
            assertTrue(links.startsWith("lo "), links);
        } finally {
            ns.close();
        }
        assertFalse(Files.exists(Path.of("/run/netns", ns.name())));
        ns.delete();
        assertThrows(IllegalStateException.class, () -> ns.exec("true"));
    }

    @Test
    void namesThatAreNotPlainFileNamesAreRefused() {
        for (String bad : new String[] {"", "a/b", ".", ".."}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> NetNamespace.create(bad));
            assertTrue(e.getMessage().contains("'" + bad + "'"), e.getMessage());
        }
    }
}
