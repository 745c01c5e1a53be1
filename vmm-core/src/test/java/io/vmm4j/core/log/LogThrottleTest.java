package io.vmm4j.core.log;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class LogThrottleTest {
    @Test
    void oneLinePerPeriodAndTheNextOneSaysHowManyWereHeldBack() {
        AtomicLong now = new AtomicLong(1_000);
        LogThrottle t = new LogThrottle(10, 1, now::get);
        assertEquals(0, t.admit(), "the first line goes through");
        for (int i = 0; i < 5; i++) {
            now.addAndGet(1);
            assertEquals(-1, t.admit(), "within the period: held back");
        }
        now.set(1_010);
        assertEquals(5, t.admit(), "the next period's first line, with the count");
        assertEquals(-1, t.admit());
        now.addAndGet(100);
        assertEquals(1, t.admit());
        assertEquals(" (1 more like it not logged)", LogThrottle.heldBackNote(1));
        assertEquals("", LogThrottle.heldBackNote(0));
    }

    @Test
    void aBurstOfLinesPerPeriod() {
        AtomicLong now = new AtomicLong();
        LogThrottle t = new LogThrottle(10, 3, now::get);
        assertEquals(0, t.admit());
        assertEquals(0, t.admit());
        assertEquals(0, t.admit());
        assertEquals(-1, t.admit());
        assertEquals(-1, t.admit());
        now.set(10);
        assertEquals(2, t.admit(), "a new period: the count of the two held back");
        assertEquals(0, t.admit());
    }

    @Test
    void aPeriodAndALineCountMustBePositive() {
        assertThrows(IllegalArgumentException.class, () -> new LogThrottle(0));
        assertThrows(IllegalArgumentException.class, () -> new LogThrottle(10, 0));
    }
}
