package io.vmm4j.core.boot;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.util.ArrayList;
import java.util.List;

import static io.vmm4j.core.boot.PackedLayouts.U32;
import static io.vmm4j.core.boot.PackedLayouts.U64;
import static io.vmm4j.core.boot.PackedLayouts.U8;
import static io.vmm4j.core.boot.PackedLayouts.bytes;

/**
 * {@code struct boot_params}, the "zero page" a 64-bit boot loader fills and passes in RSI
 * (Documentation/arch/x86/zero-page.rst; asm/bootparam.h). Only the fields a direct kernel boot
 * sets are named individually; the rest are byte arrays of the documented sizes.
 */
public final class BootParams {
    /** The zero page is one 4 KiB page (boot.rst "The kernel_info": boot_params is limited to 4096 bytes). */
    public static final long SIZE = 4096;

    /** {@code struct boot_e820_entry}: addr, size, type; packed, 20 bytes. */
    public static final StructLayout E820_ENTRY = MemoryLayout.structLayout(
            U64.withName("addr"), U64.withName("size"), U32.withName("type")).withName("boot_e820_entry");

    /** {@code struct boot_params}, offsets as in zero-page.rst. */
    public static final StructLayout LAYOUT = MemoryLayout.structLayout(
            bytes("screen_info", 0x40),
            bytes("apm_bios_info", 0x14),
            bytes("_pad2", 4),
            U64.withName("tboot_addr"),
            bytes("ist_info", 0x10),
            U64.withName("acpi_rsdp_addr"),
            bytes("_pad3", 8),
            bytes("hd0_info", 0x10),
            bytes("hd1_info", 0x10),
            bytes("sys_desc_table", 0x10),
            bytes("olpc_ofw_header", 0x10),
            U32.withName("ext_ramdisk_image"),
            U32.withName("ext_ramdisk_size"),
            U32.withName("ext_cmd_line_ptr"),
            bytes("_pad4", 112),
            U32.withName("cc_blob_address"),
            bytes("edid_info", 0x80),
            bytes("efi_info", 0x20),
            U32.withName("alt_mem_k"),
            U32.withName("scratch"),
            U8.withName("e820_entries"),
            U8.withName("eddbuf_entries"),
            U8.withName("edd_mbr_sig_buf_entries"),
            U8.withName("kbd_status"),
            U8.withName("secure_boot"),
            bytes("_pad5", 2),
            U8.withName("sentinel"),
            bytes("_pad6", 1),
            SetupHeader.LAYOUT.withName("hdr"),
            bytes("_pad7", 0x290 - SetupHeader.OFFSET - SetupHeader.LAYOUT.byteSize()),
            bytes("edd_mbr_sig_buffer", 0x40),
            MemoryLayout.sequenceLayout(E820Map.MAX_ENTRIES, E820_ENTRY).withName("e820_table"),
            bytes("_pad8", 48),
            bytes("eddbuf", 0x1EC),
            bytes("_pad9", 276)).withName("boot_params");

    static final long HDR = LAYOUT.byteOffset(MemoryLayout.PathElement.groupElement("hdr"));
    static final long E820_TABLE = LAYOUT.byteOffset(MemoryLayout.PathElement.groupElement("e820_table"));
    private static final PackedLayouts.Field EXT_RAMDISK_IMAGE = PackedLayouts.Field.of(LAYOUT, "ext_ramdisk_image");
    private static final PackedLayouts.Field EXT_RAMDISK_SIZE = PackedLayouts.Field.of(LAYOUT, "ext_ramdisk_size");
    private static final PackedLayouts.Field EXT_CMD_LINE_PTR = PackedLayouts.Field.of(LAYOUT, "ext_cmd_line_ptr");
    private static final PackedLayouts.Field E820_ENTRIES = PackedLayouts.Field.of(LAYOUT, "e820_entries");
    private static final PackedLayouts.Field E820_ADDR = PackedLayouts.Field.of(E820_ENTRY, "addr");
    private static final PackedLayouts.Field E820_SIZE = PackedLayouts.Field.of(E820_ENTRY, "size");
    private static final PackedLayouts.Field E820_TYPE = PackedLayouts.Field.of(E820_ENTRY, "type");

