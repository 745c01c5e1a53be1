package io.vmm4j.virtio.pci;

import io.vmm4j.core.bus.BusDevice;
import io.vmm4j.core.irq.MsiSink;

import java.util.ArrayList;
import java.util.List;

/**
 * MSI-X (PCI Local Bus 3.0 §6.8.2): the capability's message control, a vector table of
 * (address, data, vector control) entries and the pending bit array, both living in one BAR.
 *
 * <p>An interrupt on a masked vector, or while the function is masked, sets its pending bit and
 * is delivered once when the mask is lifted. Vectors start masked, as after reset.
 */
public final class MsixTable implements BusDevice, CapabilityBehaviour {
    public static final int CAPABILITY_ID = 0x11;
    /** virtio's "no vector" (virtio 1.2 §4.1.5.1.2). */
    public static final int NO_VECTOR = 0xFFFF;
    public static final int ENTRY_SIZE = 16;
    private static final int CONTROL_ENABLE = 1 << 15;
    private static final int CONTROL_FUNCTION_MASK = 1 << 14;
    private static final int VECTOR_MASKED = 1;

    /** Told when a vector's message or mask changes, so an irqfd route can follow (KVM). */
    public interface Listener {
        void vectorChanged(int vector);
    }

    private final int vectors;
    private final int tableOffset;
    private final int pbaOffset;
    private final int bar;
    private final MsiSink sink;
    private final int[] table;
    private final long[] pending;
    private final List<Listener> listeners = new ArrayList<>();
    private boolean enabled;
    private boolean functionMasked;
    private long delivered;
    private long heldPending;

    /**
     * @param vectors     table size, 1..2048
     * @param bar         the BAR that holds table and PBA
     * @param tableOffset offset of the table in that BAR (8-byte aligned)
     * @param pbaOffset   offset of the PBA in that BAR (8-byte aligned)
     */
    public MsixTable(int vectors, int bar, int tableOffset, int pbaOffset, MsiSink sink) {
        if (vectors < 1 || vectors > 2048) {
            throw new IllegalArgumentException("MSI-X table size must be 1..2048, was " + vectors);
        }
        if (pbaOffset < tableOffset + vectors * ENTRY_SIZE && tableOffset < pbaOffset + 8 * ((vectors + 63) / 64)) {
            throw new IllegalArgumentException("MSI-X table and PBA overlap");
        }
        this.vectors = vectors;
        this.bar = bar;
        this.tableOffset = tableOffset;
        this.pbaOffset = pbaOffset;
        this.sink = sink;
        this.table = new int[vectors * 4];
        this.pending = new long[(vectors + 63) / 64];
        reset();
    }

    public int vectors() {
        return vectors;
    }

    /** Bytes the table and PBA need in their BAR. */
    public int barBytesNeeded() {
        return Math.max(tableOffset + vectors * ENTRY_SIZE, pbaOffset + pending.length * 8);
    }

    public void addListener(Listener listener) {
        listeners.add(listener);
    }

    /** The capability body after ID and next pointer: message control, table and PBA offset/BIR. */
    public byte[] capabilityBody() {
        byte[] body = new byte[10];
        PciConfigSpace.putLe16(body, 0, vectors - 1);
        PciConfigSpace.putLe32(body, 2, tableOffset | bar);
        PciConfigSpace.putLe32(body, 6, pbaOffset | bar);
        return body;
    }

    /** Only the enable and function-mask bits of message control are writable. */
    public byte[] capabilityWritable() {
        byte[] mask = new byte[10];
        mask[1] = (byte) ((CONTROL_ENABLE | CONTROL_FUNCTION_MASK) >> 8);
        return mask;
    }

    /** Back to the power-on state: disabled, every vector masked, nothing pending. */
    public synchronized void reset() {
        enabled = false;
        functionMasked = false;
        for (int v = 0; v < vectors; v++) {
            table[v * 4] = 0;
            table[v * 4 + 1] = 0;
            table[v * 4 + 2] = 0;
            table[v * 4 + 3] = VECTOR_MASKED;
        }
        java.util.Arrays.fill(pending, 0);
    }

    public synchronized boolean enabled() {
        return enabled;
    }

    public synchronized boolean functionMasked() {
        return functionMasked;
    }

    public synchronized boolean isMasked(int vector) {
        return (table[vector * 4 + 3] & VECTOR_MASKED) != 0;
    }

    public synchronized boolean isPending(int vector) {
        return (pending[vector >>> 6] & (1L << vector)) != 0;
    }

    public synchronized long messageAddress(int vector) {
        return (table[vector * 4] & 0xFFFF_FFFFL) | ((long) table[vector * 4 + 1] << 32);
    }

