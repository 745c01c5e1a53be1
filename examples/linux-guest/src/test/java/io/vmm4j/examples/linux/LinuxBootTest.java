package io.vmm4j.examples.linux;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The harness's refusals: one clear line and status 2, before any VM exists. */
class LinuxBootTest {
    private final ByteArrayOutputStream log = new ByteArrayOutputStream();

    private int run(String... args) {
        return LinuxBoot.run(args, new ByteArrayOutputStream(), new PrintStream(log, true));
    }

    @Test
    void aMissingKernelIsOneClearLine() {
        assertEquals(2, run("--kernel", "/nonexistent/vmlinuz"));
        assertEquals("vmm4j: /nonexistent/vmlinuz: no such kernel file (give a bzImage, e.g. /boot/vmlinuz-*)\n", log.toString());
    }

    @Test
    void aFileThatIsNotABzImageIsOneClearLine() throws Exception {
        Path notAKernel = Files.createTempFile("not-a-kernel", ".img");
        Files.write(notAKernel, new byte[4096]);
        try {
            assertEquals(2, run("--kernel", notAKernel.toString()));
            String[] lines = log.toString().split("\n");
            assertEquals(1, lines.length, log.toString());
            assertTrue(lines[0].startsWith("vmm4j: " + notAKernel + ": not a bzImage: no HdrS magic at 0x202"), lines[0]);
        } finally {
            Files.delete(notAKernel);
        }
    }

    @Test
    void usageErrorsNameTheOption() {
        assertEquals(2, run("--cpus", "zero", "--kernel", "k"));
        assertTrue(log.toString().startsWith("vmm4j: --cpus wants a positive whole number, not 'zero'\nusage: "), log.toString());
        log.reset();
        assertEquals(2, run("--append"));
        assertTrue(log.toString().startsWith("vmm4j: --append wants a value"), log.toString());
        log.reset();
        assertEquals(2, run());
        assertTrue(log.toString().startsWith("vmm4j: --kernel BZIMAGE is required"), log.toString());
    }
}
