package io.vmm4j.cli.vm;

import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * Drives the Java guest for measurements: every guest action runs on one thread named
 * {@code vcpu0}, as in {@code ./vmm run}, so per-thread statistics separate the guest from the
 * VMM's own threads.
 */
public final class Workload implements AutoCloseable {
    /** The UDP port both sides of the comparison workloads use. */
    public static final int BENCH_PORT = GuestTraffic.BENCH_PORT;

    private final JavaGuest guest;
    private final ExecutorService vcpu = Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().name(VcpuThread.NAME).unstarted(r));

    Workload(JavaGuest guest) {
        this.guest = guest;
        call(() -> {
            guest.bringUp();
            return null;
        });
    }

    private <T> T call(Callable<T> task) {
        try {
            return vcpu.submit(task).get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while the guest worked", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException("the guest failed: " + e.getCause().getMessage(), e.getCause());
        }
    }

    /** Round trips of {@code count} sequential pings to the host, in nanoseconds. */
    public long[] pingRoundTrips(int count, int payload) {
        return call(() -> guest.traffic().pingRoundTrips(count, payload));
    }

    /** UDP datagrams of {@code payload} bytes to the host's bench port, as fast as the ring allows, for {@code nanos}. */
    public long floodUdp(long nanos, int payload) {
        return call(() -> guest.traffic().floodUdp(nanos, payload));
    }

    /** The guest counting datagrams to its bench port, until {@link Counting#stop()}. */
    public final class Counting {
        private volatile boolean done;
        private final Future<Long> count;

        private Counting() {
            CountDownLatch counting = new CountDownLatch(1);
            count = vcpu.submit(() -> guest.traffic().countUdp(() -> done, counting::countDown));
            // a sender pacing its window on soFar() must not see the last run's total, nor send before the guest counts
            try {
                if (!counting.await(30, TimeUnit.SECONDS)) {
                    throw new IllegalStateException("the guest did not start counting within 30 s");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while the guest started counting", e);
            }
        }

        /** Counted so far (safe from another thread). */
        public long soFar() {
            return guest.traffic().benchReceivedSoFar();
        }

        /** Stops counting and returns the total. */
        public long stop() throws InterruptedException, ExecutionException {
            done = true;
            return count.get();
        }
    }

    public Counting startCountingUdp() {
        return new Counting();
    }

    @Override
    public void close() {
        vcpu.shutdownNow();
    }
}
