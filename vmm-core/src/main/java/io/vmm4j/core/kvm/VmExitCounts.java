package io.vmm4j.core.kvm;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * How often KVM_RUN returned to user space, by exit reason: a snapshot of a vCPU's counters. The
 * difference of two snapshots counts the exits of a window (e.g. steady traffic).
 */
public record VmExitCounts(long[] byReason) {
    public VmExitCounts {
        byReason = byReason.clone();
    }

    /** A copy of the counts, indexed by reason. */
    @Override
    public long[] byReason() {
        return byReason.clone();
    }

    public static VmExitCounts none() {
        return new VmExitCounts(new long[ExitReason.COUNTED]);
    }

    /** Exits with {@code reason} (KvmIoctls.EXIT_*). */
    public long get(int reason) {
        return reason < byReason.length ? byReason[reason] : 0;
    }

    /** All exits to user space. */
    public long total() {
        long t = 0;
        for (long n : byReason) {
            t += n;
        }
        return t;
    }

    public VmExitCounts minus(VmExitCounts earlier) {
        long[] d = new long[byReason.length];
        for (int i = 0; i < d.length; i++) {
            d[i] = byReason[i] - earlier.get(i);
        }
        return new VmExitCounts(d);
    }

    public VmExitCounts plus(VmExitCounts other) {
        long[] d = new long[byReason.length];
        for (int i = 0; i < d.length; i++) {
            d[i] = byReason[i] + other.get(i);
        }
        return new VmExitCounts(d);
    }

    /** Reasons that occurred, by name (e.g. {@code {"io": 12, "mmio": 840}}), in reason order. */
    public Map<String, Long> asMap() {
        Map<String, Long> m = new LinkedHashMap<>();
        for (int i = 0; i < byReason.length; i++) {
            if (byReason[i] != 0) {
                m.put(ExitReason.name(i), byReason[i]);
            }
        }
        return m;
    }

    @Override
    public String toString() {
        return asMap().toString();
    }
}
