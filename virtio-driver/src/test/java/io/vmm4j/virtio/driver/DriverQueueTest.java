package io.vmm4j.virtio.driver;

import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.driver.queue.CanaryGuestMemory;
import io.vmm4j.virtio.queue.SplitRing;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The guest side on its own: layout, descriptor bookkeeping, and distrust of the used ring. */
class DriverQueueTest {
    private CanaryGuestMemory guest;
    private GuestMemory memory;
    private GuestAllocator allocator;

    @BeforeEach
    void setUp() {
        guest = new CanaryGuestMemory();
        memory = guest.memory();
        allocator = guest.allocatorOverA();
    }

    @AfterEach
    void tearDown() {
        guest.assertCanariesIntact();
        guest.close();
    }

    @Test
    void ringsAreAlignedSizedAndZeroed() {
        memory.fill(CanaryGuestMemory.A, 8192, (byte) 0x5A);
        allocator.allocate(3, 1);
        DriverQueue q = new DriverQueue(memory, allocator, 64, true);
        assertEquals(0, q.descTable() % 16);
        assertEquals(0, q.availRing() % 2);
        assertEquals(0, q.usedRing() % 4);
        assertTrue(q.availRing() >= q.descTable() + 16 * 64, "areas do not overlap");
        assertTrue(q.usedRing() >= q.availRing() + 6 + 2 * 64);
        assertZero(q.descTable(), 16 * 64);
        assertZero(q.availRing(), 6 + 2 * 64);
        assertZero(q.usedRing(), 6 + 8 * 64);
        assertEquals(64, q.size());
        assertEquals(64, q.freeDescriptors());
    }

    private void assertZero(long address, int length) {
        byte[] bytes = guest.read(address, length);
        for (int i = 0; i < length; i++) {
            assertEquals(0, bytes[i], "byte " + i + " at 0x" + Long.toHexString(address));
        }
    }

    @Test
    void addWritesAChainInFreeDescriptorsAndItsHeadInTheAvailRing() {
        DriverQueue q = new DriverQueue(memory, allocator, 8, false);
        int head = q.add(new long[] {0x100100, 0x100200, 0x100300}, new int[] {10, 20, 30}, 1);
        long d = q.descTable() + 16L * head;
        assertEquals(0x100100, memory.readLong(d));
        assertEquals(10, memory.readInt(d + 8));
        assertEquals(SplitRing.DESC_F_NEXT, memory.readShort(d + 12));
        int second = memory.readShort(d + 14);
        long d2 = q.descTable() + 16L * second;
        assertEquals(0x100200, memory.readLong(d2));
        assertEquals(SplitRing.DESC_F_NEXT | SplitRing.DESC_F_WRITE, memory.readShort(d2 + 12));
        long d3 = q.descTable() + 16L * memory.readShort(d2 + 14);
        assertEquals(30, memory.readInt(d3 + 8));
        assertEquals(SplitRing.DESC_F_WRITE, memory.readShort(d3 + 12), "the last descriptor has no NEXT");
        assertEquals(head, memory.readShort(q.availRing() + 4));
        assertEquals(0, memory.readShort(q.availRing() + 2), "not visible before publish");
        q.publish();
        assertEquals(1, memory.readShort(q.availRing() + 2));
        assertEquals(5, q.freeDescriptors());
    }

    @Test
    void addReturnsMinusOneWhenTooFewDescriptorsAreFree() {
        DriverQueue q = new DriverQueue(memory, allocator, 4, false);
        assertEquals(0, q.add(new long[] {1, 2, 3}, new int[] {1, 1, 1}, 3));
        assertEquals(-1, q.add(new long[] {1, 2}, new int[] {1, 1}, 2));
        assertTrue(q.add(new long[] {1}, new int[] {1}, 1) >= 0);
        assertEquals(-1, q.addIndirect(CanaryGuestMemory.A + 0x8000, new long[] {1}, new int[] {1}, 1));
        assertEquals(0, q.freeDescriptors());
    }

    @Test
    void addRejectsMeaninglessArguments() {
        DriverQueue q = new DriverQueue(memory, allocator, 4, false);
        assertThrows(IllegalArgumentException.class, () -> q.add(new long[0], new int[0], 0));
        assertThrows(IllegalArgumentException.class, () -> q.add(new long[] {1}, new int[] {1, 2}, 1));
        assertThrows(IllegalArgumentException.class, () -> q.add(new long[] {1}, new int[] {1}, 2));
        assertThrows(IllegalArgumentException.class, () -> q.add(new long[] {1}, new int[] {-1}, 1));
        assertThrows(IllegalArgumentException.class, () -> q.writeDescriptor(4, 0, 0, 0, 0), "hooks stay inside the table");
        assertEquals(4, q.freeDescriptors());
    }

    @Test
    void pollUsedDistrustsTheDevice() {
        DriverQueue q = new DriverQueue(memory, allocator, 4, false);
        q.add(new long[] {1}, new int[] {1}, 1);
        q.publish();
        memory.writeInt(q.usedRing() + 4, 4);
        memory.writeShort(q.usedRing() + 2, (short) 1);
        IllegalStateException badHead = assertThrows(IllegalStateException.class, q::pollUsed);
        assertTrue(badHead.getMessage().contains("names head 4, outside the queue of size 4"), badHead.getMessage());

        DriverQueue r = new DriverQueue(memory, allocator, 4, false);
        memory.writeShort(r.usedRing() + 2, (short) 5);
        IllegalStateException ahead = assertThrows(IllegalStateException.class, r::pollUsed);
        assertTrue(ahead.getMessage().contains("used idx 5 is 5 entries ahead"), ahead.getMessage());
    }

    @Test
    void usedElementsFreeTheirChainsInAnyOrder() {
        DriverQueue q = new DriverQueue(memory, allocator, 4, false);
        int a = q.add(new long[] {1, 2}, new int[] {1, 1}, 1);
        int b = q.add(new long[] {3, 4}, new int[] {1, 1}, 1);
        q.publish();
        memory.writeInt(q.usedRing() + 4, b);
        memory.writeInt(q.usedRing() + 8, 7);
        memory.writeShort(q.usedRing() + 2, (short) 1);
        assertEquals(new DriverQueue.Used(b, 7), q.pollUsed());
        assertNull(q.pollUsed());
        assertEquals(2, q.freeDescriptors());
        int c = q.add(new long[] {5, 6}, new int[] {1, 1}, 2);
        assertEquals(b, c, "the freed chain is reused first");
        memory.writeInt(q.usedRing() + 12, a);
        memory.writeShort(q.usedRing() + 2, (short) 2);
        assertEquals(a, q.pollUsed().head());
        assertEquals(2, q.freeDescriptors());
    }

    @Test
    void startIndicesAtNeedsAnIdleQueue() {
        DriverQueue q = new DriverQueue(memory, allocator, 4, true);
        q.startIndicesAt(65534);
        assertEquals(65534, Short.toUnsignedInt(memory.readShort(q.availRing() + 2)));
        assertEquals(65534, Short.toUnsignedInt(memory.readShort(q.usedRing() + 2)));
        assertEquals(65534, Short.toUnsignedInt(memory.readShort(q.availRing() + SplitRing.usedEventOffset(4))));
        q.add(new long[] {1}, new int[] {1}, 1);
        assertThrows(IllegalStateException.class, () -> q.startIndicesAt(0));
        assertThrows(IllegalArgumentException.class, () -> new DriverQueue(memory, allocator, 4, true).startIndicesAt(65536));
    }
}
