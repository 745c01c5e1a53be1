package io.vmm4j.core.bus;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.LongAdder;

/**
 * Dispatches guest PIO or MMIO accesses (address, size, data) to registered, non-overlapping ranges.
 *
 * <p>An access that no range wholly contains reads as all-ones and its writes are dropped, as on a
 * PC where nobody claims the cycle; such accesses are counted. Lookups are lock-free on an
 * immutable, sorted snapshot; (re)registration, e.g. when a driver moves a BAR, swaps the snapshot.
 */
public final class Bus {
    /** One claimed range. */
    public record Range(long base, long length, BusDevice device) {
        long end() {
            return base + length;
        }

        boolean contains(long address, int size) {
            long offset = address - base;
            return Long.compareUnsigned(offset, length) < 0 && size <= length - offset;
        }

        @Override
        public String toString() {
            return String.format("[0x%x, 0x%x) %s", base, end(), device);
        }
    }

    /** Told about each access no range claimed (on the accessing thread), e.g. to log what a guest probes. */
    @FunctionalInterface
    public interface UnclaimedAccessListener {
        void unclaimed(boolean write, long address, int size, long value);
    }

    private final String name;
    private volatile Range[] ranges = new Range[0];
    private final LongAdder unclaimed = new LongAdder();
    private volatile UnclaimedAccessListener unclaimedListener;

    /** @param name "pio" or "mmio", for messages */
    public Bus(String name) {
        this.name = name;
    }

    public String name() {
        return name;
    }

    /** Claims {@code [base, base + length)} for {@code device}; fails if it overlaps a claimed range. */
    public synchronized Range register(long base, long length, BusDevice device) {
        if (length <= 0 || base < 0 || base + length < base) {
            throw new IllegalArgumentException(String.format("%s range [0x%x, +0x%x) is empty or wraps", name, base, length));
        }
        Range added = new Range(base, length, device);
        for (Range r : ranges) {
            if (base < r.end() && r.base() < added.end()) {
                throw new IllegalArgumentException(String.format(
                        "%s range [0x%x, 0x%x) for %s overlaps %s", name, base, added.end(), device, r));
            }
        }
        Range[] next = Arrays.copyOf(ranges, ranges.length + 1);
        next[ranges.length] = added;
        Arrays.sort(next, (a, b) -> Long.compareUnsigned(a.base(), b.base()));
        ranges = next;
        return added;
    }

    /** Releases a range returned by {@link #register}; returns false if it was not registered. */
    public synchronized boolean unregister(Range range) {
        List<Range> next = new ArrayList<>(Arrays.asList(ranges));
        boolean removed = next.remove(range);
        ranges = next.toArray(Range[]::new);
        return removed;
    }

    /** The claimed ranges, ascending. */
    public List<Range> ranges() {
        return List.of(ranges);
    }

    /** The range wholly containing the access, or null. */
    public Range find(long address, int size) {
        Range[] snapshot = ranges;
        int lo = 0;
        int hi = snapshot.length - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            Range r = snapshot[mid];
            if (Long.compareUnsigned(address, r.base()) < 0) {
                hi = mid - 1;
            } else if (Long.compareUnsigned(address, r.end()) >= 0) {
                lo = mid + 1;
            } else {
                return r.contains(address, size) ? r : null;
            }
        }
        return null;
    }

    public long read(long address, int size) {
        checkSize(size);
        Range r = find(address, size);
        if (r == null) {
            unclaimed.increment();
            UnclaimedAccessListener l = unclaimedListener;
            if (l != null) {
                l.unclaimed(false, address, size, 0);
            }
            return size == 8 ? -1L : (1L << (size * 8)) - 1;
        }
        long value = r.device().read(address - r.base(), size);
        return size == 8 ? value : value & ((1L << (size * 8)) - 1);
    }

    /** Returns whether a range took the write. */
    public boolean write(long address, int size, long value) {
        checkSize(size);
        Range r = find(address, size);
        if (r == null) {
            unclaimed.increment();
            UnclaimedAccessListener l = unclaimedListener;
            if (l != null) {
                l.unclaimed(true, address, size, value);
            }
            return false;
        }
        r.device().write(address - r.base(), size, size == 8 ? value : value & ((1L << (size * 8)) - 1));
        return true;
    }

    /** Sets (or with null removes) the listener for accesses no range claims. */
    public void setUnclaimedListener(UnclaimedAccessListener listener) {
        this.unclaimedListener = listener;
    }

    /** Accesses no range claimed. */
    public long unclaimedAccesses() {
        return unclaimed.sum();
    }

    private void checkSize(int size) {
        if (size != 1 && size != 2 && size != 4 && size != 8) {
            throw new IllegalArgumentException(name + " access size must be 1, 2, 4 or 8, was " + size);
        }
    }
}
