package io.vmm4j.core.boot;

import io.vmm4j.core.kvm.KvmRegs;
import io.vmm4j.core.kvm.KvmSregs;
import io.vmm4j.core.kvm.KvmVcpu;
import io.vmm4j.core.kvm.LongMode;
import io.vmm4j.core.memory.GuestMemory;

import java.nio.charset.StandardCharsets;

/**
 * Direct boot of a bzImage through the 64-bit boot protocol (Documentation/arch/x86/boot.rst
 * "64-bit Boot Protocol"): {@link #load} puts the protected-mode kernel at 1 MiB, the initrd high
 * below initrd_addr_max, the command line, the zero page and the MP table into guest RAM;
 * {@link #enter} puts the boot vCPU at startup_64 with the state the protocol requires.
 *
 * <p>Guest-physical layout below 1 MiB (all inside the e820 RAM below the EBDA):
 * GDT 0x500, TSS 0x580, zero page 0x7000, boot stack below 0x8FF0, identity page tables
 * 0x9000-0xEFFF (PML4, PDPT, four page directories of 2 MiB pages: the low 4 GiB), command line
 * 0x20000, MP table at the EBDA 0x9FC00.
 */
public final class LinuxLoader {
    public static final long GDT = 0x500;
    public static final long TSS = 0x580;
    public static final long BOOT_PARAMS = 0x7000;
    public static final long BOOT_STACK = 0x8FF0;
    public static final long PML4 = 0x9000;
    public static final long PDPT = 0xA000;
    public static final long PAGE_DIRECTORIES = 0xB000;
    public static final long COMMAND_LINE = 0x2_0000;
    public static final long MP_TABLE = E820Map.EBDA_START;
    /** Bytes identity-mapped at entry (boot.rst: the kernel's init_size range, the zero page and the command line must be). */
    public static final long IDENTITY_MAPPED = 4L << 30;
    /** Where the PCI and APIC windows start in this VMM's layout: mapped uncached. */
    public static final long DEVICE_WINDOW = 3L << 30;

    /** boot.rst "64-bit Boot Protocol": selectors __BOOT_CS and __BOOT_DS. */
    public static final int BOOT_CS = 0x10;
    public static final int BOOT_DS = 0x18;
    public static final int BOOT_TSS = 0x20;
    private static final int GDT_ENTRIES = 6; // null, unused, CS, DS, and the 16-byte TSS descriptor
    /** Protocols before 2.06 have no cmdline_size field and take 255 characters (boot.rst "The Kernel Command Line"). */
    private static final long OLD_CMDLINE_MAX = 255;

    // SDM Vol. 3A §2.5 control registers, §4.5 paging entries; Vol. 4 EFER (MSR C000_0080H)
    private static final long CR0_PE = 1L;
    private static final long CR0_MP = 1L << 1;
    private static final long CR0_ET = 1L << 4;
    private static final long CR0_NE = 1L << 5;
    private static final long CR0_WP = 1L << 16;
    private static final long CR0_PG = 1L << 31;
    private static final long CR4_PAE = 1L << 5;
    private static final long EFER_LME = 1L << 8;
    private static final long EFER_LMA = 1L << 10;

    /** Where everything went, for {@link #enter} and for logs. */
    public record Loaded(BzImage kernel, long entry, long bootParams, long commandLine, int commandLineLength,
                         long initrdAddress, long initrdSize, long kernelInitEnd, E820Map e820, int cpus) {
        @Override
        public String toString() {
            return String.format("kernel at 0x%x (entry 0x%x, runs from 0x%x up to 0x%x), zero page 0x%x, command line 0x%x (%d bytes), "
                            + "initrd %s, %d cpu(s), %s", BzImage.LOAD_ADDRESS, entry, kernel.runtimeStart(), kernelInitEnd, bootParams,
                    commandLine, commandLineLength, initrdSize == 0 ? "none" : String.format("[0x%x, +%d)", initrdAddress, initrdSize), cpus, e820);
        }
    }

    private LinuxLoader() {
    }

