package io.vmm4j.virtio.driver.net;

import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;

/** Counts of dropped frames by {@link DropReason}. Not thread-safe, like the stack that owns it. */
public final class DropCounters {
    /** All counters zero. */
    public DropCounters() {
    }


    private static final DropReason[] REASONS = DropReason.values();

    private final long[] counts = new long[REASONS.length];
    private long total;

    public void count(DropReason reason) {
        counts[reason.ordinal()]++;
        total++;
    }

    public long get(DropReason reason) {
        return counts[reason.ordinal()];
    }

    public long total() {
        return total;
    }

    /** The non-zero counts, in declaration order. */
    public Map<DropReason, Long> nonZero() {
        Map<DropReason, Long> result = new EnumMap<>(DropReason.class);
        for (DropReason reason : REASONS) {
            if (counts[reason.ordinal()] != 0) {
                result.put(reason, counts[reason.ordinal()]);
            }
        }
        return Collections.unmodifiableMap(result);
    }

    @Override
    public String toString() {
        return "dropped " + total + " " + nonZero();
    }
}
