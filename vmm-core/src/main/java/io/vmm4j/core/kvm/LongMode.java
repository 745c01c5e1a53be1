package io.vmm4j.core.kvm;

import io.vmm4j.core.memory.GuestMemory;

/**
 * Puts a vCPU straight into 64-bit mode, as firmware would leave it for a 64-bit kernel: identity
 * page tables over the low 4 GiB (RAM, the PCI windows and the local APIC page at 0xFEE00000),
 * a GDT with flat 64-bit code and data segments and a 64-bit TSS, CR0.PE|PG, CR4.PAE, EFER.LME|LMA
 * (Intel SDM Vol. 3A §9.8.5 "Initializing IA-32e Mode", §4.5 4-level paging).
 *
 * <p>Structures go into guest RAM below {@link #END}: GDT at 0x500, TSS at 0x580, PML4 at 0x1000,
 * PDPT at 0x2000 and four page directories of 2 MiB pages at 0x3000-0x6FFF. The guest loads its
 * own IDT.
 */
public final class LongMode {
    public static final long GDT = 0x500;
    public static final long TSS = 0x580;
    public static final long PML4 = 0x1000;
    public static final long PDPT = 0x2000;
    public static final long PAGE_DIRECTORIES = 0x3000;
    /** First byte after the structures this class writes. */
    public static final long END = 0x7000;
    /** Bytes identity-mapped. */
    public static final long MAPPED = 4L << 30;
    /** Where the PCI/APIC hole starts; mapped uncached (PCD|PWT). */
    public static final long DEVICE_HOLE = 3L << 30;

    public static final int CODE_SELECTOR = 0x08;
    public static final int DATA_SELECTOR = 0x10;
    public static final int TSS_SELECTOR = 0x18;

    // SDM Vol. 3A §2.5 control registers, §4.5 paging entries, Vol. 4 MSR C0000080H (EFER)
    static final long CR0_PE = 1L;
    static final long CR0_MP = 1L << 1;
    static final long CR0_ET = 1L << 4;
    static final long CR0_NE = 1L << 5;
    static final long CR0_WP = 1L << 16;
    static final long CR0_PG = 1L << 31;
    static final long CR4_PAE = 1L << 5;
    static final long CR4_OSFXSR = 1L << 9;
    static final long CR4_OSXMMEXCPT = 1L << 10;
    static final long EFER_LME = 1L << 8;
    static final long EFER_LMA = 1L << 10;
    private static final long PTE_PRESENT = 1;
    private static final long PTE_WRITABLE = 1 << 1;
    private static final long PTE_WRITE_THROUGH = 1 << 3;
    private static final long PTE_CACHE_DISABLE = 1 << 4;
    private static final long PTE_LARGE = 1 << 7;

    private LongMode() {
    }

    /**
     * Writes the tables into {@code memory} and sets the vCPU's registers so that it starts at
     * {@code entry} in 64-bit mode with {@code rsp = stackTop}, {@code rdi = argument} (the SysV
     * first argument) and interrupts disabled.
     */
    public static void enter(KvmVcpu vcpu, GuestMemory memory, long entry, long stackTop, long argument) {
        if (!memory.contains(0, END)) {
            throw new KvmException(String.format("long-mode start needs guest RAM at [0, 0x%x) for its GDT and page tables; memory is %s",
                    END, memory));
        }
        writeTables(memory);
        KvmSregs s = vcpu.getSregs();
        s.cs = flatSegment(CODE_SELECTOR, 0xB, true);   // execute/read, accessed; L=1
        KvmSregs.Segment data = flatSegment(DATA_SELECTOR, 0x3, false); // read/write, accessed
        s.ds = data;
        s.es = data;
        s.fs = data;
        s.gs = data;
        s.ss = data;
        KvmSregs.Segment tr = new KvmSregs.Segment();
        tr.base = TSS;
        tr.limit = 0x67;
        tr.selector = TSS_SELECTOR;
        tr.type = 0xB; // busy 64-bit TSS (SDM §3.4.5.1; VM entry wants type 11 in IA-32e mode)
        tr.present = true;
        s.tr = tr;
        s.gdtBase = GDT;
        s.gdtLimit = 5 * 8 - 1;
        s.idtBase = 0;
        s.idtLimit = 0;
        s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
        s.cr3 = PML4;
        s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
        s.efer = EFER_LME | EFER_LMA;
        vcpu.setSregs(s);

        KvmRegs r = new KvmRegs();
        r.set(KvmRegs.RIP, entry);
        r.set(KvmRegs.RSP, stackTop);
        r.set(KvmRegs.RDI, argument);
        r.set(KvmRegs.RFLAGS, 0x2); // bit 1 is reserved as 1; IF clear
        vcpu.setRegs(r);
    }

