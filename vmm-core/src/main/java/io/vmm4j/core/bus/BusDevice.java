package io.vmm4j.core.bus;

/**
 * Something that answers guest accesses to a range on a {@link Bus}: the emulated side of a
 * PIO or MMIO exit. Offsets are relative to the range's base; sizes are 1, 2, 4 or 8.
 */
public interface BusDevice {
    /** Returns the value read; only the low {@code size} bytes are used. */
    long read(long offset, int size);

    void write(long offset, int size, long value);
}
