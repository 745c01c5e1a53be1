package io.vmm4j.core.testing;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

/**
 * Bytes a thread has allocated so far, via com.sun.management.ThreadMXBean (reflectively: test
 * modules do not read jdk.management), for tests that a path allocates nothing.
 */
public final class AllocatedBytes {
    private final Object bean;
    private final MethodHandle allocatedBytes;

    public AllocatedBytes() {
        try {
            bean = Class.forName("java.lang.management.ManagementFactory").getMethod("getThreadMXBean").invoke(null);
            Class<?> type = Class.forName("com.sun.management.ThreadMXBean");
            allocatedBytes = MethodHandles.publicLookup()
                    .findVirtual(type, "getThreadAllocatedBytes", MethodType.methodType(long.class, long.class))
                    .asType(MethodType.methodType(long.class, Object.class, long.class));
        } catch (ReflectiveOperationException e) {
            throw new AssertionError("this JDK has no com.sun.management.ThreadMXBean", e);
        }
    }

    /**
     * Fails unless a path allocated nothing in steady state, from the bytes it allocated in each of
     * several equal rounds: the first {@code warmup} rounds may load classes or run in the
     * interpreter; of the rest, all but one must be 0. An allocation per packet shows in every round;
     * a one-off JVM event (a deoptimisation re-materialising an object the compiler had
     * scalar-replaced) shows in one, and is tolerated once.
     */
    public static void assertNothingInSteadyState(long[] perRound, int warmup, String what) {
        if (perRound.length < warmup + 3) {
            throw new IllegalArgumentException("too few rounds after the warm-up to judge: " + perRound.length + " with " + warmup);
        }
        int nonZero = 0;
        for (int r = warmup; r < perRound.length; r++) {
            if (perRound[r] != 0) {
                nonZero++;
            }
        }
        if (nonZero > 1) {
            throw new AssertionError(what + " allocated in " + nonZero + " of the " + (perRound.length - warmup)
                    + " rounds after the warm-up; bytes per round: " + java.util.Arrays.toString(perRound));
        }
    }

    /** What thread {@code threadId} allocated since it started, in bytes. */
    public long of(long threadId) {
        try {
            return (long) allocatedBytes.invokeExact(bean, threadId);
        } catch (Throwable e) {
            throw new AssertionError(e);
        }
    }
}
