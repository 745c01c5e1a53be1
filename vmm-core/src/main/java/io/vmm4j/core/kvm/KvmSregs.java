package io.vmm4j.core.kvm;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SequenceLayout;
import java.lang.invoke.VarHandle;

/**
 * {@code struct kvm_sregs} (asm/kvm.h): segment registers, descriptor tables, control registers,
 * EFER and the APIC base. Mutable, for KVM_GET/SET_SREGS; fields not touched are written back as read.
 */
public final class KvmSregs {
    /** All registers and segments zero. */
    public KvmSregs() {
    }

    /** {@code struct kvm_segment}. */
    public static final class Segment {
        /** A null segment. */
        public Segment() {
        }


        private static final VarHandle BASE = KvmLayouts.handle(KvmLayouts.SEGMENT, "base");
        private static final VarHandle LIMIT = KvmLayouts.handle(KvmLayouts.SEGMENT, "limit");
        private static final VarHandle SELECTOR = KvmLayouts.handle(KvmLayouts.SEGMENT, "selector");
        private static final VarHandle TYPE = KvmLayouts.handle(KvmLayouts.SEGMENT, "type");
        private static final VarHandle PRESENT = KvmLayouts.handle(KvmLayouts.SEGMENT, "present");
        private static final VarHandle DPL = KvmLayouts.handle(KvmLayouts.SEGMENT, "dpl");
        private static final VarHandle DB = KvmLayouts.handle(KvmLayouts.SEGMENT, "db");
        private static final VarHandle S = KvmLayouts.handle(KvmLayouts.SEGMENT, "s");
        private static final VarHandle L = KvmLayouts.handle(KvmLayouts.SEGMENT, "l");
        private static final VarHandle G = KvmLayouts.handle(KvmLayouts.SEGMENT, "g");
        private static final VarHandle AVL = KvmLayouts.handle(KvmLayouts.SEGMENT, "avl");
        private static final VarHandle UNUSABLE = KvmLayouts.handle(KvmLayouts.SEGMENT, "unusable");
        private static final VarHandle PADDING = KvmLayouts.handle(KvmLayouts.SEGMENT, "padding");

        public long base;
        public int limit;
        public int selector;
        public int type;
        public boolean present;
        public int dpl;
        public boolean db;
        public boolean s;
        public boolean l;
        public boolean g;
        public boolean avl;
        public boolean unusable;

        /** Reads the {@code kvm_segment} at offset {@code o} of {@code m}. */
        static Segment read(MemorySegment m, long o) {
            Segment x = new Segment();
            x.base = (long) BASE.get(m, o);
            x.limit = (int) LIMIT.get(m, o);
            x.selector = (short) SELECTOR.get(m, o) & 0xFFFF;
            x.type = (byte) TYPE.get(m, o) & 0xFF;
            x.present = (byte) PRESENT.get(m, o) != 0;
            x.dpl = (byte) DPL.get(m, o) & 0xFF;
            x.db = (byte) DB.get(m, o) != 0;
            x.s = (byte) S.get(m, o) != 0;
            x.l = (byte) L.get(m, o) != 0;
            x.g = (byte) G.get(m, o) != 0;
            x.avl = (byte) AVL.get(m, o) != 0;
            x.unusable = (byte) UNUSABLE.get(m, o) != 0;
            return x;
        }

        void write(MemorySegment m, long o) {
            BASE.set(m, o, base);
            LIMIT.set(m, o, limit);
            SELECTOR.set(m, o, (short) selector);
            TYPE.set(m, o, (byte) type);
            PRESENT.set(m, o, flag(present));
            DPL.set(m, o, (byte) dpl);
            DB.set(m, o, flag(db));
            S.set(m, o, flag(s));
            L.set(m, o, flag(l));
            G.set(m, o, flag(g));
            AVL.set(m, o, flag(avl));
            UNUSABLE.set(m, o, flag(unusable));
            PADDING.set(m, o, (byte) 0);
        }

        private static byte flag(boolean on) {
            return (byte) (on ? 1 : 0);
        }

        @Override
        public String toString() {
            return String.format("sel=0x%x base=0x%x limit=0x%x type=%d%s%s%s", selector, base, limit, type,
                    present ? " p" : "", l ? " l" : "", db ? " db" : "");
        }
    }

