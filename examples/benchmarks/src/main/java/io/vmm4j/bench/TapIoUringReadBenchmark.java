package io.vmm4j.bench;

import io.vmm4j.core.linux.Errno;
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

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * Frames read from a tap, one readv per frame (what {@code QueuePairWorker} does for RX today)
 * against io_uring carrying {@code batch} readv requests per io_uring_enter. Before each
 * invocation (untimed) a packet socket bound to the tap sends {@link #FRAMES_PER_OP} frames, which
 * the host transmits into the tap's queue; the invocation reads them back, each into a 12-byte
 * virtio-net header and a frame buffer. One operation is one frame. Needs root (a tap, a packet
 * socket). The per-invocation injection is why this measures in invocations of about 100 µs:
 * JMH's timestamps around each stay small against that.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class TapIoUringReadBenchmark {
    static final int FRAMES_PER_OP = 64;
    // sys/socket.h, linux/if_packet.h: a raw packet socket and its struct sockaddr_ll (20 bytes)
    private static final int AF_PACKET = 17;
    private static final int SOCK_RAW = 3;
    private static final long SOCKADDR_LL_SIZE = 20;
    private static final long SLL_IFINDEX = 4;

    @Param({"64", "1500"})
    int frameSize;

    /** Readv requests per io_uring_enter (the readv-per-frame baseline ignores it). */
    @Param({"8", "32", "64"})
    int batch;

    private TapFrames t;
    private int injector = -1;
    private MemorySegment frame;
    /** Reads that found the tap's queue empty (the kernel dropped an injected frame); printed, expected 0. */
    private long emptyReads;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        t = new TapFrames("vurrd", FRAMES_PER_OP, frameSize, batch);
        int ifindex = Integer.parseInt(Files.readString(Path.of("/sys/class/net", t.tap.name(), "ifindex")).strip());
        injector = LibC.socket(AF_PACKET, SOCK_RAW | LibC.SOCK_CLOEXEC);
        MemorySegment sll = t.arena.allocate(SOCKADDR_LL_SIZE, 4); // protocol 0: this socket only sends
        sll.set(JAVA_SHORT, 0, (short) AF_PACKET);
        sll.set(JAVA_INT, SLL_IFINDEX, ifindex);
        LibC.bind(injector, sll, "AF_PACKET ifindex " + ifindex + " (" + t.tap.name() + ")");
        frame = t.arena.allocate(frameSize, 64);
        TapFrames.fakeIpv4Frame(frame);
        drain();
    }

    /** Reads whatever the kernel queued on the tap so far (IPv6 router solicitations and the like). */
    private void drain() {
        t.setIovecs(t.frameIov, 0, 0);
        while (LibC.readvRaw(t.fd, t.frameIov, 2) > 0) {
            // discard
        }
    }

    @Setup(Level.Invocation)
    public void inject() {
        for (int i = 0; i < FRAMES_PER_OP; i++) {
            long n = LibC.writeRaw(injector, frame, frameSize);
            if (n != frameSize) {
                throw new IllegalStateException("sending a frame into the tap through the packet socket: " + n);
            }
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        System.out.printf("%nreads that found the tap empty: %d%n", emptyReads);
        LibC.closeQuietly(injector);
        t.close();
    }

    @Benchmark
    @OperationsPerInvocation(FRAMES_PER_OP)
    public long readvPerFrame() {
        long bytes = 0;
        for (int i = 0; i < FRAMES_PER_OP; i++) {
            t.setIovecs(t.frameIov, 0, i);
            bytes += counted(LibC.readvRaw(t.fd, t.frameIov, 2));
        }
        return bytes;
    }

    @Benchmark
    @OperationsPerInvocation(FRAMES_PER_OP)
    public long ioUringReadv() {
        long bytes = 0;
        for (int first = 0; first < FRAMES_PER_OP; first += batch) {
            for (int i = first; i < first + batch; i++) {
                t.setIovecs(t.batchIov, 2L * i, i);
                if (!t.ring.queueReadv(t.fd, t.batchIov, 2L * i, 2, i)) {
                    throw new IllegalStateException("the ring refused request " + i + ": " + t.ring);
                }
            }
            t.ring.submitAndWait(batch);
            int ready = t.ring.completionsReady();
            for (int k = 0; k < ready; k++) {
                bytes += counted(t.ring.completionResult(k));
            }
            t.ring.consumeCompletions(ready);
        }
        return bytes;
    }

    private long counted(long result) {
        if (result == -Errno.EAGAIN) {
            emptyReads++;
            return 0;
        }
        if (result < 0) {
            throw new IllegalStateException("reading the tap failed: " + result);
        }
        return result;
    }
}
