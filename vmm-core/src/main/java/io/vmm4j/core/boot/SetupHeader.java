package io.vmm4j.core.boot;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static io.vmm4j.core.boot.PackedLayouts.U16;
import static io.vmm4j.core.boot.PackedLayouts.U32;
import static io.vmm4j.core.boot.PackedLayouts.U64;
import static io.vmm4j.core.boot.PackedLayouts.U8;

/**
 * The real-mode kernel header of a bzImage, {@code struct setup_header} (Linux
 * Documentation/arch/x86/boot.rst "The Real-Mode Kernel Header"; arch/x86/include/uapi/asm/bootparam.h):
 * it sits at offset {@link #OFFSET} both in the kernel file and in {@code struct boot_params}.
 * The accessors below read the fields this VMM uses from the header bytes.
 */
public final class SetupHeader {
    /** Where the header starts, in the file and in the zero page (boot.rst: "examine the header at offset 0x01f1"). */
    public static final long OFFSET = 0x1F1;
    /** "HdrS" (boot.rst, field header). */
    public static final int MAGIC = 0x5372_6448;
    /** boot.rst, field boot_flag. */
    public static final int BOOT_FLAG = 0xAA55;
    /** loadflags bit 0: the protected-mode code is loaded at 0x100000 (boot.rst, field loadflags). */
    public static final int LOADED_HIGH = 0x01;
    /** loadflags bit 7: heap_end_ptr is valid (only the real-mode setup code uses it). */
    public static final int CAN_USE_HEAP = 0x80;
    /** xloadflags bit 0: the kernel has the 64-bit entry point at load address + 0x200 (boot.rst, field xloadflags). */
    public static final int XLF_KERNEL_64 = 0x01;
    /** xloadflags bit 1: kernel, boot_params, command line and ramdisk may lie above 4 GiB. */
    public static final int XLF_CAN_BE_LOADED_ABOVE_4G = 0x02;
    /** type_of_loader for a boot loader without an assigned id (boot.rst, field type_of_loader). */
    public static final int LOADER_UNDEFINED = 0xFF;
    /** vid_mode "normal" (boot.rst, "Special Command Line Options": vga=normal means 0xFFFF). */
    public static final int VID_MODE_NORMAL = 0xFFFF;

    /** {@code struct setup_header} as of boot protocol 2.15; packed, little-endian. */
    public static final StructLayout LAYOUT = MemoryLayout.structLayout(
            U8.withName("setup_sects"),
            U16.withName("root_flags"),
            U32.withName("syssize"),
            U16.withName("ram_size"),
            U16.withName("vid_mode"),
            U16.withName("root_dev"),
            U16.withName("boot_flag"),
            U16.withName("jump"),
            U32.withName("header"),
            U16.withName("version"),
            U32.withName("realmode_swtch"),
            U16.withName("start_sys_seg"),
            U16.withName("kernel_version"),
            U8.withName("type_of_loader"),
            U8.withName("loadflags"),
            U16.withName("setup_move_size"),
            U32.withName("code32_start"),
            U32.withName("ramdisk_image"),
            U32.withName("ramdisk_size"),
            U32.withName("bootsect_kludge"),
            U16.withName("heap_end_ptr"),
            U8.withName("ext_loader_ver"),
            U8.withName("ext_loader_type"),
            U32.withName("cmd_line_ptr"),
            U32.withName("initrd_addr_max"),
            U32.withName("kernel_alignment"),
            U8.withName("relocatable_kernel"),
            U8.withName("min_alignment"),
            U16.withName("xloadflags"),
            U32.withName("cmdline_size"),
            U32.withName("hardware_subarch"),
            U64.withName("hardware_subarch_data"),
            U32.withName("payload_offset"),
            U32.withName("payload_length"),
            U64.withName("setup_data"),
            U64.withName("pref_address"),
            U32.withName("init_size"),
            U32.withName("handover_offset"),
            U32.withName("kernel_info_offset")).withName("setup_header");

    static final PackedLayouts.Field SETUP_SECTS = PackedLayouts.Field.of(LAYOUT, "setup_sects");
    static final PackedLayouts.Field SYSSIZE = PackedLayouts.Field.of(LAYOUT, "syssize");
    static final PackedLayouts.Field VID_MODE = PackedLayouts.Field.of(LAYOUT, "vid_mode");
    static final PackedLayouts.Field BOOT_FLAG_FIELD = PackedLayouts.Field.of(LAYOUT, "boot_flag");
    static final PackedLayouts.Field JUMP = PackedLayouts.Field.of(LAYOUT, "jump");
    static final PackedLayouts.Field HEADER = PackedLayouts.Field.of(LAYOUT, "header");
    static final PackedLayouts.Field VERSION = PackedLayouts.Field.of(LAYOUT, "version");
    static final PackedLayouts.Field KERNEL_VERSION = PackedLayouts.Field.of(LAYOUT, "kernel_version");
    static final PackedLayouts.Field TYPE_OF_LOADER = PackedLayouts.Field.of(LAYOUT, "type_of_loader");
    static final PackedLayouts.Field LOADFLAGS = PackedLayouts.Field.of(LAYOUT, "loadflags");
    static final PackedLayouts.Field CODE32_START = PackedLayouts.Field.of(LAYOUT, "code32_start");
    static final PackedLayouts.Field RAMDISK_IMAGE = PackedLayouts.Field.of(LAYOUT, "ramdisk_image");
    static final PackedLayouts.Field RAMDISK_SIZE = PackedLayouts.Field.of(LAYOUT, "ramdisk_size");
    static final PackedLayouts.Field CMD_LINE_PTR = PackedLayouts.Field.of(LAYOUT, "cmd_line_ptr");
    static final PackedLayouts.Field INITRD_ADDR_MAX = PackedLayouts.Field.of(LAYOUT, "initrd_addr_max");
    static final PackedLayouts.Field KERNEL_ALIGNMENT = PackedLayouts.Field.of(LAYOUT, "kernel_alignment");
    static final PackedLayouts.Field RELOCATABLE_KERNEL = PackedLayouts.Field.of(LAYOUT, "relocatable_kernel");
    static final PackedLayouts.Field XLOADFLAGS = PackedLayouts.Field.of(LAYOUT, "xloadflags");
    static final PackedLayouts.Field CMDLINE_SIZE = PackedLayouts.Field.of(LAYOUT, "cmdline_size");
    static final PackedLayouts.Field SETUP_DATA = PackedLayouts.Field.of(LAYOUT, "setup_data");
    static final PackedLayouts.Field PREF_ADDRESS = PackedLayouts.Field.of(LAYOUT, "pref_address");
    static final PackedLayouts.Field INIT_SIZE = PackedLayouts.Field.of(LAYOUT, "init_size");

