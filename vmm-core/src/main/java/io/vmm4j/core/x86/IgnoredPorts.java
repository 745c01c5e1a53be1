package io.vmm4j.core.x86;

import io.vmm4j.core.bus.BusDevice;

import java.util.concurrent.atomic.LongAdder;

/**
 * Ports a PC guest writes for effect nobody emulates, answered without an error: the POST
 * diagnostic port 0x80 (Linux's io_delay writes it), and whatever else a caller registers.
 * Reads return {@code readValue}; writes are counted and dropped.
 */
public final class IgnoredPorts implements BusDevice {
    /** The POST code / I/O delay port. */
    public static final int POST_PORT = 0x80;

    private final String name;
    private final long readValue;
    private final LongAdder accesses = new LongAdder();

    public IgnoredPorts(String name, long readValue) {
        this.name = name;
        this.readValue = readValue;
    }

    @Override
    public long read(long offset, int size) {
        accesses.increment();
        return readValue;
    }

    @Override
    public void write(long offset, int size, long value) {
        accesses.increment();
    }

    public long accesses() {
        return accesses.sum();
    }

    @Override
    public String toString() {
        return name;
    }
}
