package io.vmm4j.virtio.pci;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.bus.BusDevice;
import io.vmm4j.core.log.LogThrottle;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;

/**
 * A type-0 PCI configuration space (PCI Local Bus 3.0 §6.1): the header, 64-bit memory BARs with
 * the sizing protocol, and a capability list. A BAR is decoded on the MMIO bus while the command
 * register's Memory Space bit is set and the BAR holds an address; moving or disabling it moves
 * or removes the mapping. Guest writes go only to writable bits; everything else is read-only.
 */
public final class PciConfigSpace {
    private static final Logger LOG = LoggerFactory.getLogger(PciConfigSpace.class);

    public static final int SIZE = 256;
    public static final int VENDOR_ID = 0x00;
    public static final int DEVICE_ID = 0x02;
    public static final int COMMAND = 0x04;
    public static final int STATUS = 0x06;
    public static final int REVISION_ID = 0x08;
    public static final int CLASS_PROG_IF = 0x09;
    public static final int HEADER_TYPE = 0x0E;
    public static final int BAR0 = 0x10;
    public static final int SUBSYSTEM_VENDOR_ID = 0x2C;
    public static final int SUBSYSTEM_ID = 0x2E;
    public static final int EXPANSION_ROM = 0x30;
    public static final int CAPABILITIES_POINTER = 0x34;
    public static final int INTERRUPT_LINE = 0x3C;
    public static final int INTERRUPT_PIN = 0x3D;

    public static final int COMMAND_IO = 0x1;
    public static final int COMMAND_MEMORY = 0x2;
    public static final int COMMAND_BUS_MASTER = 0x4;
    public static final int COMMAND_INTX_DISABLE = 0x400;
    public static final int STATUS_INTERRUPT = 0x08;
    public static final int STATUS_CAPABILITIES = 0x10;

    /** BAR low-dword flags: memory space, 64-bit type (bits 2:1 = 10b), prefetchable (bit 3). */
    private static final int BAR_MEM_64 = 0x4;
    private static final int BAR_PREFETCH = 0x8;
    private static final int FIRST_CAPABILITY = 0x40;

    private record Bar(int index, long size, int flags, BusDevice handler) {
    }

    private record Capability(int offset, int length, byte[] writable, CapabilityBehaviour behaviour) {
        boolean contains(int off) {
            return off >= offset && off < offset + length;
        }
    }

    static final long BAR_REFUSAL_LOG_PERIOD_NANOS = 10_000_000_000L;

    private final String name;
    private final Bus mmio;
    private final byte[] bytes = new byte[SIZE];
    private final byte[] writable = new byte[SIZE];
    private final Bar[] bars = new Bar[6];
    private final long[] barValue = new long[6];
    private final Bus.Range[] mapped = new Bus.Range[6];
    private final List<Capability> capabilities = new ArrayList<>();
    private final List<BarListener> barListeners = new ArrayList<>();
    /** BAR placements the bus refused (overlapping, wrapping): logged at most once per 10 s. */
    private final LogThrottle barRefusals = new LogThrottle(BAR_REFUSAL_LOG_PERIOD_NANOS);
    private int nextCapability = FIRST_CAPABILITY;
    private int lastNextPointer = CAPABILITIES_POINTER;

    /** Told when a BAR is mapped at a new address or unmapped (address -1). */
    public interface BarListener {
        void barMoved(int index, long address, long size);
    }

    /**
     * @param classCode 24 bits: base class, subclass, programming interface
     */
    public PciConfigSpace(String name, Bus mmio, int vendorId, int deviceId, int revision, int classCode,
                          int subsystemVendorId, int subsystemId, int interruptPin) {
        this.name = name;
        this.mmio = mmio;
        put16(VENDOR_ID, vendorId);
        put16(DEVICE_ID, deviceId);
        bytes[REVISION_ID] = (byte) revision;
        bytes[CLASS_PROG_IF] = (byte) classCode;
        bytes[CLASS_PROG_IF + 1] = (byte) (classCode >> 8);
        bytes[CLASS_PROG_IF + 2] = (byte) (classCode >> 16);
        bytes[HEADER_TYPE] = 0;
        put16(SUBSYSTEM_VENDOR_ID, subsystemVendorId);
        put16(SUBSYSTEM_ID, subsystemId);
        bytes[INTERRUPT_PIN] = (byte) interruptPin;
        writable[INTERRUPT_LINE] = (byte) 0xFF;
        int command = COMMAND_IO | COMMAND_MEMORY | COMMAND_BUS_MASTER | COMMAND_INTX_DISABLE;
        writable[COMMAND] = (byte) command;
        writable[COMMAND + 1] = (byte) (command >> 8);
    }

