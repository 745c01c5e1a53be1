package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.Test;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code ./vmm run} as an unprivileged user: no tap, so the in-memory port, said in one line, and the pings still work. */
class NonRootFallbackTest {
    @Test
    void withoutCapNetAdminRunFallsBackToTheInMemoryPort() throws Exception {
        HostRequirements.requireRoot("to start the VMM as another, unprivileged user");
        HostRequirements.requireCommand("setpriv", "util-linux");
        Path dir = Files.createTempDirectory("vmm4j-cp");
        String classpath = readableCopy(dir);
        List<String> cmd = new ArrayList<>(List.of("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"));
        cmd.addAll(VmmProcess.javaCommand(classpath));
        cmd.addAll(List.of("run", "--json"));
        try (VmmProcess vmm = VmmProcess.startRaw(cmd)) {
            assertEquals(0, vmm.waitFor(60), vmm.describe());
            List<String> explanation = vmm.stderr().lines().filter(l -> l.contains("CAP_NET_ADMIN")).toList();
            assertEquals(1, explanation.size(), "one line explains the fallback:\n" + vmm.stderr());
            assertTrue(explanation.getFirst().contains("in-memory port"), explanation.getFirst());
            JsonNode j = vmm.json();
            assertEquals("in-memory port", j.get("port").asText());
            assertEquals(3, j.get("ping").get("received").asInt(), vmm.describe());
        } finally {
            try (Stream<Path> walk = Files.walk(dir)) {
                walk.sorted((a, b) -> b.compareTo(a)).forEach(p -> p.toFile().delete());
            }
        }
    }

    /** The test class path copied where user nobody can read it (root's ~/.m2 is private). */
    private static String readableCopy(Path dir) throws IOException {
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        List<String> entries = new ArrayList<>();
        int i = 0;
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            Path src = Path.of(entry);
            if (!Files.exists(src)) {
                continue;
            }
            Path dst = dir.resolve((i++) + "-" + src.getFileName());
            if (Files.isDirectory(src)) {
                try (Stream<Path> walk = Files.walk(src)) {
                    for (Path p : walk.toList()) {
                        Path target = dst.resolve(src.relativize(p).toString());
                        if (Files.isDirectory(p)) {
                            Files.createDirectories(target);
                            Files.setPosixFilePermissions(target, PosixFilePermissions.fromString("rwxr-xr-x"));
                        } else {
                            Files.copy(p, target, StandardCopyOption.REPLACE_EXISTING);
                            Files.setPosixFilePermissions(target, PosixFilePermissions.fromString("rw-r--r--"));
                        }
                    }
                }
            } else {
                Files.copy(src, dst);
                Files.setPosixFilePermissions(dst, PosixFilePermissions.fromString("rw-r--r--"));
            }
            entries.add(dst.toString());
        }
        return String.join(File.pathSeparator, entries);
    }
}
