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

    /** What thread {@code threadId} allocated since it started, in bytes. */
    public long of(long threadId) {
        try {
            return (long) allocatedBytes.invokeExact(bean, threadId);
        } catch (Throwable e) {
            throw new AssertionError(e);
        }
    }
}