    /**
     * Loads {@code kernel}, {@code initrd} (null or empty for none) and {@code commandLine} into
     * {@code memory} and writes the zero page and an MP table for {@code cpus} vCPUs. Throws a
     * {@link KernelImageException} saying what does not fit.
     */
    public static Loaded load(GuestMemory memory, BzImage kernel, byte[] initrd, String commandLine, int cpus) {
        E820Map e820 = E820Map.forPc(memory);
        SetupHeader h = kernel.header();
        if (!memory.contains(0, COMMAND_LINE + 4096) || !memory.contains(MP_TABLE, MpTable.size(cpus))) {
            throw new KernelImageException(String.format("guest RAM must start at 0 and cover the first 640 KiB (boot structures); memory is %s", memory));
        }

        long runtimeStart = kernel.runtimeStart();
        long initEnd = runtimeStart + Math.max(h.initSize(), kernel.kernelSize());
        if (e820.ramContaining(BzImage.LOAD_ADDRESS, initEnd - BzImage.LOAD_ADDRESS) == null) {
            throw new KernelImageException(String.format("%s: guest RAM too small: the kernel needs RAM [0x%x, 0x%x) (loaded at 1 MiB, "
                            + "init_size %d MiB from 0x%x); give at least %d MiB", kernel.name(), BzImage.LOAD_ADDRESS, initEnd,
                    h.initSize() >> 20, runtimeStart, (initEnd >> 20) + 64));
        }
        memory.write(BzImage.LOAD_ADDRESS, kernel.image(), kernel.kernelOffset(), kernel.kernelSize());

        byte[] cmd = commandLine.getBytes(StandardCharsets.US_ASCII);
        long cmdMax = h.version() >= 0x0206 ? h.cmdlineSize() : OLD_CMDLINE_MAX;
        if (cmd.length > cmdMax) {
            throw new KernelImageException(String.format("kernel command line is %d bytes, but %s takes at most %d (cmdline_size)",
                    cmd.length, kernel.name(), cmdMax));
        }
        if (commandLine.indexOf('\0') >= 0 || !StandardCharsets.US_ASCII.newEncoder().canEncode(commandLine)) {
            throw new KernelImageException("kernel command line must be ASCII without NUL characters: \"" + commandLine + "\"");
        }
        if (COMMAND_LINE + cmd.length + 1 > MP_TABLE) {
            throw new KernelImageException("kernel command line of " + cmd.length + " bytes does not fit below the EBDA");
        }
        memory.write(COMMAND_LINE, cmd, 0, cmd.length);
        memory.writeByte(COMMAND_LINE + cmd.length, (byte) 0);

        long initrdAddress = 0;
        long initrdSize = initrd == null ? 0 : initrd.length;
        if (initrdSize > 0) {
            initrdAddress = placeInitrd(e820, kernel, initEnd, initrdSize);
            memory.write(initrdAddress, initrd, 0, initrd.length);
        }

        BootParams.fill(memory.slice(BOOT_PARAMS, BootParams.SIZE), kernel, e820, COMMAND_LINE, initrdAddress, initrdSize);
        MpTable.write(memory, MP_TABLE, cpus);
        writeEntryTables(memory);
        return new Loaded(kernel, BzImage.LOAD_ADDRESS + BzImage.ENTRY_64_OFFSET, BOOT_PARAMS, COMMAND_LINE, cmd.length,
                initrdAddress, initrdSize, initEnd, e820, cpus);
    }

