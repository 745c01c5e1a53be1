package io.vmm4j.core.boot;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * A validated x86 Linux bzImage (Documentation/arch/x86/boot.rst): its setup header and where
 * the protected-mode kernel lies in the file. Only what the 64-bit boot protocol can enter is
 * accepted: a "HdrS" header, protocol 2.12 or newer with XLF_KERNEL_64, loaded high.
 */
public final class BzImage {
    /** Oldest protocol with xloadflags, so the only one that can say it has a 64-bit entry (boot.rst: 2.12, Linux 3.8). */
    public static final int MIN_PROTOCOL = 0x020C;
    /** boot.rst "Loading The Rest of The Kernel": bzImage kernels load at 0x100000. */
    public static final long LOAD_ADDRESS = 0x10_0000;
    /** boot.rst "64-bit Boot Protocol": the 64-bit entry is the load address plus 0x200. */
    public static final long ENTRY_64_OFFSET = 0x200;

    private static final int SECTOR = 512;
    /** Bytes up to and including the fields checked before any other (the version at 0x206). */
    private static final int MIN_HEADER_BYTES = 0x208;

    private final String name;
    private final byte[] image;
    private final SetupHeader header;
    private final int kernelOffset;

    private BzImage(String name, byte[] image, SetupHeader header, int kernelOffset) {
        this.name = name;
        this.image = image;
        this.header = header;
        this.kernelOffset = kernelOffset;
    }

    /** Reads and validates {@code file}; a missing or unreadable file is a {@link KernelImageException} too. */
    public static BzImage read(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new KernelImageException(file + ": no such kernel file (give a bzImage, e.g. /boot/vmlinuz-*)", e);
        } catch (IOException e) {
            throw new KernelImageException(file + ": cannot read the kernel: " + e.getMessage(), e);
        }
        return parse(file.toString(), bytes);
    }

    /** Validates {@code image}; {@code name} (a file name) starts every error message. */
    public static BzImage parse(String name, byte[] image) {
        if (image.length < MIN_HEADER_BYTES) {
            throw new KernelImageException(String.format("%s: file truncated or not a kernel: %d bytes, but a bzImage's "
                    + "setup header alone reaches 0x%x", name, image.length, MIN_HEADER_BYTES));
        }
        SetupHeader h = SetupHeader.copyOf(image);
        if (h.magic() != SetupHeader.MAGIC) {
            throw new KernelImageException(String.format("%s: not a bzImage: no HdrS magic at 0x202 (found 0x%08x); "
                    + "give the compressed kernel (vmlinuz/bzImage), not vmlinux or an initrd", name, h.magic()));
        }
        if (h.bootFlag() != SetupHeader.BOOT_FLAG) {
            throw new KernelImageException(String.format("%s: not a bzImage: boot_flag at 0x1fe is 0x%04x, not 0xAA55", name, h.bootFlag()));
        }
        if (h.version() < MIN_PROTOCOL) {
            throw new KernelImageException(String.format("%s: boot protocol %s is too old: the 64-bit entry needs protocol "
                    + "%s or newer (Linux 3.8+)", name, SetupHeader.versionString(h.version()), SetupHeader.versionString(MIN_PROTOCOL)));
        }
        if (SetupHeader.headerEnd(image) > image.length) {
            throw new KernelImageException(String.format("%s: file truncated: the setup header ends at 0x%x but the file has %d bytes",
                    name, SetupHeader.headerEnd(image), image.length));
        }
        if ((h.loadflags() & SetupHeader.LOADED_HIGH) == 0) {
            throw new KernelImageException(name + ": a zImage (loadflags LOADED_HIGH clear), not a bzImage; only bzImage kernels load at 1 MiB");
        }
        if ((h.xloadflags() & SetupHeader.XLF_KERNEL_64) == 0) {
            throw new KernelImageException(String.format("%s: no 64-bit entry point (xloadflags 0x%x lacks XLF_KERNEL_64): "
                    + "a 32-bit kernel? Use an x86-64 kernel", name, h.xloadflags()));
        }
        int kernelOffset = (h.setupSects() + 1) * SECTOR;
        if (kernelOffset >= image.length) {
            throw new KernelImageException(String.format("%s: file truncated: %d setup sectors put the protected-mode kernel at "
                    + "offset 0x%x, but the file has only %d bytes", name, h.setupSects(), kernelOffset, image.length));
        }
        long kernelBytes = image.length - kernelOffset;
        if (h.syssizeBytes() > kernelBytes) {
            throw new KernelImageException(String.format("%s: file truncated: the header says the protected-mode kernel is %d bytes "
                    + "at offset 0x%x, but only %d bytes follow", name, h.syssizeBytes(), kernelOffset, kernelBytes));
        }
        if (h.relocatable() && Long.bitCount(h.kernelAlignment()) != 1) {
            throw new KernelImageException(String.format("%s: kernel_alignment 0x%x is not a power of two", name, h.kernelAlignment()));
        }
        return new BzImage(name, image, h, kernelOffset);
    }

    public String name() {
        return name;
    }

    public SetupHeader header() {
        return header;
    }

    /** Offset of the protected-mode kernel in the file: (setup_sects + 1) * 512. */
    public int kernelOffset() {
        return kernelOffset;
    }

    /** Bytes of the protected-mode kernel (everything after the real-mode part). */
    public int kernelSize() {
        return image.length - kernelOffset;
    }

    byte[] image() {
        return image;
    }

    /**
     * Where the kernel runs before it reads the memory map (boot.rst, field init_size):
     * align_up(load address, kernel_alignment) when relocatable, else pref_address.
     */
    public long runtimeStart() {
        if (!header.relocatable()) {
            return header.prefAddress() != 0 ? header.prefAddress() : LOAD_ADDRESS;
        }
        long a = header.kernelAlignment();
        return (LOAD_ADDRESS + a - 1) & -a;
    }

    /** The kernel's version string (e.g. "6.1.0-57-amd64 (debian-kernel@...) #1 SMP ..."), or "" when absent. */
    public String versionString() {
        int at = header.kernelVersionOffset();
        if (at == 0) {
            return "";
        }
        int start = at + 0x200;
        int end = start;
        while (end < image.length && end - start < 256 && image[end] != 0) {
            end++;
        }
        return start < image.length ? new String(image, start, end - start, StandardCharsets.US_ASCII) : "";
    }

    @Override
    public String toString() {
        return name + ": bzImage " + versionString() + ", protected-mode kernel " + kernelSize() + " bytes at 0x"
                + Integer.toHexString(kernelOffset) + ", " + header;
    }
}