    private final MemorySegment header; // exactly LAYOUT.byteSize() bytes; beyond the kernel's own header: zero

    private SetupHeader(MemorySegment header) {
        this.header = header;
    }

    /**
     * The header found at {@link #OFFSET} in {@code image}: its own length (the jump at 0x200)
     * is copied, the rest of {@link #LAYOUT} stays zero. The caller checked that {@code image}
     * holds the bytes up to the version field.
     */
    static SetupHeader copyOf(byte[] image) {
        int declaredEnd = headerEnd(image);
        int end = Math.min(Math.min(declaredEnd, image.length), (int) (OFFSET + LAYOUT.byteSize()));
        byte[] bytes = new byte[(int) LAYOUT.byteSize()];
        System.arraycopy(image, (int) OFFSET, bytes, 0, end - (int) OFFSET);
        return new SetupHeader(MemorySegment.ofArray(bytes));
    }

    /** boot.rst "64-bit Boot Protocol": the end of setup header is 0x0202 + the byte at 0x0201. */
    static int headerEnd(byte[] image) {
        return 0x202 + (image[0x201] & 0xFF);
    }

    /** The header bytes in {@link #LAYOUT} form, for copying into the zero page. */
    MemorySegment bytes() {
        return header;
    }

    /** Sectors of real-mode setup code after the boot sector; 0 in the file means 4 (boot.rst note 1). */
    public int setupSects() {
        int n = (int) SETUP_SECTS.get(header, 0);
        return n == 0 ? 4 : n;
    }

    public int bootFlag() {
        return (int) BOOT_FLAG_FIELD.get(header, 0);
    }

    public int magic() {
        return (int) HEADER.get(header, 0);
    }

    /** Boot protocol version, (major << 8) | minor, e.g. 0x020f for 2.15. */
    public int version() {
        return (int) VERSION.get(header, 0);
    }

    public static String versionString(int version) {
        return (version >> 8) + "." + String.format("%02d", version & 0xFF);
    }

    public int loadflags() {
        return (int) LOADFLAGS.get(header, 0);
    }

    public int xloadflags() {
        return (int) XLOADFLAGS.get(header, 0);
    }

    /** Size of the protected-mode code in bytes (syssize counts 16-byte paragraphs, protocol 2.04+). */
    public long syssizeBytes() {
        return SYSSIZE.get(header, 0) * 16;
    }

    /** Offset, less 0x200, of the NUL-terminated kernel version string in the file; 0 when absent. */
    public int kernelVersionOffset() {
        return (int) KERNEL_VERSION.get(header, 0);
    }

    public long code32Start() {
        return CODE32_START.get(header, 0);
    }

    /** Highest address the initrd may occupy (protocol 2.03+). */
    public long initrdAddrMax() {
        return INITRD_ADDR_MAX.get(header, 0);
    }

    public long kernelAlignment() {
        return KERNEL_ALIGNMENT.get(header, 0);
    }

    public boolean relocatable() {
        return RELOCATABLE_KERNEL.get(header, 0) != 0;
    }

    /** Longest command line without its NUL (protocol 2.06+). */
    public long cmdlineSize() {
        return CMDLINE_SIZE.get(header, 0);
    }

    public long prefAddress() {
        return PREF_ADDRESS.get(header, 0);
    }

    /** Contiguous memory from the runtime start address the kernel needs before it reads its memory map. */
    public long initSize() {
        return INIT_SIZE.get(header, 0);
    }

    @Override
    public String toString() {
        return String.format("setup_header{protocol %s, setup_sects %d, loadflags 0x%x, xloadflags 0x%x, code32_start 0x%x, "
                        + "kernel_alignment 0x%x, relocatable %s, initrd_addr_max 0x%x, cmdline_size %d, pref_address 0x%x, init_size 0x%x}",
                versionString(version()), setupSects(), loadflags(), xloadflags(), code32Start(), kernelAlignment(), relocatable(),
                initrdAddrMax(), cmdlineSize(), prefAddress(), initSize());
    }
}
