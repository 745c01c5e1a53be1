package io.vmm4j.core.boot;

import io.vmm4j.core.memory.GuestMemory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LinuxLoaderTest {
    private static final long MIB = 1L << 20;
    private GuestMemory memory;

    @AfterEach
    void close() {
        if (memory != null) {
            memory.close();
        }
    }

    private GuestMemory ram(long bytes) {
        memory = GuestMemory.builder().region(0, bytes).build();
        return memory;
    }

    @Test
    void zeroPageHasTheLoaderFieldsAtTheDocumentedOffsets() {
        GuestMemory m = ram(64 * MIB);
        byte[] image = TestKernels.bytes(TestKernels.valid());
        byte[] initrd = new byte[3 * 4096 + 5];
        Arrays.fill(initrd, (byte) 0x5A);
        LinuxLoader.Loaded l = LinuxLoader.load(m, BzImage.parse("t.bz", image), initrd, "console=ttyS0 panic=-1", 1);

        long zp = LinuxLoader.BOOT_PARAMS;
        // boot.rst header field offsets, read as raw bytes of the zero page
        assertEquals(0x53726448, m.readInt(zp + 0x202), "the kernel's setup header was copied (HdrS)");
        assertEquals(0x020F, m.readShort(zp + 0x206));
        assertEquals((byte) 0xFF, m.readByte(zp + 0x210), "type_of_loader: undefined loader");
        assertEquals(0x01, m.readByte(zp + 0x211), "loadflags: LOADED_HIGH kept, CAN_USE_HEAP clear");
        assertEquals((short) 0xFFFF, m.readShort(zp + 0x1FA), "vid_mode normal");
        assertEquals(LinuxLoader.COMMAND_LINE, m.readInt(zp + 0x228), "cmd_line_ptr");
        assertEquals(0, m.readInt(zp + 0xC8), "ext_cmd_line_ptr");
        assertEquals(l.initrdAddress(), m.readInt(zp + 0x218) & 0xFFFF_FFFFL, "ramdisk_image");
        assertEquals(initrd.length, m.readInt(zp + 0x21C), "ramdisk_size");
        assertEquals(0, m.readInt(zp + 0xC0), "ext_ramdisk_image");
        assertEquals(0, m.readByte(zp + 0x1EF), "sentinel stays 0: the boot_params are clean");
        assertEquals(0x100000, m.readInt(zp + 0x214), "code32_start as the kernel has it (we load at the standard address)");
        assertEquals(2047, m.readInt(zp + 0x238), "cmdline_size copied");
        for (int o = 0x26C; o < 0x290; o++) {
            assertEquals(0, m.readByte(zp + o), "nothing copied past the header's end, offset 0x" + Integer.toHexString(o));
        }

        // e820: count at 0x1e8, 20-byte entries at 0x2d0 (zero-page.rst)
        List<E820Map.Entry> expected = List.of(
                new E820Map.Entry(0, 0x9FC00, E820Map.RAM),
                new E820Map.Entry(0x9FC00, 0x400, E820Map.RESERVED),
                new E820Map.Entry(0xF0000, 0x10000, E820Map.RESERVED),
                new E820Map.Entry(0x100000, 63 * MIB, E820Map.RAM));
        assertEquals(expected.size(), m.readByte(zp + 0x1E8));
        for (int i = 0; i < expected.size(); i++) {
            long e = zp + 0x2D0 + 20L * i;
            assertEquals(expected.get(i), new E820Map.Entry(m.readLong(e), m.readLong(e + 8), m.readInt(e + 16)), "entry " + i);
        }
        assertEquals(expected, BootParams.e820(m.slice(zp, BootParams.SIZE)).entries());
    }

    @Test
    void kernelCommandLineAndInitrdLandWhereTheProtocolSays() {
        GuestMemory m = ram(64 * MIB);
        byte[] image = TestKernels.bytes(TestKernels.valid());
        byte[] initrd = new byte[10000];
        for (int i = 0; i < initrd.length; i++) {
            initrd[i] = (byte) i;
        }
        LinuxLoader.Loaded l = LinuxLoader.load(m, BzImage.parse("t.bz", image), initrd, "root=/dev/ram0", 1);

        byte[] kernel = new byte[TestKernels.BODY];
        m.read(0x100000, kernel, 0, kernel.length);
        assertArrayEquals(Arrays.copyOfRange(image, 5 * 512, image.length), kernel, "protected-mode kernel at 1 MiB");
        assertEquals(0x100200, l.entry(), "startup_64 = load address + 0x200");

        byte[] cmd = new byte["root=/dev/ram0".length() + 1];
        m.read(LinuxLoader.COMMAND_LINE, cmd, 0, cmd.length);
        assertEquals("root=/dev/ram0\0", new String(cmd, StandardCharsets.US_ASCII));

        assertEquals(0, l.initrdAddress() % 4096, "page aligned");
        assertTrue(l.initrdAddress() + initrd.length <= 64 * MIB, "below the RAM top");
        assertTrue(l.initrdAddress() + 4096 + initrd.length > 64 * MIB, "as high as possible: " + l);
        assertTrue(l.initrdAddress() >= 0x200000 + TestKernels.INIT_SIZE, "above the kernel's init area");
        byte[] back = new byte[initrd.length];
        m.read(l.initrdAddress(), back, 0, back.length);
        assertArrayEquals(initrd, back);
    }

    @Test
    void initrdStaysBelowInitrdAddrMax() {
        GuestMemory m = ram(256 * MIB);
        ByteBuffer b = TestKernels.valid();
        b.putInt(0x22C, (int) (100 * MIB - 1)); // highest safe byte just below 100 MiB
        LinuxLoader.Loaded l = LinuxLoader.load(m, BzImage.parse("t.bz", TestKernels.bytes(b)), new byte[8192], "", 1);
        assertEquals(100 * MIB - 8192, l.initrdAddress());
    }

    @Test
    void noInitrdLeavesTheRamdiskFieldsZero() {
        GuestMemory m = ram(64 * MIB);
        LinuxLoader.Loaded l = LinuxLoader.load(m, BzImage.parse("t.bz", TestKernels.bytes(TestKernels.valid())), null, "", 1);
        assertEquals(0, l.initrdSize());
        assertEquals(0, m.readInt(LinuxLoader.BOOT_PARAMS + 0x218));
        assertEquals(0, m.readInt(LinuxLoader.BOOT_PARAMS + 0x21C));
    }

    @Test
    void e820LeavesThePciHoleOut() {
        memory = GuestMemory.builder().region(0, 3L << 30).region(4L << 30, 512 * MIB).build();
        List<E820Map.Entry> e = E820Map.forPc(memory).entries();
        assertEquals(List.of(
                new E820Map.Entry(0, 0x9FC00, E820Map.RAM),
                new E820Map.Entry(0x9FC00, 0x400, E820Map.RESERVED),
                new E820Map.Entry(0xF0000, 0x10000, E820Map.RESERVED),
                new E820Map.Entry(0x100000, (3L << 30) - 0x100000, E820Map.RAM),
                new E820Map.Entry(4L << 30, 512 * MIB, E820Map.RAM)), e);
        assertEquals(null, E820Map.forPc(memory).ramContaining(0xC000_0000L, 1), "the PCI hole is not RAM");
    }

    @Test
    void refusesWhatDoesNotFit() {
        byte[] image = TestKernels.bytes(TestKernels.valid());
        BzImage k = BzImage.parse("t.bz", image);
        String small = assertThrows(KernelImageException.class, () -> LinuxLoader.load(ram(16 * MIB), k, null, "", 1)).getMessage();
        assertTrue(small.startsWith("t.bz: guest RAM too small: the kernel needs RAM [0x100000, 0x1200000)"), small);
        memory.close();

        String longLine = "x".repeat(2048);
        String cmd = assertThrows(KernelImageException.class, () -> LinuxLoader.load(ram(64 * MIB), k, null, longLine, 1)).getMessage();
        assertEquals("kernel command line is 2048 bytes, but t.bz takes at most 2047 (cmdline_size)", cmd);
        memory.close();

        String big = assertThrows(KernelImageException.class,
                () -> LinuxLoader.load(ram(64 * MIB), k, new byte[(int) (60 * MIB)], "", 1)).getMessage();
        assertTrue(big.startsWith("initrd of 60 MiB does not fit in guest RAM"), big);
    }

    @Test
    void entryTablesAreAFlatGdtAndAnIdentityMapOfTheLow4GiB() {
        GuestMemory m = ram(64 * MIB);
        LinuxLoader.load(m, BzImage.parse("t.bz", TestKernels.bytes(TestKernels.valid())), null, "", 1);
        assertEquals(0x00AF_9B00_0000_FFFFL, m.readLong(LinuxLoader.GDT + 0x10), "__BOOT_CS: 64-bit code");
        assertEquals(0x00CF_9300_0000_FFFFL, m.readLong(LinuxLoader.GDT + 0x18), "__BOOT_DS: flat data");
        assertEquals(LinuxLoader.PDPT | 3, m.readLong(LinuxLoader.PML4));
        for (int g = 0; g < 4; g++) {
            assertEquals((LinuxLoader.PAGE_DIRECTORIES + 4096L * g) | 3, m.readLong(LinuxLoader.PDPT + 8L * g));
        }
        assertEquals(0x83, m.readLong(LinuxLoader.PAGE_DIRECTORIES), "first 2 MiB: present, writable, large");
        long last = m.readLong(LinuxLoader.PAGE_DIRECTORIES + 4 * 4096 - 8);
        assertEquals(0xFFE0_0000L | 0x9B, last, "the APIC's 2 MiB page is mapped uncached");
    }

    @Test
    void mpTableChecksumsAndEntries() {
        GuestMemory m = ram(64 * MIB);
        LinuxLoader.load(m, BzImage.parse("t.bz", TestKernels.bytes(TestKernels.valid())), null, "", 2);
        long fp = LinuxLoader.MP_TABLE;
        byte[] sig = new byte[4];
        m.read(fp, sig, 0, 4);
        assertEquals("_MP_", new String(sig, StandardCharsets.US_ASCII));
        assertEquals(0, sum(m.slice(fp, 16)), "floating pointer checksum");
        long table = m.readInt(fp + 4) & 0xFFFF_FFFFL;
        assertEquals(fp + 16, table);
        m.read(table, sig, 0, 4);
        assertEquals("PCMP", new String(sig, StandardCharsets.US_ASCII));
        int length = m.readShort(table + 4) & 0xFFFF;
        assertEquals(MpTable.size(2) - 16, length);
        assertEquals(0, sum(m.slice(table, length)), "configuration table checksum");
        assertEquals(0xFEE0_0000, m.readInt(table + 0x24), "local APIC address");
        // two processors (APIC ids 0 and 1, the first the BSP), the PCI and ISA buses, the IOAPIC (id 2)
        long e = table + 44;
        assertEquals(0, m.readByte(e));
        assertEquals(0, m.readByte(e + 1));
        assertEquals(3, m.readByte(e + 3), "enabled + bootstrap processor");
        assertEquals(1, m.readByte(e + 21));
        assertEquals(1, m.readByte(e + 23), "enabled, not the BSP");
        e += 40;
        assertEquals(1, m.readByte(e), "bus entry");
        assertEquals(0, m.readByte(e + 1), "PCI is bus 0, as Linux matches MP bus ids with PCI bus numbers");
        assertEquals("PCI   ", string(m, e + 2, 6));
        e += 8;
        assertEquals(1, m.readByte(e), "bus entry");
        assertEquals(1, m.readByte(e + 1));
        assertEquals("ISA   ", string(m, e + 2, 6));
        e += 8;
        assertEquals(2, m.readByte(e), "IOAPIC entry");
        assertEquals(2, m.readByte(e + 1), "IOAPIC id after the CPUs");
        assertEquals(0xFEC0_0000, m.readInt(e + 4));
        e += 8;
        for (int irq = 0; irq < 16; irq++, e += 8) {
            assertEquals(3, m.readByte(e), "I/O interrupt entry for IRQ " + irq);
            assertEquals(1, m.readByte(e + 4), "from the ISA bus");
            assertEquals(irq, m.readByte(e + 5), "source IRQ");
            assertEquals(2, m.readByte(e + 6), "to the IOAPIC");
            assertEquals(irq, m.readByte(e + 7), "pin = IRQ, as KVM routes GSIs");
        }
        for (int slot = 0; slot < 32; slot++, e += 8) {
            assertEquals(3, m.readByte(e), "I/O interrupt entry for PCI slot " + slot);
            assertEquals(0, m.readByte(e + 1), "vectored");
            assertEquals(0, m.readShort(e + 2), "conforming: level, active low on PCI");
            assertEquals(0, m.readByte(e + 4), "from PCI bus 0");
            assertEquals(slot << 2, m.readByte(e + 5) & 0xFF, "device in bits 6:2, INTA = 0 in bits 1:0");
            assertEquals(2, m.readByte(e + 6), "to the IOAPIC");
            assertEquals(MpTable.pciIntxPin(slot), m.readByte(e + 7));
            assertTrue(MpTable.pciIntxPin(slot) >= 16 && MpTable.pciIntxPin(slot) < 24, "above the ISA IRQs, on KVM's 24-pin IOAPIC");
        }
        assertEquals(2 + 2 + 1 + 16 + 32 + 2, m.readShort(table + 0x22), "entry count: 2 CPUs, 2 buses, the IOAPIC, 16 ISA, 32 PCI, 2 local");
        assertEquals(4, m.readByte(e));
        assertEquals(3, m.readByte(e + 1), "ExtINT");
        assertEquals(0, m.readByte(e + 7), "LINT0");
        assertEquals(4, m.readByte(e + 8));
        assertEquals(1, m.readByte(e + 9), "NMI");
        assertEquals((byte) 0xFF, m.readByte(e + 14), "every CPU");
        assertEquals(1, m.readByte(e + 15), "LINT1");
    }

    @Test
    void loadsTheLabsDebianKernel() throws Exception {
        java.nio.file.Path vmlinuz = TestKernels.labKernel();
        byte[] file = Files.readAllBytes(vmlinuz);
        GuestMemory m = ram(256 * MIB);
        LinuxLoader.Loaded l = LinuxLoader.load(m, BzImage.read(vmlinuz), new byte[1 << 20], "console=ttyS0", 1);
        byte[] hdr = new byte[0x26C - 0x1F1];
        m.read(LinuxLoader.BOOT_PARAMS + 0x1F1, hdr, 0, hdr.length);
        byte[] fileHdr = Arrays.copyOfRange(file, 0x1F1, 0x26C);
        // the loader writes only type_of_loader, loadflags, vid_mode, the ramdisk and command line fields
        for (int o : new int[] {0x1FA, 0x1FB, 0x210, 0x211, 0x218, 0x219, 0x21A, 0x21B, 0x21C, 0x21D, 0x21E, 0x21F, 0x228, 0x229, 0x22A, 0x22B}) {
            hdr[o - 0x1F1] = fileHdr[o - 0x1F1];
        }
        assertArrayEquals(fileHdr, hdr, "the rest of the header is the kernel's own");
        assertTrue(l.kernelInitEnd() > 0x200000 + (32 << 20), l.toString());
        assertTrue(l.initrdAddress() >= l.kernelInitEnd(), l.toString());
        byte[] start = new byte[512];
        m.read(0x100000, start, 0, 512);
        int off = ((file[0x1F1] & 0xFF) + 1) * 512;
        assertArrayEquals(Arrays.copyOfRange(file, off, off + 512), start);
    }

    private static String string(GuestMemory m, long at, int length) {
        byte[] b = new byte[length];
        m.read(at, b, 0, length);
        return new String(b, StandardCharsets.US_ASCII);
    }

    private static int sum(MemorySegment s) {
        int sum = 0;
        for (long i = 0; i < s.byteSize(); i++) {
            sum += s.get(java.lang.foreign.ValueLayout.JAVA_BYTE, i);
        }
        return sum & 0xFF;
    }
}