    /** A flat 4 GiB segment (base 0, page granular, DPL 0): a 64-bit code segment or a data segment. */
    public static KvmSregs.Segment flatSegment(int selector, int type, boolean code) {
        KvmSregs.Segment x = new KvmSregs.Segment();
        x.base = 0;
        x.limit = 0xFFFF_FFFF;
        x.selector = selector;
        x.type = type;
        x.present = true;
        x.dpl = 0;
        x.s = true;
        x.l = code;
        x.db = !code; // a 64-bit code segment must have D=0
        x.g = true;
        return x;
    }

    static void writeTables(GuestMemory memory) {
        memory.fill(GDT, END - GDT, (byte) 0);
        // GDT: null, 64-bit code (0x00AF9A000000FFFF), data (0x00CF92000000FFFF), 16-byte TSS descriptor
        memory.writeLong(GDT, 0);
        memory.writeLong(GDT + CODE_SELECTOR, 0x00AF_9A00_0000_FFFFL);
        memory.writeLong(GDT + DATA_SELECTOR, 0x00CF_9200_0000_FFFFL);
        long tssLimit = 0x67;
        memory.writeLong(GDT + TSS_SELECTOR, tssDescriptorLow(TSS, tssLimit));
        memory.writeLong(GDT + TSS_SELECTOR + 8, TSS >>> 32);
        // the TSS stays zero: no stack switches, no I/O bitmap (its base beyond the limit)
        memory.writeShort(TSS + 0x66, (short) 0x68);

        writeIdentityMap(memory, PML4, PDPT, PAGE_DIRECTORIES, MAPPED, DEVICE_HOLE);
    }

    /** The low 8 bytes of a 64-bit TSS descriptor for {@code tss} and {@code limit}: access 0x8B, present, DPL 0, busy TSS (as TR holds it). */
    public static long tssDescriptorLow(long tss, long limit) {
        return (limit & 0xFFFF) | ((tss & 0xFF_FFFFL) << 16) | (0x8BL << 40) | ((limit >> 16 & 0xF) << 48) | ((tss >>> 24 & 0xFF) << 56);
    }

    /**
     * Identity page tables of 2 MiB pages for {@code [0, bytes)}: a PML4 entry to one PDPT, one page
     * directory per GiB; pages from {@code uncachedFrom} on (the device hole) are uncached.
     */
    public static void writeIdentityMap(GuestMemory memory, long pml4, long pdpt, long pageDirectories, long bytes, long uncachedFrom) {
        memory.writeLong(pml4, pdpt | PTE_PRESENT | PTE_WRITABLE);
        for (int g = 0; g < (int) (bytes >>> 30); g++) {
            long pd = pageDirectories + g * GuestMemory.PAGE_SIZE;
            memory.writeLong(pdpt + 8L * g, pd | PTE_PRESENT | PTE_WRITABLE);
            for (int e = 0; e < 512; e++) {
                long physical = ((long) g << 30) | ((long) e << 21);
                long flags = PTE_PRESENT | PTE_WRITABLE | PTE_LARGE;
                if (physical >= uncachedFrom) {
                    flags |= PTE_CACHE_DISABLE | PTE_WRITE_THROUGH;
                }
                memory.writeLong(pd + 8L * e, physical | flags);
            }
        }
    }
}