    public synchronized int messageData(int vector) {
        return table[vector * 4 + 2];
    }

    /** Interrupts delivered to the sink, and how many were held pending by a mask. */
    public synchronized long deliveredCount() {
        return delivered;
    }

    public synchronized long pendedCount() {
        return heldPending;
    }

    /**
     * Signals {@code vector}: delivers its message, or sets its pending bit while masked. Returns
     * false when MSI-X is disabled or the vector is NO_VECTOR / out of range (nothing happened).
     */
    public boolean signal(int vector) {
        long address;
        int data;
        synchronized (this) {
            if (!enabled || vector < 0 || vector >= vectors) {
                return false;
            }
            if (functionMasked || isMasked(vector)) {
                pending[vector >>> 6] |= 1L << vector;
                heldPending++;
                return true;
            }
            address = messageAddress(vector);
            data = messageData(vector);
            delivered++;
        }
        sink.deliver(address, data);
        return true;
    }

    // ---- capability: message control ----

    @Override
    public int read(int offset, int size, int stored) {
        return stored;
    }

    @Override
    public void write(int offset, int size, int value) {
        if (offset > 3 || offset + size <= 2) {
            return; // only message control (offset 2..3) is live
        }
        int control = (offset == 2 ? value : offset == 3 ? value << 8 : value >>> 16) & 0xFFFF;
        boolean en = (control & CONTROL_ENABLE) != 0;
        boolean fm = (control & CONTROL_FUNCTION_MASK) != 0;
        if (size == 1 && offset == 2) {
            return; // low byte holds only the read-only table size
        }
        List<long[]> due;
        synchronized (this) {
            enabled = en;
            functionMasked = fm;
            due = collectDeliverable(-1);
        }
        deliver(due);
        for (int v = 0; v < vectors; v++) {
            fireChanged(v);
        }
    }

    // ---- BAR: table and PBA (§6.8.2.9: DWORD or QWORD accesses) ----

    @Override
    public long read(long offset, int size) {
        if (offset >= tableOffset && offset + size <= tableOffset + (long) vectors * ENTRY_SIZE) {
            int word = (int) ((offset - tableOffset) / 4);
            synchronized (this) {
                if (size == 8 && (offset & 7) == 0) {
                    return (table[word] & 0xFFFF_FFFFL) | ((long) table[word + 1] << 32);
                }
                if (size == 4 && (offset & 3) == 0) {
                    return table[word] & 0xFFFF_FFFFL;
                }
            }
            return 0;
        }
        if (offset >= pbaOffset && offset + size <= pbaOffset + pending.length * 8L) {
            int index = (int) ((offset - pbaOffset) / 8);
            synchronized (this) {
                long bits = pending[index];
                if (size == 8 && (offset & 7) == 0) {
                    return bits;
                }
                if (size == 4 && (offset & 3) == 0) {
                    return ((offset & 4) == 0 ? bits : bits >>> 32) & 0xFFFF_FFFFL;
                }
            }
        }
        return 0;
    }

    @Override
    public void write(long offset, int size, long value) {
        if (offset < tableOffset || offset + size > tableOffset + (long) vectors * ENTRY_SIZE) {
            return; // the PBA is read-only
        }
        if (!((size == 4 && (offset & 3) == 0) || (size == 8 && (offset & 7) == 0))) {
            return;
        }
        int word = (int) ((offset - tableOffset) / 4);
        int vector = word / 4;
        List<long[]> due;
        synchronized (this) {
            table[word] = (int) value;
            if (size == 8) {
                table[word + 1] = (int) (value >>> 32);
            }
            table[vector * 4 + 3] &= VECTOR_MASKED; // reserved bits of vector control read as 0
            due = collectDeliverable(vector);
        }
        deliver(due);
        fireChanged(vector);
    }

    /** Pending vectors that may now be delivered (one vector, or all with -1); clears their pending bits. */
    private List<long[]> collectDeliverable(int only) {
        List<long[]> due = new ArrayList<>(0);
        if (!enabled || functionMasked) {
            return due;
        }
        int from = only < 0 ? 0 : only;
        int to = only < 0 ? vectors : only + 1;
        for (int v = from; v < to; v++) {
            if (isPending(v) && !isMasked(v)) {
                pending[v >>> 6] &= ~(1L << v);
                delivered++;
                due.add(new long[] {messageAddress(v), messageData(v)});
            }
        }
        return due;
    }

    private void deliver(List<long[]> due) {
        for (long[] m : due) {
            sink.deliver(m[0], (int) m[1]);
        }
    }

    private void fireChanged(int vector) {
        for (Listener l : listeners) {
            l.vectorChanged(vector);
        }
    }
}