    private static final long CS = KvmLayouts.offset(KvmLayouts.SREGS, "cs");
    private static final long DS = KvmLayouts.offset(KvmLayouts.SREGS, "ds");
    private static final long ES = KvmLayouts.offset(KvmLayouts.SREGS, "es");
    private static final long FS = KvmLayouts.offset(KvmLayouts.SREGS, "fs");
    private static final long GS = KvmLayouts.offset(KvmLayouts.SREGS, "gs");
    private static final long SS = KvmLayouts.offset(KvmLayouts.SREGS, "ss");
    private static final long TR = KvmLayouts.offset(KvmLayouts.SREGS, "tr");
    private static final long LDT = KvmLayouts.offset(KvmLayouts.SREGS, "ldt");
    private static final VarHandle GDT_BASE = KvmLayouts.handle(KvmLayouts.SREGS, "gdt", "base");
    private static final VarHandle GDT_LIMIT = KvmLayouts.handle(KvmLayouts.SREGS, "gdt", "limit");
    private static final VarHandle IDT_BASE = KvmLayouts.handle(KvmLayouts.SREGS, "idt", "base");
    private static final VarHandle IDT_LIMIT = KvmLayouts.handle(KvmLayouts.SREGS, "idt", "limit");
    private static final VarHandle CR0 = KvmLayouts.handle(KvmLayouts.SREGS, "cr0");
    private static final VarHandle CR2 = KvmLayouts.handle(KvmLayouts.SREGS, "cr2");
    private static final VarHandle CR3 = KvmLayouts.handle(KvmLayouts.SREGS, "cr3");
    private static final VarHandle CR4 = KvmLayouts.handle(KvmLayouts.SREGS, "cr4");
    private static final VarHandle CR8 = KvmLayouts.handle(KvmLayouts.SREGS, "cr8");
    private static final VarHandle EFER = KvmLayouts.handle(KvmLayouts.SREGS, "efer");
    private static final VarHandle APIC_BASE = KvmLayouts.handle(KvmLayouts.SREGS, "apic_base");
    private static final VarHandle INTERRUPT_BITMAP = KvmLayouts.SREGS.varHandle(
            MemoryLayout.PathElement.groupElement("interrupt_bitmap"), MemoryLayout.PathElement.sequenceElement());
    private static final int INTERRUPT_BITMAP_WORDS = (int) ((SequenceLayout) KvmLayouts.SREGS.select(
            MemoryLayout.PathElement.groupElement("interrupt_bitmap"))).elementCount();

    public Segment cs;
    public Segment ds;
    public Segment es;
    public Segment fs;
    public Segment gs;
    public Segment ss;
    public Segment tr;
    public Segment ldt;
    public long gdtBase;
    public int gdtLimit;
    public long idtBase;
    public int idtLimit;
    public long cr0;
    public long cr2;
    public long cr3;
    public long cr4;
    public long cr8;
    public long efer;
    public long apicBase;
    private final long[] interruptBitmap = new long[INTERRUPT_BITMAP_WORDS];

    static KvmSregs read(MemorySegment m) {
        KvmSregs r = new KvmSregs();
        r.cs = Segment.read(m, CS);
        r.ds = Segment.read(m, DS);
        r.es = Segment.read(m, ES);
        r.fs = Segment.read(m, FS);
        r.gs = Segment.read(m, GS);
        r.ss = Segment.read(m, SS);
        r.tr = Segment.read(m, TR);
        r.ldt = Segment.read(m, LDT);
        r.gdtBase = (long) GDT_BASE.get(m, 0L);
        r.gdtLimit = (short) GDT_LIMIT.get(m, 0L) & 0xFFFF;
        r.idtBase = (long) IDT_BASE.get(m, 0L);
        r.idtLimit = (short) IDT_LIMIT.get(m, 0L) & 0xFFFF;
        r.cr0 = (long) CR0.get(m, 0L);
        r.cr2 = (long) CR2.get(m, 0L);
        r.cr3 = (long) CR3.get(m, 0L);
        r.cr4 = (long) CR4.get(m, 0L);
        r.cr8 = (long) CR8.get(m, 0L);
        r.efer = (long) EFER.get(m, 0L);
        r.apicBase = (long) APIC_BASE.get(m, 0L);
        for (int i = 0; i < INTERRUPT_BITMAP_WORDS; i++) {
            r.interruptBitmap[i] = (long) INTERRUPT_BITMAP.get(m, 0L, (long) i);
        }
        return r;
    }

    void write(MemorySegment m) {
        cs.write(m, CS);
        ds.write(m, DS);
        es.write(m, ES);
        fs.write(m, FS);
        gs.write(m, GS);
        ss.write(m, SS);
        tr.write(m, TR);
        ldt.write(m, LDT);
        GDT_BASE.set(m, 0L, gdtBase);
        GDT_LIMIT.set(m, 0L, (short) gdtLimit);
        IDT_BASE.set(m, 0L, idtBase);
        IDT_LIMIT.set(m, 0L, (short) idtLimit);
        CR0.set(m, 0L, cr0);
        CR2.set(m, 0L, cr2);
        CR3.set(m, 0L, cr3);
        CR4.set(m, 0L, cr4);
        CR8.set(m, 0L, cr8);
        EFER.set(m, 0L, efer);
        APIC_BASE.set(m, 0L, apicBase);
        for (int i = 0; i < INTERRUPT_BITMAP_WORDS; i++) {
            INTERRUPT_BITMAP.set(m, 0L, (long) i, interruptBitmap[i]);
        }
    }

    @Override
    public String toString() {
        return String.format("cr0=0x%x cr2=0x%x cr3=0x%x cr4=0x%x efer=0x%x cs={%s} ss={%s} gdt=0x%x/%d idt=0x%x/%d apic_base=0x%x",
                cr0, cr2, cr3, cr4, efer, cs, ss, gdtBase, gdtLimit, idtBase, idtLimit, apicBase);
    }
}
