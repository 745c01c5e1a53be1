package io.vmm4j.vhost.engine;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.LibC;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * CPU time of one event loop's thread, read from /proc (utime + stime of its task, proc(5)), to tell a
 * loop that sleeps from one that spins in a handler.
 */
public final class ThreadCpu {
    /** CPU a sleeping loop may show over one second; a spinning one shows most of the second even on a loaded machine. */
    public static final long IDLE_NANOS_PER_SECOND = TimeUnit.MILLISECONDS.toNanos(150);
    private static final long NANOS_PER_TICK = 1_000_000_000L / 100; // USER_HZ is 100 on Linux (proc(5): "clock ticks")

    private final Path stat;

    private ThreadCpu(int tid) {
        this.stat = Path.of("/proc/self/task", Integer.toString(tid), "stat");
    }

    /** The loop's thread; call this before the loop has work that could keep it busy. */
    public static ThreadCpu of(EventLoop loop) {
        int[] tid = new int[1];
        loop.executeAndWait(() -> tid[0] = LibC.gettid());
        return new ThreadCpu(tid[0]);
    }

    /** User plus system CPU time so far, in nanoseconds (10 ms resolution). */
    public long nanos() {
        try {
            String s = Files.readString(stat);
            // fields after the ")" that ends the name: state is field 3, utime 14, stime 15
            String[] f = s.substring(s.lastIndexOf(')') + 2).split(" ");
            return (Long.parseLong(f[11]) + Long.parseLong(f[12])) * NANOS_PER_TICK;
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + stat, e);
        }
    }

    /** CPU used over one second from now. */
    public long nanosOverOneSecond() throws InterruptedException {
        long before = nanos();
        Thread.sleep(1_000);
        return nanos() - before;
    }

    /** Fails unless the thread stays (about) idle for one second; {@code what} says what it should be waiting for. */
    public void assertSleeps(String what) throws InterruptedException {
        long cpu = nanosOverOneSecond();
        assertTrue(cpu < IDLE_NANOS_PER_SECOND, what + ": the I/O thread used " + cpu / 1_000_000
                + " ms of CPU in one second, so it spins instead of waiting for a kick");
    }
}
