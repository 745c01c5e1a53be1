package io.vmm4j.core.kvm;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A local APIC's register page as KVM_GET_LAPIC / KVM_SET_LAPIC move it ({@code struct
 * kvm_lapic_state}: 1 KiB, registers at their xAPIC MMIO offsets, 32 bits each on 16-byte
 * boundaries; Intel SDM Vol. 3A §11.4.1 Table 11-1).
 */
public final class LocalApicState {
    /** LVT LINT0 and LINT1 (SDM Table 11-1: FEE0 0350H, FEE0 0360H). */
    public static final int LVT_LINT0 = 0x350;
    public static final int LVT_LINT1 = 0x360;
    /** LVT delivery modes, bits 10:8 (SDM §11.5.1 Figure 11-8). */
    public static final int DELIVERY_FIXED = 0;
    public static final int DELIVERY_NMI = 4;
    public static final int DELIVERY_EXTINT = 7;
    private static final int DELIVERY_MASK = 0x700;

    private final MemorySegment regs;

    LocalApicState(MemorySegment regs) {
        if (regs.byteSize() != KvmIoctls.SIZEOF_LAPIC_STATE) {
            throw new IllegalArgumentException("kvm_lapic_state is " + KvmIoctls.SIZEOF_LAPIC_STATE + " bytes, not " + regs.byteSize());
        }
        this.regs = regs;
    }

    /** A state holding a copy of {@code bytes}. */
    public static LocalApicState copyOf(MemorySegment bytes) {
        MemorySegment own = Arena.ofAuto().allocate(KvmLayouts.LAPIC_STATE);
        own.copyFrom(bytes);
        return new LocalApicState(own);
    }

    MemorySegment segment() {
        return regs;
    }

    public int register(int offset) {
        check(offset);
        return regs.get(ValueLayout.JAVA_INT, offset);
    }

    public void setRegister(int offset, int value) {
        check(offset);
        regs.set(ValueLayout.JAVA_INT, offset, value);
    }

    /** Sets the delivery mode of the LVT entry at {@code lvt}, keeping its other bits (mask, trigger, vector). */
    public void setDeliveryMode(int lvt, int mode) {
        setRegister(lvt, (register(lvt) & ~DELIVERY_MASK) | (mode << 8));
    }

    public int deliveryMode(int lvt) {
        return (register(lvt) & DELIVERY_MASK) >>> 8;
    }

    private static void check(int offset) {
        if (offset < 0 || offset > 0x3F0 || (offset & 0xF) != 0) {
            throw new IllegalArgumentException(String.format("APIC register offset 0x%x is not a 16-byte aligned offset in the page", offset));
        }
    }
}
