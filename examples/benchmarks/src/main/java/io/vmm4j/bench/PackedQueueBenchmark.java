package io.vmm4j.bench;

import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.queue.DescriptorChain;
import io.vmm4j.virtio.queue.PackedQueue;
import io.vmm4j.virtio.queue.PackedRing;
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

import java.lang.invoke.VarHandle;
import java.util.concurrent.TimeUnit;

/**
 * {@link SplitQueueBenchmark}'s loop on the packed-ring engine, with the same null port: one thread
 * plays both sides — the driver makes each buffer available and decides on a kick, the device pops
 * each chain and pushes it used, publishes and decides on an interrupt, the driver reaps it — so
 * the score is packets per second through {@link PackedQueue}. {@code batch} is how many chains go
 * per publish / notification decision. The driver half is {@link PackedDriver} below, the minimum a
 * packed driver does (ids from a free ring, first flags stored with release, event check); the
 * Java guest driver has no packed support yet.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class PackedQueueBenchmark {
    static final int PACKETS_PER_OP = SplitQueueBenchmark.PACKETS_PER_OP;
    private static final int QUEUE_SIZE = 256;

    @Param({"false", "true"})
    public boolean eventIdx;

    @Param({"1", "32"})
    public int batch;

    private GuestMemory memory;
    private PackedDriver driver;
    private PackedQueue device;
    private DescriptorChain chain;
    private long[] buffers;

    @Setup(Level.Trial)
    public void setUp() {
        memory = GuestMemory.builder().region(0, 4L << 20).build();
        GuestAllocator allocator = new GuestAllocator(0x1000, (4L << 20) - 0x1000);
        driver = new PackedDriver(memory, allocator, QUEUE_SIZE);
        device = new PackedQueue(memory, QUEUE_SIZE, driver.descRing, driver.driverArea, driver.deviceArea, eventIdx, false);
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
                driver.add(buffers[done + i], 64);
            }
            bh.consume(driver.needsKick());
            while (device.pop(chain)) {
                device.push(chain.head(), 0);
            }
            device.publish();
            bh.consume(device.needsNotification());
            int id;
            while ((id = driver.pollUsed()) >= 0) {
                bh.consume(id);
            }
        }
    }

    /** The driver's half of a packed ring for one-descriptor buffers (virtio 1.2 §2.8.21, §2.8.22). */
    static final class PackedDriver {
        final GuestMemory memory;
        final int size;
        final long descRing;
        final long driverArea;
        final long deviceArea;
        private final int[] freeIds;
        private int freeHead;
        private int freeCount;
        private int availOffset;
        private boolean availWrap = true;
        private int usedOffset;
        private boolean usedWrap = true;
        private int decidedAvail = PackedRing.position(0, true);

        PackedDriver(GuestMemory memory, GuestAllocator allocator, int size) {
            this.memory = memory;
            this.size = size;
            this.descRing = allocator.allocate(PackedRing.descriptorRingBytes(size), PackedRing.DESCRIPTOR_RING_ALIGNMENT);
            this.driverArea = allocator.allocate(PackedRing.EVENT_SUPPRESSION_SIZE, PackedRing.EVENT_SUPPRESSION_ALIGNMENT);
            this.deviceArea = allocator.allocate(PackedRing.EVENT_SUPPRESSION_SIZE, PackedRing.EVENT_SUPPRESSION_ALIGNMENT);
            memory.fill(descRing, PackedRing.descriptorRingBytes(size), (byte) 0);
            memory.fill(driverArea, 4, (byte) 0);
            memory.fill(deviceArea, 4, (byte) 0);
            freeIds = new int[size];
            for (int i = 0; i < size; i++) {
                freeIds[i] = i;
            }
            freeCount = size;
        }

        /** Makes one device-readable buffer available; returns its id, or -1 if the ring is full. */
        int add(long address, int length) {
            if (freeCount == 0) {
                return -1;
            }
            int id = freeIds[freeHead];
            freeHead = freeHead + 1 == size ? 0 : freeHead + 1;
            freeCount--;
            long entry = descRing + (long) PackedRing.DESCRIPTOR_SIZE * availOffset;
            memory.writeLong(entry + PackedRing.DESCRIPTOR_ADDR, address);
            memory.writeInt(entry + PackedRing.DESCRIPTOR_LEN, length);
            memory.writeShort(entry + PackedRing.DESCRIPTOR_ID, (short) id);
            memory.storeReleaseShort(entry + PackedRing.DESCRIPTOR_FLAGS, (short) PackedRing.availFlags(availWrap));
            if (++availOffset == size) {
                availOffset = 0;
                availWrap = !availWrap;
            }
            return id;
        }

        boolean needsKick() {
            VarHandle.fullFence();
            int event = memory.readInt(deviceArea);
            int old = decidedAvail;
            decidedAvail = PackedRing.position(availOffset, availWrap);
            int flags = event >>> 16;
            if (flags == PackedRing.RING_EVENT_FLAGS_DESC) {
                return PackedRing.needsEvent(event & 0xFFFF, decidedAvail, old, size);
            }
            return flags != PackedRing.RING_EVENT_FLAGS_DISABLE;
        }

        /** Reaps one used descriptor; returns its id, or -1 if there is none. */
        int pollUsed() {
            long entry = descRing + (long) PackedRing.DESCRIPTOR_SIZE * usedOffset;
            int flags = Short.toUnsignedInt(memory.loadAcquireShort(entry + PackedRing.DESCRIPTOR_FLAGS));
            if ((flags & (PackedRing.DESC_F_AVAIL | PackedRing.DESC_F_USED)) != PackedRing.usedFlags(usedWrap)) {
                return -1;
            }
            int id = Short.toUnsignedInt(memory.readShort(entry + PackedRing.DESCRIPTOR_ID));
            if (id >= size) {
                throw new IllegalStateException("the device used buffer id " + id + ", outside the ring of " + size);
            }
            freeIds[(freeHead + freeCount) % size] = id;
            freeCount++;
            if (++usedOffset == size) {
                usedOffset = 0;
                usedWrap = !usedWrap;
            }
            return id;
        }
    }
}
