package io.vmm4j.core.log;

import java.util.function.LongSupplier;

/**
 * Lets at most a few log lines through per period and counts the ones it holds back, for messages
 * a guest or a peer can trigger as often as it likes (a hostile guest must not fill the VMM's log).
 * Thread-safe.
 */
public final class LogThrottle {
    private final long periodNanos;
    private final int linesPerPeriod;
    private final LongSupplier clock;
    private long periodStart;
    private boolean started;
    private int linesThisPeriod;
    private long heldBack;

    /** At most one line per {@code periodNanos}. */
    public LogThrottle(long periodNanos) {
        this(periodNanos, 1);
    }

    /** At most {@code linesPerPeriod} lines per {@code periodNanos}. */
    public LogThrottle(long periodNanos, int linesPerPeriod) {
        this(periodNanos, linesPerPeriod, System::nanoTime);
    }

    /** The same on a given clock (nanoseconds), for tests. */
    public LogThrottle(long periodNanos, int linesPerPeriod, LongSupplier clock) {
        if (periodNanos <= 0 || linesPerPeriod <= 0) {
            throw new IllegalArgumentException("a log throttle needs a positive period and line count, not " + periodNanos + " ns and "
                    + linesPerPeriod + " lines");
        }
        this.periodNanos = periodNanos;
        this.linesPerPeriod = linesPerPeriod;
        this.clock = clock;
    }

    /**
     * Asks to log one line now: -1 means hold it back (it is counted); otherwise log it, and the
     * result is how many lines were held back since the last one let through (say so in the line).
     */
    public synchronized long admit() {
        long now = clock.getAsLong();
        if (!started || now - periodStart >= periodNanos) {
            started = true;
            periodStart = now;
            linesThisPeriod = 0;
        }
        if (linesThisPeriod == linesPerPeriod) {
            heldBack++;
            return -1;
        }
        linesThisPeriod++;
        long held = heldBack;
        heldBack = 0;
        return held;
    }

    /** " (N more like it not logged)" for {@code held} > 0, else "": the tail of an admitted line. */
    public static String heldBackNote(long held) {
        return held > 0 ? " (" + held + " more like it not logged)" : "";
    }
}