    public String name() {
        return name;
    }

    /** Declares a 64-bit memory BAR at {@code index} (it also takes {@code index + 1}); size is a power of two >= 16. */
    public void addMemoryBar64(int index, long size, boolean prefetchable, BusDevice handler) {
        if (index < 0 || index > 4 || bars[index] != null || bars[index + 1] != null) {
            throw new IllegalArgumentException("BAR " + index + " of " + name + " is taken or out of range (0..4 for 64-bit)");
        }
        if (size < 16 || Long.bitCount(size) != 1) {
            throw new IllegalArgumentException("BAR size must be a power of two >= 16, was " + size);
        }
        Bar bar = new Bar(index, size, BAR_MEM_64 | (prefetchable ? BAR_PREFETCH : 0), handler);
        bars[index] = bar;
        bars[index + 1] = bar;
        barValue[index] = 0;
    }

    /**
     * Appends a capability with the given ID; {@code body} is everything after the ID and next
     * pointer, {@code bodyWritable} the per-byte write mask of that body. Returns its offset.
     */
    public int addCapability(int id, byte[] body, byte[] bodyWritable, CapabilityBehaviour behaviour) {
        int length = 2 + body.length;
        int offset = nextCapability;
        if (offset + length > SIZE) {
            throw new IllegalStateException("no room for capability 0x" + Integer.toHexString(id) + " in " + name);
        }
        bytes[offset] = (byte) id;
        bytes[offset + 1] = 0;
        System.arraycopy(body, 0, bytes, offset + 2, body.length);
        byte[] mask = new byte[length];
        System.arraycopy(bodyWritable, 0, mask, 2, Math.min(bodyWritable.length, body.length));
        bytes[lastNextPointer] = (byte) offset;
        lastNextPointer = offset + 1;
        put16(STATUS, get16(STATUS) | STATUS_CAPABILITIES);
        capabilities.add(new Capability(offset, length, mask, behaviour));
        nextCapability = (offset + length + 3) & ~3;
        return offset;
    }

    public void addBarListener(BarListener listener) {
        barListeners.add(listener);
    }

    /** The guest-programmed address of a BAR, or -1 while it is not decoded. */
    public synchronized long barAddress(int index) {
        return mapped[index] == null ? -1 : mapped[index].base();
    }

    public synchronized int command() {
        return get16(COMMAND);
    }

    /** Reflects the INTx line in the status register's interrupt bit. */
    public synchronized void setInterruptStatus(boolean asserted) {
        int status = get16(STATUS);
        put16(STATUS, asserted ? status | STATUS_INTERRUPT : status & ~STATUS_INTERRUPT);
    }

    public int read(int offset, int size) {
        if (!validAccess(offset, size)) {
            return size == 4 ? -1 : (1 << (size * 8)) - 1;
        }
        Capability live = null;
        int stored;
        synchronized (this) {
            if (offset >= BAR0 && offset < BAR0 + 24) {
                return readBarBytes(offset, size);
            }
            stored = getN(offset, size);
            for (Capability c : capabilities) {
                if (c.contains(offset) && c.behaviour() != null) {
                    live = c;
                }
            }
        }
        // behaviours run outside this lock: they may reach into the device's own registers
        return live == null ? stored : live.behaviour().read(offset - live.offset(), size, stored);
    }

    public void write(int offset, int size, int value) {
        if (!validAccess(offset, size)) {
            LOG.debug("{}: ignored config write at 0x{} size {}", name, Integer.toHexString(offset), size);
            return;
        }
        Capability live = null;
        synchronized (this) {
            if (offset >= BAR0 && offset < BAR0 + 24) {
                writeBarBytes(offset, size, value);
                remap();
                return;
            }
            Capability owner = null;
            for (Capability c : capabilities) {
                if (c.contains(offset)) {
                    owner = c;
                }
            }
            byte[] mask = owner == null ? writable : owner.writable();
            int base = owner == null ? 0 : owner.offset();
            for (int i = 0; i < size; i++) {
                int o = offset + i;
                int w = mask[o - base] & 0xFF;
                bytes[o] = (byte) ((bytes[o] & ~w) | ((value >>> (8 * i)) & w));
            }
            if (owner == null && offset <= COMMAND + 1 && offset + size > COMMAND) {
                remap();
            }
            if (owner != null && owner.behaviour() != null) {
                live = owner;
            }
        }
        if (live != null) {
            live.behaviour().write(offset - live.offset(), size, value);
        }
    }

