package io.vmm4j.core.boot;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BzImageTest {
    @Test
    void parsesTheLabsDebianKernel() throws Exception {
        Path vmlinuz = TestKernels.labKernel();
        BzImage k = BzImage.read(vmlinuz);
        SetupHeader h = k.header();
        byte[] file = Files.readAllBytes(vmlinuz);
        assertEquals(SetupHeader.MAGIC, h.magic());
        assertTrue(h.version() >= BzImage.MIN_PROTOCOL, h.toString());
        assertTrue((h.xloadflags() & SetupHeader.XLF_KERNEL_64) != 0, h.toString());
        assertTrue((h.loadflags() & SetupHeader.LOADED_HIGH) != 0, h.toString());
        assertEquals(((file[0x1F1] & 0xFF) + 1) * 512, k.kernelOffset(), "protected-mode kernel after the setup sectors");
        assertEquals(file.length - k.kernelOffset(), k.kernelSize());
        assertTrue(h.syssizeBytes() <= k.kernelSize());
        assertTrue(h.relocatable(), "Debian kernels are relocatable");
        assertEquals(0x20_0000, h.kernelAlignment());
        assertEquals(0x20_0000, k.runtimeStart(), "align_up(1 MiB, 2 MiB)");
        assertTrue(h.initSize() > k.kernelSize(), "the kernel needs more room than its compressed image: " + h);
        assertTrue(h.cmdlineSize() >= 255, h.toString());
        String kernelDir = vmlinuz.getParent().getFileName().toString(); // e.g. 6.1.0-57-amd64
        assertTrue(k.versionString().startsWith(kernelDir + " "), "version string: " + k.versionString());
    }

    @Test
    void parsesAValidSyntheticHeader() {
        BzImage k = BzImage.parse("test.bz", TestKernels.bytes(TestKernels.valid()));
        assertEquals(0x020F, k.header().version());
        assertEquals(5 * 512, k.kernelOffset());
        assertEquals(TestKernels.BODY, k.kernelSize());
        assertEquals(TestKernels.VERSION, k.versionString());
        assertEquals(2047, k.header().cmdlineSize());
        assertEquals(0x7FFF_FFFFL, k.header().initrdAddrMax());
    }

    @Test
    void setupSectsZeroMeansFour() {
        ByteBuffer b = TestKernels.valid();
        b.put(0x1F1, (byte) 0);
        BzImage k = BzImage.parse("zero.bz", TestKernels.bytes(b));
        assertEquals(4, k.header().setupSects());
        assertEquals(5 * 512, k.kernelOffset());
    }

    @Test
    void refusesAFileWithoutHdrSMagic() {
        ByteBuffer b = TestKernels.valid();
        b.putInt(0x202, 0x464C457F); // an ELF vmlinux starts with \x7fELF, not HdrS
        String m = refusal("vmlinux", TestKernels.bytes(b));
        assertTrue(m.startsWith("vmlinux: not a bzImage: no HdrS magic at 0x202"), m);
    }

    @Test
    void refusesATooOldProtocol() {
        ByteBuffer b = TestKernels.valid();
        b.putShort(0x206, (short) 0x020B);
        String m = refusal("old.bz", TestKernels.bytes(b));
        assertTrue(m.startsWith("old.bz: boot protocol 2.11 is too old"), m);
        assertTrue(m.contains("2.12"), m);
    }

    @Test
    void refusesAKernelWithoutA64BitEntry() {
        ByteBuffer b = TestKernels.valid();
        b.putShort(0x236, (short) 0x7E);
        String m = refusal("i386.bz", TestKernels.bytes(b));
        assertTrue(m.contains("XLF_KERNEL_64"), m);
    }

    @Test
    void refusesAZImage() {
        ByteBuffer b = TestKernels.valid();
        b.put(0x211, (byte) 0);
        assertTrue(refusal("z.img", TestKernels.bytes(b)).contains("LOADED_HIGH"));
    }

    @Test
    void refusesAMissingBootFlag() {
        ByteBuffer b = TestKernels.valid();
        b.putShort(0x1FE, (short) 0);
        assertTrue(refusal("noflag.bz", TestKernels.bytes(b)).contains("boot_flag"));
    }

    @Test
    void refusesTruncatedFiles() {
        byte[] full = TestKernels.bytes(TestKernels.valid());
        String tiny = refusal("tiny", Arrays.copyOf(full, 0x100));
        assertTrue(tiny.startsWith("tiny: file truncated or not a kernel: 256 bytes"), tiny);
        String noKernel = refusal("header-only", Arrays.copyOf(full, 0x300));
        assertTrue(noKernel.startsWith("header-only: file truncated: 4 setup sectors"), noKernel);
        String shortBody = refusal("cut", Arrays.copyOf(full, full.length - 1000));
        assertTrue(shortBody.startsWith("cut: file truncated: the header says the protected-mode kernel is 65536 bytes"), shortBody);
        String cutHeader = refusal("cut-header", Arrays.copyOf(full, 0x220));
        assertTrue(cutHeader.startsWith("cut-header: file truncated: the setup header ends at 0x26c"), cutHeader);
    }

    @Test
    void aMissingFileIsOneClearLine() {
        KernelImageException e = assertThrows(KernelImageException.class, () -> BzImage.read(Path.of("/nonexistent/vmlinuz")));
        assertEquals("/nonexistent/vmlinuz: no such kernel file (give a bzImage, e.g. /boot/vmlinuz-*)", e.getMessage());
    }

    private static String refusal(String name, byte[] image) {
        return assertThrows(KernelImageException.class, () -> BzImage.parse(name, image)).getMessage();
    }
}
