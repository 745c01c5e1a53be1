package io.vmm4j.core.kvm;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * {@code struct kvm_sregs} (asm/kvm.h): segment registers, descriptor tables, control registers,
 * EFER and the APIC base. Mutable, for KVM_GET/SET_SREGS; fields not touched are written back as read.
 */
public final class KvmSregs {
    /** {@code struct kvm_segment}: 24 bytes. */
    public static final class Segment {
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

        static Segment read(MemorySegment m, long o) {
            Segment x = new Segment();
            x.base = m.get(ValueLayout.JAVA_LONG, o);
            x.limit = m.get(ValueLayout.JAVA_INT, o + 8);
            x.selector = m.get(ValueLayout.JAVA_SHORT, o + 12) & 0xFFFF;
            x.type = m.get(ValueLayout.JAVA_BYTE, o + 14) & 0xFF;
            x.present = m.get(ValueLayout.JAVA_BYTE, o + 15) != 0;
            x.dpl = m.get(ValueLayout.JAVA_BYTE, o + 16) & 0xFF;
            x.db = m.get(ValueLayout.JAVA_BYTE, o + 17) != 0;
            x.s = m.get(ValueLayout.JAVA_BYTE, o + 18) != 0;
            x.l = m.get(ValueLayout.JAVA_BYTE, o + 19) != 0;
            x.g = m.get(ValueLayout.JAVA_BYTE, o + 20) != 0;
            x.avl = m.get(ValueLayout.JAVA_BYTE, o + 21) != 0;
            x.unusable = m.get(ValueLayout.JAVA_BYTE, o + 22) != 0;
            return x;
        }

        void write(MemorySegment m, long o) {
            m.set(ValueLayout.JAVA_LONG, o, base);
            m.set(ValueLayout.JAVA_INT, o + 8, limit);
            m.set(ValueLayout.JAVA_SHORT, o + 12, (short) selector);
            m.set(ValueLayout.JAVA_BYTE, o + 14, (byte) type);
            m.set(ValueLayout.JAVA_BYTE, o + 15, (byte) (present ? 1 : 0));
            m.set(ValueLayout.JAVA_BYTE, o + 16, (byte) dpl);
            m.set(ValueLayout.JAVA_BYTE, o + 17, (byte) (db ? 1 : 0));
            m.set(ValueLayout.JAVA_BYTE, o + 18, (byte) (s ? 1 : 0));
            m.set(ValueLayout.JAVA_BYTE, o + 19, (byte) (l ? 1 : 0));
            m.set(ValueLayout.JAVA_BYTE, o + 20, (byte) (g ? 1 : 0));
            m.set(ValueLayout.JAVA_BYTE, o + 21, (byte) (avl ? 1 : 0));
            m.set(ValueLayout.JAVA_BYTE, o + 22, (byte) (unusable ? 1 : 0));
            m.set(ValueLayout.JAVA_BYTE, o + 23, (byte) 0);
        }

        @Override
        public String toString() {
            return String.format("sel=0x%x base=0x%x limit=0x%x type=%d%s%s%s", selector, base, limit, type,
                    present ? " p" : "", l ? " l" : "", db ? " db" : "");
        }
    }

    // offsets in struct kvm_sregs (checked against the header by LinuxConstantsTest)
    public static final long OFFSET_CS = 0;
    public static final long OFFSET_DS = 24;
    public static final long OFFSET_ES = 48;
    public static final long OFFSET_FS = 72;
    public static final long OFFSET_GS = 96;
    public static final long OFFSET_SS = 120;
    public static final long OFFSET_TR = 144;
    public static final long OFFSET_LDT = 168;
    public static final long OFFSET_GDT = 192;
    public static final long OFFSET_IDT = 208;
    public static final long OFFSET_CR0 = 224;
    public static final long OFFSET_CR2 = 232;
    public static final long OFFSET_CR3 = 240;
    public static final long OFFSET_CR4 = 248;
    public static final long OFFSET_CR8 = 256;
    public static final long OFFSET_EFER = 264;
    public static final long OFFSET_APIC_BASE = 272;
    public static final long OFFSET_INTERRUPT_BITMAP = 280;

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
    private final long[] interruptBitmap = new long[4];

