package io.vmm4j.core.kvm;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;

/** {@code struct kvm_regs} (asm/kvm.h): the general-purpose registers, RIP and RFLAGS. Mutable, for KVM_GET/SET_REGS. */
public final class KvmRegs {
    /** All registers zero. */
    public KvmRegs() {
    }


    private static final String[] NAMES = KvmLayouts.REGISTER_NAMES;
    private static final VarHandle[] FIELDS = new VarHandle[NAMES.length];

    static {
        for (int i = 0; i < NAMES.length; i++) {
            FIELDS[i] = KvmLayouts.handle(KvmLayouts.REGS, NAMES[i]);
        }
    }

    public static final int RAX = 0;
    public static final int RBX = 1;
    public static final int RCX = 2;
    public static final int RDX = 3;
    public static final int RSI = 4;
    public static final int RDI = 5;
    public static final int RSP = 6;
    public static final int RBP = 7;
    public static final int RIP = 16;
    public static final int RFLAGS = 17;

    private final long[] values = new long[NAMES.length];

    /** Reads a {@code kvm_regs} laid out in {@code s}. */
    static KvmRegs read(MemorySegment s) {
        KvmRegs r = new KvmRegs();
        for (int i = 0; i < r.values.length; i++) {
            r.values[i] = (long) FIELDS[i].get(s, 0L);
        }
        return r;
    }

    void write(MemorySegment s) {
        for (int i = 0; i < values.length; i++) {
            FIELDS[i].set(s, 0L, values[i]);
        }
    }

    /** Register {@code index} (RAX..R15 = 0..15, then RIP, RFLAGS). */
    public long get(int index) {
        return values[index];
    }

    public KvmRegs set(int index, long value) {
        values[index] = value;
        return this;
    }

    public long rip() {
        return values[RIP];
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < values.length; i++) {
            sb.append(i == 0 ? "" : " ").append(NAMES[i]).append("=0x").append(Long.toHexString(values[i]));
        }
        return sb.toString();
    }
}
