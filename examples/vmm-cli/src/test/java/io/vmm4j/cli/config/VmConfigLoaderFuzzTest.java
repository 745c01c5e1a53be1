package io.vmm4j.cli.config;

import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.AfterAll;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzz target: the VM config loader ({@code ./vmm run --config FILE}) on any file content: bytes
 * that are not UTF-8, JSON that is not an object, duplicate and unknown keys, wrong types, values
 * out of range. Invariants: the loader returns a config whose flags can be read, or throws only
 * {@link ConfigException} listing at least one problem, each a sentence naming the file; nothing
 * else escapes; one file is decided within a time bound.
 */
class VmConfigLoaderFuzzTest {
    private static final long MAX_NANOS_PER_INPUT = 2_000_000_000L;
    private static Path dir;

    @AfterAll
    static void removeDir() throws IOException {
        if (dir != null) {
            Files.deleteIfExists(dir.resolve("vm.json"));
            Files.deleteIfExists(dir);
            dir = null;
        }
    }

    @FuzzTest(maxDuration = "20s")
    void configFile(byte[] content) throws IOException {
        if (dir == null) {
            dir = Files.createTempDirectory("vm-config-fuzz");
        }
        Path file = Files.write(dir.resolve("vm.json"), content);
        long started = System.nanoTime();
        try {
            VmConfig config = VmConfigLoader.load(file);
            assertNotNull(config.asFlags());
        } catch (ConfigException e) {
            assertFalse(e.problems().isEmpty(), "a refusal lists its problems");
            for (String problem : e.problems()) {
                assertNotNull(problem);
                assertFalse(problem.isBlank(), "a problem says what is wrong");
            }
            assertTrue(e.getMessage().contains(file.toString()) || e.getMessage().contains("vm.json"),
                    "the refusal names the file: " + e.getMessage());
        }
        assertTrue(System.nanoTime() - started < MAX_NANOS_PER_INPUT, "one file took more than 2 s to decide");
    }
}
