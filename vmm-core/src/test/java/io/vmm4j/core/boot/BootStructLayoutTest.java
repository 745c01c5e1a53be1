package io.vmm4j.core.boot;

import io.vmm4j.core.testing.HeaderConstants;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.StructLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The boot-protocol layouts match asm/bootparam.h (checked with gcc); the MP layouts match the MP spec's sizes. */
class BootStructLayoutTest {
    private static final String[] HEADER_FIELDS = {"setup_sects", "root_flags", "syssize", "ram_size", "vid_mode", "root_dev",
        "boot_flag", "jump", "header", "version", "realmode_swtch", "start_sys_seg", "kernel_version", "type_of_loader", "loadflags",
        "setup_move_size", "code32_start", "ramdisk_image", "ramdisk_size", "bootsect_kludge", "heap_end_ptr", "ext_loader_ver",
        "ext_loader_type", "cmd_line_ptr", "initrd_addr_max", "kernel_alignment", "relocatable_kernel", "min_alignment",
        "xloadflags", "cmdline_size", "hardware_subarch", "hardware_subarch_data", "payload_offset", "payload_length",
        "setup_data", "pref_address", "init_size", "handover_offset", "kernel_info_offset"};
    private static final String[] PARAMS_FIELDS = {"tboot_addr", "acpi_rsdp_addr", "ext_ramdisk_image", "ext_ramdisk_size",
        "ext_cmd_line_ptr", "cc_blob_address", "edid_info", "efi_info", "alt_mem_k", "scratch", "e820_entries", "eddbuf_entries",
        "edd_mbr_sig_buf_entries", "kbd_status", "secure_boot", "sentinel", "hdr", "edd_mbr_sig_buffer", "e820_table", "eddbuf"};

    @Test
    void setupHeaderAndBootParamsMatchTheKernelHeaders() throws Exception {
        HeaderConstants c = new HeaderConstants().include("stddef.h", "asm/bootparam.h")
                .expect("sizeof(struct setup_header)", SetupHeader.LAYOUT.byteSize())
                .expect("sizeof(struct boot_params)", BootParams.LAYOUT.byteSize())
                .expect("sizeof(struct boot_e820_entry)", BootParams.E820_ENTRY.byteSize())
                .expect("offsetof(struct boot_e820_entry, type)", offset(BootParams.E820_ENTRY, "type"))
                .expect("E820_MAX_ENTRIES_ZEROPAGE", E820Map.MAX_ENTRIES)
                .expect("LOADED_HIGH", SetupHeader.LOADED_HIGH)
                .expect("CAN_USE_HEAP", SetupHeader.CAN_USE_HEAP)
                .expect("XLF_KERNEL_64", SetupHeader.XLF_KERNEL_64)
                .expect("XLF_CAN_BE_LOADED_ABOVE_4G", SetupHeader.XLF_CAN_BE_LOADED_ABOVE_4G);
        for (String f : HEADER_FIELDS) {
            c.expect("offsetof(struct setup_header, " + f + ")", offset(SetupHeader.LAYOUT, f));
        }
        for (String f : PARAMS_FIELDS) {
            c.expect("offsetof(struct boot_params, " + f + ")", offset(BootParams.LAYOUT, f));
        }
        c.verify();
    }

    @Test
    void e820TypesMatchTheKernelHeaders() throws Exception {
        new HeaderConstants().include("asm/e820.h")
                .expect("E820_RAM", E820Map.RAM).expect("E820_RESERVED", E820Map.RESERVED)
                .verify();
    }

    @Test
    void mpStructuresHaveTheSpecifiedSizes() {
        // Intel MP spec 1.4: floating pointer 16 bytes (§4.1), header 44 (§4.2), processor 20, other entries 8 (§4.3)
        assertEquals(16, MpTable.FLOATING_POINTER.byteSize());
        assertEquals(44, MpTable.CONFIG_HEADER.byteSize());
        assertEquals(20, MpTable.PROCESSOR.byteSize());
        assertEquals(8, MpTable.BUS.byteSize());
        assertEquals(8, MpTable.IOAPIC.byteSize());
        assertEquals(8, MpTable.INTERRUPT.byteSize());
        assertEquals(0x22, offset(MpTable.CONFIG_HEADER, "oemcount"));
        assertEquals(0x24, offset(MpTable.CONFIG_HEADER, "lapic"));
    }

    private static long offset(StructLayout s, String field) {
        return s.byteOffset(MemoryLayout.PathElement.groupElement(field));
    }
}