    private BootParams() {
    }

    /**
     * Fills {@code page} (4096 bytes) as the zero page for {@code kernel}: all zero, then the
     * kernel's own setup header (boot.rst "64-bit Boot Protocol": copy it from 0x1f1 of the
     * image), with the fields a loader must write: type_of_loader, vid_mode, cmd_line_ptr,
     * ramdisk_image/size (their high halves in ext_*), and the e820 table.
     */
    static void fill(MemorySegment page, BzImage kernel, E820Map e820, long cmdlineAddress, long initrdAddress, long initrdSize) {
        if (page.byteSize() != SIZE) {
            throw new IllegalArgumentException("the zero page is " + SIZE + " bytes, not " + page.byteSize());
        }
        page.fill((byte) 0); // boot.rst: "allocated ... and initialized to all zero"; this also keeps sentinel 0
        MemorySegment.copy(kernel.header().bytes(), 0, page, HDR, SetupHeader.LAYOUT.byteSize());

        SetupHeader.TYPE_OF_LOADER.set(page, HDR, SetupHeader.LOADER_UNDEFINED); // boot.rst type_of_loader: 0xFF without an id
        SetupHeader.VID_MODE.set(page, HDR, SetupHeader.VID_MODE_NORMAL);         // boot.rst vid_mode: obligatory
        // no real-mode setup code runs, so there is no heap (loadflags CAN_USE_HEAP, heap_end_ptr)
        SetupHeader.LOADFLAGS.set(page, HDR, kernel.header().loadflags() & ~SetupHeader.CAN_USE_HEAP);
        SetupHeader.CMD_LINE_PTR.set(page, HDR, cmdlineAddress & 0xFFFF_FFFFL);
        EXT_CMD_LINE_PTR.set(page, 0, cmdlineAddress >>> 32);
        SetupHeader.RAMDISK_IMAGE.set(page, HDR, initrdAddress & 0xFFFF_FFFFL);
        EXT_RAMDISK_IMAGE.set(page, 0, initrdAddress >>> 32);
        SetupHeader.RAMDISK_SIZE.set(page, HDR, initrdSize & 0xFFFF_FFFFL);
        EXT_RAMDISK_SIZE.set(page, 0, initrdSize >>> 32);
        SetupHeader.SETUP_DATA.set(page, HDR, 0); // no setup_data list

        E820_ENTRIES.set(page, 0, e820.entries().size());
        long at = E820_TABLE;
        for (E820Map.Entry e : e820.entries()) {
            E820_ADDR.set(page, at, e.address());
            E820_SIZE.set(page, at, e.size());
            E820_TYPE.set(page, at, e.type());
            at += E820_ENTRY.byteSize();
        }
    }

    /** The e820 entries written in {@code page} (for checks and logs). */
    public static E820Map e820(MemorySegment page) {
        int n = (int) E820_ENTRIES.get(page, 0);
        List<E820Map.Entry> list = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            long at = E820_TABLE + i * E820_ENTRY.byteSize();
            list.add(new E820Map.Entry(E820_ADDR.get(page, at), E820_SIZE.get(page, at), (int) E820_TYPE.get(page, at)));
        }
        return new E820Map(list);
    }

    /** Reads a setup-header field of a zero page by its C name, e.g. {@code "cmd_line_ptr"}. */
    public static long headerField(MemorySegment page, String name) {
        return PackedLayouts.Field.of(SetupHeader.LAYOUT, name).get(page, HDR);
    }

    /** Reads a top-level boot_params field by its C name, e.g. {@code "ext_ramdisk_image"}. */
    public static long field(MemorySegment page, String name) {
        return PackedLayouts.Field.of(LAYOUT, name).get(page, 0);
    }
}
