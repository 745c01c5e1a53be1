package io.vmm4j.bench;

import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.driver.DriverQueue;
import io.vmm4j.virtio.queue.DescriptorChain;
import io.vmm4j.virtio.queue.SplitQueue;
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
import org.openjdk.jmh.infra.Blackhole;

import java.util.concurrent.TimeUnit;

/**
 * The split-ring engine with a null port: one thread plays both sides — the driver refills the
 * avail ring, the device pops each chain and pushes it used, the driver reaps it — so the score is
 * packets per second through {@link SplitQueue} with its validation, fences and notification
 * decisions. {@code batch} is how many chains go per publish / notification decision.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class SplitQueueBenchmark {
    static final int PACKETS_PER_OP = 32;
    private static final int QUEUE_SIZE = 256;

    @Param({"false", "true"})
    public boolean eventIdx;

    @Param({"1", "32"})
    public int batch;

    private GuestMemory memory;
    private DriverQueue driver;
    private SplitQueue device;
    private DescriptorChain chain;
    private final long[] addr = new long[1];
    private final int[] len = {64};
    private long[] buffers;

    @Setup(Level.Trial)
    public void setUp() {
        memory = GuestMemory.builder().region(0, 4L << 20).build();
        GuestAllocator allocator = new GuestAllocator(0x1000, (4L << 20) - 0x1000);
        driver = new DriverQueue(memory, allocator, QUEUE_SIZE, eventIdx);
        device = new SplitQueue(memory, QUEUE_SIZE, driver.descTable(), driver.availRing(), driver.usedRing(), eventIdx);
        chain = new DescriptorChain(device.maxChainSegments());
        buffers = new long[PACKETS_PER_OP];
        for (int i = 0; i < buffers.length; i++) {
            buffers[i] = allocator.allocate(2048, 64);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        memory.close();
    }

    @Benchmark
    @OperationsPerInvocation(PACKETS_PER_OP)
    public void popPushPerPacket(Blackhole bh) {
        for (int done = 0; done < PACKETS_PER_OP; done += batch) {
            for (int i = 0; i < batch; i++) {
                addr[0] = buffers[done + i];
                driver.add(addr, len, 1);
            }
            driver.publish();
            bh.consume(driver.needsKick());
            while (device.pop(chain)) {
                device.push(chain.head(), 0);
            }
            device.publish();
            bh.consume(device.needsNotification());
            int head;
            while ((head = driver.pollUsedHead()) >= 0) {
                bh.consume(head);
            }
        }
    }
}
