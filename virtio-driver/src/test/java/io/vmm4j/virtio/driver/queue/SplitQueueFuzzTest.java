package io.vmm4j.virtio.driver.queue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.queue.ChainHandler;
import io.vmm4j.virtio.queue.DescriptorChain;
import io.vmm4j.virtio.queue.SplitQueue;
import io.vmm4j.virtio.queue.SplitRing;
import io.vmm4j.virtio.queue.VirtqueueException;
import org.junit.jupiter.api.AfterAll;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzz target: the split-ring device engine over rings a hostile guest writes. Each input is a
 * sequence of guest writes (descriptors, indirect-table entries, avail entries, avail idx and flags,
 * used_event) interleaved with device operations (pop, push, publish, notification decisions,
 * enable/disable, rewind, serve). Invariants: a guest fault throws only {@link VirtqueueException}
 * and leaves the queue broken (every later ring operation refuses with IllegalStateException); no
 * byte outside guest memory is read or written (canary pages, {@link CanaryGuestMemory}); every
 * input ends within {@link #MAX_STEPS} operations and a time bound; chains never hold more segments
 * than the holder's capacity.
 *
 * <p>Regression mode (plain {@code mvn test}) replays {@code SplitQueueFuzzTestInputs/splitRing/};
 * fuzzing mode is {@code JAZZER_FUZZ=1} (README, "Fuzzing").
 */
class SplitQueueFuzzTest {
    static final int MAX_STEPS = 256;
    static final long MAX_NANOS_PER_INPUT = 2_000_000_000L;

    /** One guest memory for all inputs (a memfd per input would cost an fd each); zeroed per input. */
    private static CanaryGuestMemory guest;

    private static CanaryGuestMemory guest() {
        if (guest == null) {
            guest = new CanaryGuestMemory();
        }
        return guest;
    }

    @AfterAll
    static void closeGuest() {
        if (guest != null) {
            guest.close();
            guest = null;
        }
    }

    @FuzzTest(maxDuration = "20s")
    void splitRing(FuzzedDataProvider data) {
        CanaryGuestMemory g = guest();
        GuestMemory memory = g.memory();
        memory.fill(CanaryGuestMemory.A, g.aEnd() - CanaryGuestMemory.A, (byte) 0);
        memory.fill(g.b(), g.bEnd() - g.b(), (byte) 0);
        long started = System.nanoTime();

        int size = 1 << data.consumeInt(0, 6);
        boolean eventIdx = data.consumeBoolean();
        GuestAllocator allocator = g.allocatorOverA();
        long desc = allocator.allocate(SplitRing.descriptorTableBytes(size), 16);
        long avail = allocator.allocate(SplitRing.availRingBytes(size), 2);
        long used = allocator.allocate(SplitRing.usedRingBytes(size), 4);
        // buffers and indirect tables the descriptors point into: the rest of A and all of B
        long scratch = allocator.allocate(16 * 1024, 16);
        SplitQueue queue = new SplitQueue(memory, size, desc, avail, used, eventIdx);
        int capacity = data.consumeBoolean() ? queue.maxChainSegments() : data.consumeInt(1, 8);
        DescriptorChain chain = new DescriptorChain(capacity);
        List<Integer> inFlight = new ArrayList<>();
        byte[] bounce = new byte[512];

        for (int step = 0; step < MAX_STEPS && data.remainingBytes() > 0; step++) {
            int op = data.consumeInt(0, 12);
            boolean ringOp = op >= 5;
            try {
                switch (op) {
                    case 0 -> writeDescriptor(memory, desc + 16L * data.consumeInt(0, size - 1), data, g, scratch);
                    case 1 -> writeDescriptor(memory, scratch + 16L * data.consumeInt(0, 255), data, g, scratch);
                    case 2 -> memory.writeShort(avail + SplitRing.availEntryOffset(data.consumeInt(0, size - 1)),
                            (short) (data.consumeBoolean() ? data.consumeInt(0, size - 1) : data.consumeShort()));
                    case 3 -> {
                        int idx = Short.toUnsignedInt(memory.readShort(avail + SplitRing.RING_IDX));
                        int next = data.consumeBoolean() ? idx + data.consumeInt(0, size + 1) : data.consumeShort();
                        memory.storeReleaseShort(avail + SplitRing.RING_IDX, (short) next);
                    }
                    case 4 -> {
                        if (data.consumeBoolean()) {
                            memory.writeShort(avail + SplitRing.RING_FLAGS, data.consumeShort());
                        } else {
                            memory.writeShort(avail + SplitRing.usedEventOffset(size), data.consumeShort());
                        }
                    }
                    case 5 -> {
                        if (queue.pop(chain)) {
                            assertTrue(chain.segmentCount() >= 1 && chain.segmentCount() <= capacity, chain::toString);
                            assertTrue(chain.head() >= 0 && chain.head() < size, chain::toString);
                            assertTrue(chain.readableBytes() + chain.writableBytes() <= SplitQueue.MAX_CHAIN_BYTES);
                            inFlight.add(chain.head());
                            touch(memory, chain, bounce, data);
                        }
                    }
                    case 6 -> {
                        if (!inFlight.isEmpty()) {
                            int head = inFlight.remove(data.consumeInt(0, inFlight.size() - 1));
                            queue.push(head, data.consumeInt(0, 1 << 20));
                        }
                    }
                    case 7 -> {
                        queue.publish();
                        queue.needsNotification();
                    }
                    case 8 -> queue.disableNotifications();
                    case 9 -> queue.enableNotifications();
                    case 10 -> {
                        int n = data.consumeInt(0, inFlight.size());
                        queue.rewind(n);
                        inFlight.subList(inFlight.size() - n, inFlight.size()).clear();
                    }
                    case 11 -> {
                        if (inFlight.isEmpty()) {
                            int budget = data.consumeInt(0, 2 * size);
                            boolean defer = data.consumeBoolean();
                            queue.serve(chain, new BoundedHandler(memory, bounce, budget, defer));
                        }
                    }
                    default -> queue.hasAvailable();
                }
            } catch (VirtqueueException e) {
                assertTrue(ringOp, "only device operations meet guest faults: " + e);
                assertTrue(queue.isBroken(), "a ring error leaves the queue broken: " + e);
                if (op == 5) {
                    assertEquals(-1, chain.head(), "a failed pop leaves the holder empty (SplitQueue.pop): " + e);
                    assertEquals(0, chain.segmentCount());
                }
                assertThrows(IllegalStateException.class, () -> queue.pop(chain), "a broken queue refuses to go on");
                break;
            }
            assertTrue(System.nanoTime() - started < MAX_NANOS_PER_INPUT, "one input ran for more than 2 s");
        }
        g.assertCanariesIntact();
    }

    /** A descriptor (direct or indirect entry) pointing near the interesting places: buffers, region edges, outside. */
    private static void writeDescriptor(GuestMemory memory, long at, FuzzedDataProvider data, CanaryGuestMemory g, long scratch) {
        long address = switch (data.consumeInt(0, 4)) {
            case 0 -> scratch + data.consumeInt(0, 16 * 1024);
            case 1 -> g.b() + data.consumeInt(-64, 64);
            case 2 -> g.bEnd() + data.consumeInt(-64, 64);
            case 3 -> CanaryGuestMemory.A + data.consumeInt(-64, 64);
            default -> data.consumeLong();
        };
        int length = data.consumeBoolean() ? data.consumeInt(0, 4096) : data.consumeInt();
        int flags = data.consumeInt(0, 7) | (data.consumeBoolean() ? data.consumeShort() & 0xFFF8 : 0);
        int next = data.consumeBoolean() ? data.consumeInt(0, 64) : data.consumeShort() & 0xFFFF;
        memory.writeLong(at + SplitRing.DESCRIPTOR_ADDR, address);
        memory.writeInt(at + SplitRing.DESCRIPTOR_LEN, length);
        memory.writeShort(at + SplitRing.DESCRIPTOR_FLAGS, (short) flags);
        memory.writeShort(at + SplitRing.DESCRIPTOR_NEXT, (short) next);
    }

    /** What a device does with a popped chain: reads its readable bytes and writes its writable ones. */
    private static void touch(GuestMemory memory, DescriptorChain chain, byte[] bounce, FuzzedDataProvider data) {
        long readOffset = data.consumeInt(0, 4096);
        long writeOffset = data.consumeInt(0, 4096);
        int copied = chain.copyFromReadable(memory, readOffset, bounce, 0, bounce.length);
        assertTrue(copied >= 0 && copied <= Math.max(0, chain.readableBytes() - readOffset));
        int written = chain.copyToWritable(memory, writeOffset, bounce, 0, bounce.length);
        assertTrue(written >= 0 && written <= Math.max(0, chain.writableBytes() - writeOffset));
    }

    /** A serve handler that copies like a device, handles at most {@code budget} chains and may defer one. */
    private static final class BoundedHandler implements ChainHandler {
        private final GuestMemory memory;
        private final byte[] bounce;
        private int budget;
        private final boolean defer;

        BoundedHandler(GuestMemory memory, byte[] bounce, int budget, boolean defer) {
            this.memory = memory;
            this.bounce = bounce;
            this.budget = budget;
            this.defer = defer;
        }

        @Override
        public int handle(DescriptorChain chain) {
            budget--;
            if (defer && budget == 0) {
                return DEFER;
            }
            chain.copyFromReadable(memory, 0, bounce, 0, bounce.length);
            return chain.copyToWritable(memory, 0, bounce, 0, bounce.length);
        }

        @Override
        public void published(boolean notifyDriver) {
        }

        @Override
        public boolean serving() {
            return budget > 0;
        }
    }
}