    static KvmSregs read(MemorySegment m) {
        KvmSregs r = new KvmSregs();
        r.cs = Segment.read(m, OFFSET_CS);
        r.ds = Segment.read(m, OFFSET_DS);
        r.es = Segment.read(m, OFFSET_ES);
        r.fs = Segment.read(m, OFFSET_FS);
        r.gs = Segment.read(m, OFFSET_GS);
        r.ss = Segment.read(m, OFFSET_SS);
        r.tr = Segment.read(m, OFFSET_TR);
        r.ldt = Segment.read(m, OFFSET_LDT);
        r.gdtBase = m.get(ValueLayout.JAVA_LONG, OFFSET_GDT);
        r.gdtLimit = m.get(ValueLayout.JAVA_SHORT, OFFSET_GDT + 8) & 0xFFFF;
        r.idtBase = m.get(ValueLayout.JAVA_LONG, OFFSET_IDT);
        r.idtLimit = m.get(ValueLayout.JAVA_SHORT, OFFSET_IDT + 8) & 0xFFFF;
        r.cr0 = m.get(ValueLayout.JAVA_LONG, OFFSET_CR0);
        r.cr2 = m.get(ValueLayout.JAVA_LONG, OFFSET_CR2);
        r.cr3 = m.get(ValueLayout.JAVA_LONG, OFFSET_CR3);
        r.cr4 = m.get(ValueLayout.JAVA_LONG, OFFSET_CR4);
        r.cr8 = m.get(ValueLayout.JAVA_LONG, OFFSET_CR8);
        r.efer = m.get(ValueLayout.JAVA_LONG, OFFSET_EFER);
        r.apicBase = m.get(ValueLayout.JAVA_LONG, OFFSET_APIC_BASE);
        for (int i = 0; i < 4; i++) {
            r.interruptBitmap[i] = m.get(ValueLayout.JAVA_LONG, OFFSET_INTERRUPT_BITMAP + 8L * i);
        }
        return r;
    }

    void write(MemorySegment m) {
        cs.write(m, OFFSET_CS);
        ds.write(m, OFFSET_DS);
        es.write(m, OFFSET_ES);
        fs.write(m, OFFSET_FS);
        gs.write(m, OFFSET_GS);
        ss.write(m, OFFSET_SS);
        tr.write(m, OFFSET_TR);
        ldt.write(m, OFFSET_LDT);
        m.set(ValueLayout.JAVA_LONG, OFFSET_GDT, gdtBase);
        m.set(ValueLayout.JAVA_SHORT, OFFSET_GDT + 8, (short) gdtLimit);
        m.set(ValueLayout.JAVA_LONG, OFFSET_IDT, idtBase);
        m.set(ValueLayout.JAVA_SHORT, OFFSET_IDT + 8, (short) idtLimit);
        m.set(ValueLayout.JAVA_LONG, OFFSET_CR0, cr0);
        m.set(ValueLayout.JAVA_LONG, OFFSET_CR2, cr2);
        m.set(ValueLayout.JAVA_LONG, OFFSET_CR3, cr3);
        m.set(ValueLayout.JAVA_LONG, OFFSET_CR4, cr4);
        m.set(ValueLayout.JAVA_LONG, OFFSET_CR8, cr8);
        m.set(ValueLayout.JAVA_LONG, OFFSET_EFER, efer);
        m.set(ValueLayout.JAVA_LONG, OFFSET_APIC_BASE, apicBase);
        for (int i = 0; i < 4; i++) {
            m.set(ValueLayout.JAVA_LONG, OFFSET_INTERRUPT_BITMAP + 8L * i, interruptBitmap[i]);
        }
    }

    @Override
    public String toString() {
        return String.format("cr0=0x%x cr2=0x%x cr3=0x%x cr4=0x%x efer=0x%x cs={%s} ss={%s} gdt=0x%x/%d idt=0x%x/%d apic_base=0x%x",
                cr0, cr2, cr3, cr4, efer, cs, ss, gdtBase, gdtLimit, idtBase, idtLimit, apicBase);
    }
}
