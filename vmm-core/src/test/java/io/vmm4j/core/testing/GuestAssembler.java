package io.vmm4j.core.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Assembles a few lines of x86-64 guest code with the system's gcc/binutils into a flat binary
 * linked at a fixed address, for KVM tests whose guest is a handful of instructions. The source
 * is GNU as with {@code .intel_syntax noprefix} already on, and must define {@code _start}.
 * Needs gcc (skips, or fails under CI=true).
 */
public final class GuestAssembler {
    /**
     * A routine test guests append to their source: {@code set_gate} writes a 64-bit interrupt
     * gate into the IDT (rdi = IDT, ecx = vector, rax = handler; Intel SDM 3A §6.14.1).
     */
    public static final String SET_GATE = """

            set_gate:
                shl rcx, 4
                add rcx, rdi
                mov word ptr [rcx], ax
                mov word ptr [rcx + 2], 0x08    # code selector
                mov word ptr [rcx + 4], 0x8e00  # present, DPL 0, 64-bit interrupt gate
                shr rax, 16
                mov word ptr [rcx + 6], ax
                shr rax, 16
                mov dword ptr [rcx + 8], eax
                mov dword ptr [rcx + 12], 0
                ret
            """;

    private GuestAssembler() {
    }

    public static byte[] assemble(String source, long origin) throws IOException, InterruptedException {
        Path gcc = HostRequirements.requireCommand("gcc", "gcc");
        Path objcopy = HostRequirements.requireCommand("objcopy", "binutils");
        Path dir = Files.createTempDirectory("vmm4j-guest");
        Path src = dir.resolve("guest.S");
        Path elf = dir.resolve("guest.elf");
        Path bin = dir.resolve("guest.bin");
        Files.writeString(src, ".intel_syntax noprefix\n.code64\n.text\n.globl _start\n" + source + "\n");
        run(List.of(gcc.toString(), "-nostdlib", "-static", "-no-pie", "-Wl,--build-id=none", "-Wl,-Ttext=0x" + Long.toHexString(origin),
                "-o", elf.toString(), src.toString()), "assemble the guest");
        run(List.of(objcopy.toString(), "-O", "binary", "--only-section=.text", elf.toString(), bin.toString()), "extract the guest's code");
        byte[] code = Files.readAllBytes(bin);
        Files.deleteIfExists(src);
        Files.deleteIfExists(elf);
        Files.deleteIfExists(bin);
        Files.deleteIfExists(dir);
        return code;
    }

    private static void run(List<String> cmd, String what) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
        }
        assertEquals(0, p.exitValue(), "could not " + what + " with " + String.join(" ", cmd) + ":\n" + out);
    }
}