    private static boolean validAccess(int offset, int size) {
        return (size == 1 || size == 2 || size == 4) && offset >= 0 && offset + size <= SIZE && (offset & (size - 1)) == 0;
    }

    // ---- BARs: PCI 3.0 §6.2.5.1, sizing by writing all-ones and reading back the mask ----

    private int barDword(int slot) {
        Bar bar = bars[slot];
        if (bar == null) {
            return 0;
        }
        long value = barValue[bar.index()];
        return slot == bar.index() ? (int) value | bar.flags() : (int) (value >>> 32);
    }

    private int readBarBytes(int offset, int size) {
        int slot = (offset - BAR0) / 4;
        int dword = barDword(slot);
        int shift = 8 * ((offset - BAR0) % 4);
        return size == 4 ? dword : (dword >>> shift) & ((1 << (size * 8)) - 1);
    }

    private void writeBarBytes(int offset, int size, int value) {
        int slot = (offset - BAR0) / 4;
        Bar bar = bars[slot];
        if (bar == null) {
            return;
        }
        int shift = 8 * ((offset - BAR0) % 4);
        int current = barDword(slot);
        int mask = size == 4 ? -1 : ((1 << (size * 8)) - 1) << shift;
        int merged = (current & ~mask) | ((value << shift) & mask);
        long addressMask = ~(bar.size() - 1);
        long v = barValue[bar.index()];
        if (slot == bar.index()) {
            v = (v & 0xFFFF_FFFF_0000_0000L) | (merged & 0xFFFF_FFFFL & ~0xFL);
        } else {
            v = (v & 0xFFFF_FFFFL) | ((long) merged << 32);
        }
        barValue[bar.index()] = v & addressMask;
    }

    private void remap() {
        boolean decode = (get16(COMMAND) & COMMAND_MEMORY) != 0;
        for (int i = 0; i < 6; i++) {
            Bar bar = bars[i];
            if (bar == null || bar.index() != i) {
                continue;
            }
            long address = barValue[i];
            // An address of 0, or the all-ones pattern left by sizing, is not a placement.
            boolean placed = decode && address != 0 && address != ~(bar.size() - 1);
            Bus.Range current = mapped[i];
            if (current == null ? !placed : placed && current.base() == address) {
                continue;
            }
            if (current != null) {
                mmio.unregister(current);
                mapped[i] = null;
            }
            if (placed) {
                try {
                    mapped[i] = mmio.register(address, bar.size(), bar.handler());
                } catch (IllegalArgumentException e) {
                    long held = barRefusals.admit(); // the guest chooses BAR values: at most one line per period
                    if (held >= 0) {
                        LOG.warn("{}: BAR {} at 0x{} not decoded: {}{}", name, i, Long.toHexString(address), e.getMessage(),
                                LogThrottle.heldBackNote(held));
                    }
                }
            }
            long where = mapped[i] == null ? -1 : mapped[i].base();
            for (BarListener l : barListeners) {
                l.barMoved(i, where, bar.size());
            }
        }
    }

    // ---- little-endian byte storage ----

    private int getN(int offset, int size) {
        int v = 0;
        for (int i = 0; i < size; i++) {
            v |= (bytes[offset + i] & 0xFF) << (8 * i);
        }
        return v;
    }

    private int get16(int offset) {
        return getN(offset, 2);
    }

    private void put16(int offset, int value) {
        bytes[offset] = (byte) value;
        bytes[offset + 1] = (byte) (value >> 8);
    }

    /** Little-endian helpers for building capability bodies. */
    public static void putLe16(byte[] b, int offset, int value) {
        b[offset] = (byte) value;
        b[offset + 1] = (byte) (value >> 8);
    }

    public static void putLe32(byte[] b, int offset, int value) {
        for (int i = 0; i < 4; i++) {
            b[offset + i] = (byte) (value >> (8 * i));
        }
    }
}
