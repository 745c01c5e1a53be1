package io.vmm4j.bench;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.engine.QueuePairWorker;
import io.vmm4j.virtio.QueueDoorbell;
import io.vmm4j.virtio.driver.DriverQueue;
import io.vmm4j.virtio.net.NetQueueCounters;
import io.vmm4j.virtio.net.VirtioNetHeader;
import io.vmm4j.virtio.queue.SplitQueue;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * The emulated backend's transmit path against its ceiling, on the same tap in the same run:
 * {@code emulatedTx} is the driver publishing 64-byte frames (12-byte virtio-net header + 64 bytes)
 * and {@link QueuePairWorker#processTx()} popping them and writev-ing each from guest memory;
 * {@code rawTapWrite} is a plain loop writing the same 76 bytes to the tap fd. Needs root (a tap).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class EmulatedTxBenchmark {
    static final int FRAMES_PER_OP = 32;
    static final int FRAME = 64;
    private static final int QUEUE_SIZE = 256;

    private GuestMemory memory;
    private TapDevice tap;
    private EventLoop loop;
    private DriverQueue driver;
    private QueuePairWorker worker;
    private long[] headers;
    private long[] payloads;
    private final long[] addrs = new long[2];
    private final int[] lens = {VirtioNetHeader.SIZE, FRAME};
    private final Arena arena = Arena.ofShared();
    private MemorySegment rawFrame;

    @Setup(Level.Trial)
    public void setUp() {
        memory = GuestMemory.builder().region(0, 8L << 20).build();
        GuestAllocator allocator = new GuestAllocator(0x1000, (8L << 20) - 0x1000);
        tap = TapDevice.open("vbench" + Integer.toHexString(ThreadLocalRandom.current().nextInt(0x1000, 0xFFFF)), 1,
                VirtioNetHeader.SIZE);
        tap.setUp();
        loop = new EventLoop("bench-io");
        DriverQueue rx = new DriverQueue(memory, allocator, QUEUE_SIZE, true);
        driver = new DriverQueue(memory, allocator, QUEUE_SIZE, true);
        SplitQueue rxDevice = new SplitQueue(memory, QUEUE_SIZE, rx.descTable(), rx.availRing(), rx.usedRing(), true);
        SplitQueue txDevice = new SplitQueue(memory, QUEUE_SIZE, driver.descTable(), driver.availRing(), driver.usedRing(), true);
        QueueDoorbell none = new QueueDoorbell() {
            @Override
            public Subscription onKick(EventLoop l, Runnable handler) {
                return () -> { };
            }

            @Override
            public void signalUsed() {
            }
        };
        worker = new QueuePairWorker(0, loop, tap, new QueuePairWorker.Queues(memory, rxDevice, txDevice, none, none,
                new NetQueueCounters(0, "rx"), new NetQueueCounters(1, "tx"), true, false, 1500, error -> {
                    throw new IllegalStateException(error.message());
                }));
        worker.start();
        headers = new long[FRAMES_PER_OP];
        payloads = new long[FRAMES_PER_OP];
        byte[] frame = new byte[FRAME];
        // an Ethernet frame to a made-up unicast MAC: the host drops it after the tap took it
        frame[0] = 0x52;
        frame[5] = 0x01;
        frame[6] = 0x52;
        frame[11] = 0x02;
        frame[12] = 0x08;
        for (int i = 0; i < FRAMES_PER_OP; i++) {
            headers[i] = allocator.allocate(VirtioNetHeader.SIZE, 16);
            payloads[i] = allocator.allocate(FRAME, 64);
            memory.write(payloads[i], frame, 0, FRAME);
        }
        rawFrame = arena.allocate(VirtioNetHeader.SIZE + FRAME, 64);
        MemorySegment.copy(MemorySegment.ofArray(frame), 0, rawFrame, VirtioNetHeader.SIZE, FRAME);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        worker.stop();
        worker.release();
        loop.close();
        tap.close();
        memory.close();
        arena.close();
    }

    @Benchmark
    @OperationsPerInvocation(FRAMES_PER_OP)
    public void emulatedTx(Blackhole bh) {
        for (int i = 0; i < FRAMES_PER_OP; i++) {
            addrs[0] = headers[i];
            addrs[1] = payloads[i];
            driver.add(addrs, lens, 2);
        }
        driver.publish();
        worker.processTx();
        int head;
        while ((head = driver.pollUsedHead()) >= 0) {
            bh.consume(head);
        }
    }

    @Benchmark
    @OperationsPerInvocation(FRAMES_PER_OP)
    public void rawTapWrite(Blackhole bh) {
        int fd = tap.fd(0);
        for (int i = 0; i < FRAMES_PER_OP; i++) {
            bh.consume(LibC.writeRaw(fd, rawFrame, VirtioNetHeader.SIZE + FRAME));
        }
    }
}
