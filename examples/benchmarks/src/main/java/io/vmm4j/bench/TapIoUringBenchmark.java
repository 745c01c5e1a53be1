package io.vmm4j.bench;

import io.vmm4j.core.linux.IoUring;
import io.vmm4j.core.linux.LibC;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;


/**
 * Frames to a tap, one writev per frame (what {@code QueuePairWorker} does for TX today) against
 * io_uring carrying {@code batch} writev requests per io_uring_enter, on the same tap in the same
 * run. Each frame is two iovecs, the 12-byte virtio-net header and the frame, as a guest's chain
 * usually is; the tap has IFF_VNET_HDR, is up and has no address, so the host counts each frame
 * (rx_packets) and drops it. The SQPOLL variants let a kernel thread take the SQEs: one waits for
 * completions in io_uring_enter, the other spins on the CQ ring (no system call at all while the
 * kernel thread is awake). One operation is one frame. Needs root (a tap).
 *
 * <p>Run: {@code java --enable-native-access=ALL-UNNAMED -cp examples/benchmarks/target/classes:examples/benchmarks/target/lib/*
 * org.openjdk.jmh.Main -prof gc TapIoUringBenchmark} (what {@code ./vmm bench TapIoUringBenchmark} runs).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class TapIoUringBenchmark {
    static final int FRAMES_PER_OP = 64;

    /** Bytes of Ethernet frame after the virtio-net header. */
    @Param({"64", "1500"})
    int frameSize;

    /** Writev requests per io_uring_enter (the writev-per-frame baseline ignores it). */
    @Param({"8", "32", "64"})
    int batch;

    private TapFrames t;
    private long rxPacketsAtStart;

    /** A ring with a kernel submission thread, made only for the benchmarks that take it. */
    @State(Scope.Thread)
    public static class SqPollRing {
        IoUring ring;

        @Setup(Level.Trial)
        public void setUp() {
            ring = IoUring.open(FRAMES_PER_OP, IoUring.IORING_SETUP_SQPOLL);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            ring.close();
        }
    }

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        t = new TapFrames("vuring", FRAMES_PER_OP, frameSize, batch);
        for (int i = 0; i < FRAMES_PER_OP; i++) {
            TapFrames.fakeIpv4Frame(t.buffer(i));
        }
        rxPacketsAtStart = rxPackets();
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        // the kernel's count of frames the tap took in: it must match what the benchmark claims to have sent
        System.out.printf("%n%s rx_packets +%d%n", t.tap.name(), rxPackets() - rxPacketsAtStart);
        t.close();
    }

    private long rxPackets() throws IOException {
        return Long.parseLong(Files.readString(Path.of("/sys/class/net", t.tap.name(), "statistics/rx_packets")).strip());
    }

    @Benchmark
    @OperationsPerInvocation(FRAMES_PER_OP)
    public long writevPerFrame() {
        long bytes = 0;
        for (int i = 0; i < FRAMES_PER_OP; i++) {
            t.setIovecs(t.frameIov, 0, i);
            long n = LibC.writevRaw(t.fd, t.frameIov, 2);
            if (n < 0) {
                throw new IllegalStateException("writev to the tap failed: " + n);
            }
            bytes += n;
        }
        return bytes;
    }

    @Benchmark
    @OperationsPerInvocation(FRAMES_PER_OP)
    public long ioUringWritev() {
        return throughRing(t.ring, false);
    }

    @Benchmark
    @OperationsPerInvocation(FRAMES_PER_OP)
    public long ioUringSqPollWritev(SqPollRing sqPoll) {
        return throughRing(sqPoll.ring, false);
    }

    @Benchmark
    @OperationsPerInvocation(FRAMES_PER_OP)
    public long ioUringSqPollSpinWritev(SqPollRing sqPoll) {
        return throughRing(sqPoll.ring, true);
    }

    /** {@link #FRAMES_PER_OP} frames in batches of {@link #batch}; {@code spin}: wait for completions on the CQ ring, not in the kernel. */
    private long throughRing(IoUring r, boolean spin) {
        long bytes = 0;
        for (int first = 0; first < FRAMES_PER_OP; first += batch) {
            for (int i = first; i < first + batch; i++) {
                t.setIovecs(t.batchIov, 2L * i, i);
                while (!r.queueWritev(t.fd, t.batchIov, 2L * i, 2, i)) {
                    // full: an SQPOLL thread frees SQ slots when it commits its whole batch, which can be after their CQEs
                    r.submitAndWait(0);
                    Thread.onSpinWait();
                }
            }
            if (spin) {
                r.submitAndWait(0); // publishes the tail; enters only to wake a sleeping SQPOLL thread
                while (r.completionsReady() < batch) {
                    Thread.onSpinWait();
                }
            } else {
                r.submitAndWait(batch);
            }
            int ready = r.completionsReady();
            for (int k = 0; k < ready; k++) {
                int res = r.completionResult(k);
                if (res < 0) {
                    throw new IllegalStateException("io_uring writev to the tap failed: " + res);
                }
                bytes += res;
            }
            r.consumeCompletions(ready);
        }
        return bytes;
    }
}