    /**
     * The highest page-aligned address where the initrd ends at or below initrd_addr_max (boot.rst:
     * "the address of the highest safe byte") and inside RAM, above the kernel's init area (as
     * high as possible, as QEMU and GRUB place it, so the kernel's early allocations miss it).
     */
    static long placeInitrd(E820Map e820, BzImage kernel, long kernelInitEnd, long size) {
        long limit = kernel.header().initrdAddrMax() + 1; // first byte it may not occupy
        for (int i = e820.entries().size() - 1; i >= 0; i--) {
            E820Map.Entry r = e820.entries().get(i);
            if (r.type() != E820Map.RAM || r.address() >= limit) {
                continue;
            }
            long top = Math.min(r.end(), limit);
            long floor = Math.max(r.address(), kernelInitEnd); // never below the kernel or into its init area
            long address = (top - size) & ~(GuestMemory.PAGE_SIZE - 1);
            if (top - floor >= size && address >= floor) {
                return address;
            }
        }
        throw new KernelImageException(String.format("initrd of %d MiB does not fit in guest RAM between the kernel (up to 0x%x) and "
                + "initrd_addr_max 0x%x of %s; give more memory", size >> 20, kernelInitEnd, limit - 1, kernel.name()));
    }

    /** The GDT (boot.rst: flat __BOOT_CS 0x10 and __BOOT_DS 0x18), an empty TSS, and identity page tables for the low 4 GiB. */
    static void writeEntryTables(GuestMemory memory) {
        memory.fill(GDT, GDT_ENTRIES * 8L, (byte) 0);
        memory.writeLong(GDT + BOOT_CS, 0x00AF_9B00_0000_FFFFL); // 64-bit code: P, DPL 0, S, execute/read accessed, L, G
        memory.writeLong(GDT + BOOT_DS, 0x00CF_9300_0000_FFFFL); // flat data: P, DPL 0, S, read/write accessed, D/B, G
        long tssLimit = 0x67;
        memory.writeLong(GDT + BOOT_TSS, LongMode.tssDescriptorLow(TSS, tssLimit));
        memory.writeLong(GDT + BOOT_TSS + 8, TSS >>> 32);
        memory.fill(TSS, 0x68, (byte) 0);
        memory.writeShort(TSS + 0x66, (short) 0x68); // I/O map base past the limit: no I/O bitmap

        memory.fill(PML4, PAGE_DIRECTORIES + 4 * GuestMemory.PAGE_SIZE - PML4, (byte) 0);
        LongMode.writeIdentityMap(memory, PML4, PDPT, PAGE_DIRECTORIES, IDENTITY_MAPPED, DEVICE_WINDOW);
    }

    /**
     * Puts the boot vCPU at the 64-bit entry (boot.rst "64-bit Boot Protocol"): long mode with
     * paging on the identity tables, CS = __BOOT_CS and DS/ES/SS (and FS/GS) = __BOOT_DS, both
     * flat, interrupts disabled, RSI = the zero page.
     */
    public static void enter(KvmVcpu vcpu, Loaded loaded) {
        KvmSregs s = vcpu.getSregs();
        s.cs = LongMode.flatSegment(BOOT_CS, 0xB, true);
        KvmSregs.Segment data = LongMode.flatSegment(BOOT_DS, 0x3, false);
        s.ds = data;
        s.es = data;
        s.fs = data;
        s.gs = data;
        s.ss = data;
        KvmSregs.Segment tr = new KvmSregs.Segment();
        tr.base = TSS;
        tr.limit = 0x67;
        tr.selector = BOOT_TSS;
        tr.type = 0xB; // busy 64-bit TSS: VM entry in IA-32e mode wants type 11 (SDM Vol. 3C §26.3.1.2)
        tr.present = true;
        s.tr = tr;
        s.gdtBase = GDT;
        s.gdtLimit = GDT_ENTRIES * 8 - 1;
        s.idtBase = 0;
        s.idtLimit = 0; // the kernel loads its own IDT; a fault before that is a triple fault we report with registers
        s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
        s.cr3 = PML4;
        s.cr4 = CR4_PAE;
        s.efer = EFER_LME | EFER_LMA;
        vcpu.setSregs(s);

        KvmRegs r = new KvmRegs();
        r.set(KvmRegs.RIP, loaded.entry());
        r.set(KvmRegs.RSI, loaded.bootParams());
        r.set(KvmRegs.RSP, BOOT_STACK);
        r.set(KvmRegs.RBP, BOOT_STACK);
        r.set(KvmRegs.RFLAGS, 0x2); // bit 1 is always 1; IF clear
        vcpu.setRegs(r);
    }
}
