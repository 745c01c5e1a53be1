package io.vmm4j.core.kvm;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** {@code struct kvm_regs} (asm/kvm.h): the general-purpose registers, RIP and RFLAGS. Mutable, for KVM_GET/SET_REGS. */
public final class KvmRegs {
    private static final String[] NAMES = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"};
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
            r.values[i] = s.get(ValueLayout.JAVA_LONG, 8L * i);
        }
        return r;
    }

    void write(MemorySegment s) {
        for (int i = 0; i < values.length; i++) {
            s.set(ValueLayout.JAVA_LONG, 8L * i, values[i]);
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
