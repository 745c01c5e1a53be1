package io.vmm4j.virtio.driver.queue;

import io.vmm4j.virtio.queue.ChainHandler;
import io.vmm4j.virtio.queue.DescriptorChain;
import io.vmm4j.virtio.queue.PackedQueue;
import io.vmm4j.virtio.queue.PackedRing;
import io.vmm4j.virtio.queue.SplitQueue;
import io.vmm4j.virtio.queue.Virtqueue;
import io.vmm4j.virtio.queue.VirtqueueException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static io.vmm4j.virtio.queue.PackedRing.DESC_F_NEXT;
import static io.vmm4j.virtio.queue.PackedRing.DESC_F_WRITE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Normal traffic through {@link PackedQueue} (virtio 1.2 §2.8) driven by {@link PackedDriverRing}:
 * single and chained buffers, indirect tables, many laps of the ring at sizes that are and are not
 * powers of two, completion out of order, rewind, positions for a backend switch, IN_ORDER batches,
 * event suppression both ways, and the serve loop through the {@link Virtqueue} interface.
 */
class PackedQueueTest {
    private PackedQueuePair q;

    @AfterEach
    void tearDown() {
        if (q != null) {
            q.guest.assertCanariesIntact();
            assertFalse(q.device.isBroken(), "no test here breaks the queue");
            q.close();
        }
    }

    private PackedQueuePair pair(int size, boolean eventIdx, boolean inOrder) {
        q = new PackedQueuePair(size, eventIdx, inOrder);
        return q;
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    @Test
    void oneReadableBufferRoundTrip() {
        pair(8, false, false);
        long buf = q.buffer(bytes("hello packed"));
        int id = q.driver.add(new long[] {buf}, new int[] {12}, 1);
        assertTrue(q.device.hasAvailable());

        DescriptorChain c = q.popOne();
        assertEquals(id, c.head(), "the chain's head is the buffer id (§2.8.6)");
        assertEquals(1, c.segmentCount());
        assertEquals(buf, c.address(0));
        assertEquals(12, c.length(0));
        assertFalse(c.isWritable(0));
        assertFalse(q.device.pop(c), "nothing else is available");
        assertNull(q.driver.pollUsed());

        q.device.push(id, 0);
        assertNull(q.driver.pollUsed(), "the driver sees nothing before publish");
        q.device.publish();
        PackedDriverRing.Used used = q.driver.pollUsed();
        assertNotNull(used);
        assertEquals(id, used.id());
        assertEquals(0, used.flags() & DESC_F_WRITE, "WRITE clear: the device wrote nothing (§2.8.3)");
        assertEquals(PackedRing.DESC_F_AVAIL | PackedRing.DESC_F_USED, used.flags() & 0x8080, "used in lap 1: both bits 1");
        assertEquals(PackedRing.position(1, true), q.device.nextAvail());
        assertEquals(PackedRing.position(1, true), q.device.nextUsed());
    }

    @Test
    void chainOfReadableAndWritableElementsCopiesBothWays() {
        pair(8, false, false);
        long header = q.buffer(bytes("req:"));
        long in1 = q.buffer(3);
        long in2 = q.buffer(5);
        int id = q.driver.add(new long[] {header, in1, in2}, new int[] {4, 3, 5}, 1);

        DescriptorChain c = q.popOne();
        assertEquals(id, c.head());
        assertEquals(3, c.segmentCount());
        assertEquals(1, c.readableCount());
        assertEquals(8, c.writableBytes());
        byte[] request = new byte[4];
        assertEquals(4, c.copyFromReadable(q.memory, 0, request, 0, 4));
        assertArrayEquals(bytes("req:"), request);
        assertEquals(8, c.copyToWritable(q.memory, 0, bytes("ABCDEFGH"), 0, 8));
        q.device.push(c.head(), 8);
        q.device.publish();

        PackedDriverRing.Used used = q.driver.pollUsed();
        assertEquals(id, used.id());
        assertEquals(8, used.length());
        assertEquals(DESC_F_WRITE, used.flags() & DESC_F_WRITE, "WRITE set: the device wrote data (§2.8.3)");
        assertArrayEquals(bytes("ABC"), q.read(in1, 3));
        assertArrayEquals(bytes("DEFGH"), q.read(in2, 5));
        assertEquals(PackedRing.position(3, true), q.device.nextUsed(), "the device skipped the chain's 3 slots (§2.8.6)");
        assertEquals(q.driver.usedPosition(), q.device.nextUsed());
    }

    @Test
    void indirectTableTakesOneSlotAndItsNextFlagsAreIgnored() {
        pair(4, false, false);
        long table = q.allocator.allocate(3 * 16, 16);
        long a = q.buffer(bytes("ab"));
        long b = q.buffer(4);
        long c2 = q.buffer(4);
        int id = q.driver.addIndirect(table, new long[] {a, b, c2}, new int[] {2, 4, 4}, 1);
        // §2.8.7: only WRITE counts in a table; a driver that sets NEXT there (split habits) is read by length
        q.driver.writeIndirectEntry(table, 0, a, 2, 7, DESC_F_NEXT);
        q.driver.writeIndirectEntry(table, 1, b, 4, 7, DESC_F_WRITE | DESC_F_NEXT);

        DescriptorChain c = q.popOne();
        assertEquals(id, c.head());
        assertEquals(3, c.segmentCount());
        assertEquals(1, c.readableCount());
        assertEquals(a, c.address(0));
        assertEquals(c2, c.address(2));
        assertEquals(PackedRing.position(1, true), q.device.nextAvail(), "the table took one ring slot");
        q.device.push(id, 8);
        q.device.publish();
        assertEquals(id, q.driver.pollUsed().id());
    }

    @Test
    void zeroLengthElementInsideMemoryIsAccepted() {
        // as on the split ring: an empty element is legal; its address must still lie in guest memory
        pair(4, false, false);
        long buf = q.buffer(8);
        int id = q.driver.add(new long[] {buf, buf}, new int[] {0, 8}, 1);
        DescriptorChain c = q.popOne();
        assertEquals(id, c.head());
        assertEquals(0, c.length(0));
        assertEquals(8, c.writableBytes());
    }

    @ParameterizedTest(name = "size {0}")
    @ValueSource(ints = {1, 2, 3, 5, 7, 64, 255, 256})
    void manyLapsOfTheRingWithChainsAcrossItsEnd(int size) {
        pair(size, size % 2 == 1, false);
        long[] bufs = new long[3];
        for (int i = 0; i < bufs.length; i++) {
            bufs[i] = q.buffer(8);
        }
        int laps = 0;
        boolean wrap = true;
        int rounds = 12 * size + 7;
        for (int round = 0; round < rounds; round++) {
            int n = 1 + round % Math.min(3, size);
            long[] addrs = new long[n];
            int[] lens = new int[n];
            for (int i = 0; i < n; i++) {
                addrs[i] = bufs[i];
                lens[i] = 8;
                q.memory.writeLong(bufs[i], round * 10L + i);
            }
            int id = q.driver.add(addrs, lens, n - 1);
            assertTrue(id >= 0, "round " + round + ": the ring has room");
            DescriptorChain c = q.popOne();
            assertEquals(id, c.head(), "round " + round);
            assertEquals(n, c.segmentCount(), "round " + round);
            for (int i = 0; i < n - 1; i++) {
                assertEquals(round * 10L + i, q.memory.readLong(c.address(i)), "round " + round + " segment " + i);
            }
            q.device.push(id, 8);
            q.device.publish();
            q.device.needsNotification();
            PackedDriverRing.Used used = q.driver.pollUsed();
            assertEquals(id, used.id(), "round " + round);
            assertEquals(8, used.length());
            assertEquals(q.driver.availPosition(), q.device.nextAvail(), "round " + round);
            assertEquals(q.driver.usedPosition(), q.device.nextUsed(), "round " + round);
            if (q.device.availWrapCounter() != wrap) {
                wrap = q.device.availWrapCounter();
                laps++;
            }
        }
        assertTrue(laps >= 10, "the ring went round " + laps + " times");
        assertEquals(size, q.driver.freeSlots());
    }

    @Test
    void buffersCompletedOutOfOrderAreFoundByTheDriverInCompletionOrder() {
        pair(8, false, false);
        long buf = q.buffer(16);
        int a = q.driver.add(new long[] {buf, buf, buf}, new int[] {4, 4, 4}, 3);
        int b = q.driver.add(new long[] {buf}, new int[] {4}, 1);
        int c = q.driver.add(new long[] {buf, buf}, new int[] {4, 4}, 2);
        DescriptorChain ca = new DescriptorChain(8);
        DescriptorChain cb = new DescriptorChain(8);
        DescriptorChain cc = new DescriptorChain(8);
        assertTrue(q.device.pop(ca));
        assertTrue(q.device.pop(cb));
        assertTrue(q.device.pop(cc));
        assertEquals(List.of(a, b, c), List.of(ca.head(), cb.head(), cc.head()));

        q.device.push(c, 0);
        q.device.push(a, 0);
        q.device.publish();
        q.device.push(b, 0);
        q.device.publish();
        List<Integer> order = new ArrayList<>();
        PackedDriverRing.Used u;
        while ((u = q.driver.pollUsed()) != null) {
            order.add(u.id());
        }
        assertEquals(List.of(c, a, b), order, "§2.8.12: used descriptors in the order the buffers completed");
        assertEquals(PackedRing.position(6, true), q.device.nextUsed());
        assertEquals(8, q.driver.freeSlots());

        // the freed slots and ids are reused across the ring's end
        int d = q.driver.add(new long[] {buf, buf, buf}, new int[] {1, 2, 3}, 0);
        DescriptorChain cd = q.popOne();
        assertEquals(d, cd.head());
        assertEquals(List.of(1, 2, 3), List.of(cd.length(0), cd.length(1), cd.length(2)));
        assertEquals(PackedRing.position(1, false), q.device.nextAvail(), "slots 6, 7, 0: the wrap counter flipped");
    }

    @Test
    void rewoundChainsArePoppedAgainAndOnlyUnreturnedOnesRewind() {
        pair(8, false, false);
        long buf = q.buffer(16);
        int a = q.driver.add(new long[] {buf, buf}, new int[] {4, 4}, 0);
        int b = q.driver.add(new long[] {buf}, new int[] {4}, 0);
        DescriptorChain c = new DescriptorChain(8);
        assertTrue(q.device.pop(c));
        assertTrue(q.device.pop(c));
        q.device.rewind(2);
        assertEquals(PackedRing.position(0, true), q.device.nextAvail());
        assertTrue(q.device.pop(c));
        assertEquals(a, c.head());
        assertEquals(2, c.segmentCount());
        q.device.push(a, 0);
        assertThrows(IllegalArgumentException.class, () -> q.device.rewind(1), "nothing unreturned was popped last");
        assertTrue(q.device.pop(c));
        assertEquals(b, c.head());
        q.device.rewind(1);
        assertThrows(IllegalArgumentException.class, () -> q.device.rewind(1), "chain a was pushed: it cannot be rewound");
        assertTrue(q.device.pop(c));
        assertEquals(b, c.head());
        q.device.push(b, 0);
        q.device.publish();
        assertEquals(a, q.driver.pollUsed().id());
        assertEquals(b, q.driver.pollUsed().id());
        assertThrows(IllegalStateException.class, () -> q.device.push(b, 0), "b is returned already");
    }

    @Test
    void backendSwitchResumesFromPositionsWithWrapCounters() {
        pair(5, true, false);
        long buf = q.buffer(8);
        for (int round = 0; round < 7; round++) {
            int id = q.driver.add(new long[] {buf}, new int[] {8}, 1);
            q.popOne();
            q.device.push(id, 0);
            q.device.publish();
            assertEquals(id, q.driver.pollUsed().id());
        }
        int avail = q.device.nextAvail();
        int used = q.device.nextUsed();
        assertEquals(PackedRing.position(2, false), avail, "7 slots on a ring of 5: offset 2 in the second lap");
        assertEquals(avail, used);
        // vhost-user GET_VRING_BASE for packed: avail offset and wrap in bits 0-15, used in bits 16-31
        assertEquals(2 | 2 << 16, PackedRing.vringBase(avail, used));

        PackedQueue next = q.newDevice();
        int base = PackedRing.vringBase(q.device.nextAvail(), q.device.nextUsed());
        next.setPosition(PackedRing.availPosition(base), PackedRing.usedPosition(base));
        assertFalse(next.availWrapCounter());
        assertFalse(next.usedWrapCounter());
        int id = q.driver.add(new long[] {buf}, new int[] {8}, 1);
        DescriptorChain c = new DescriptorChain(4);
        assertTrue(next.pop(c));
        assertEquals(id, c.head());
        next.push(id, 0);
        next.publish();
        assertTrue(next.needsNotification(), "the first decision after a switch notifies");
        assertEquals(id, q.driver.pollUsed().id());
        assertEquals(q.driver.usedPosition(), next.nextUsed());

        assertThrows(IllegalArgumentException.class, () -> next.setPosition(5, 0), "offset 5 is outside a ring of 5");
        assertThrows(IllegalArgumentException.class, () -> next.setPosition(0x1_0000, 0));
        // a wrap counter set in bit 31 of the vhost-user value lands in bit 15 of the used position
        assertEquals(PackedRing.position(3, true), PackedRing.usedPosition(PackedRing.vringBase(0, PackedRing.position(3, true))));
        assertEquals(0x8003_0002, PackedRing.vringBase(2, 0x8003));
        assertEquals(0x8000, PackedRing.usedPosition(0x8000), "a base with the avail half only (DPDK): used = avail");
    }

    @Test
    void inOrderBatchIsOneUsedDescriptorWithTheLastId() {
        pair(8, false, true);
        long buf = q.buffer(16);
        int[] ids = new int[4];
        for (int i = 0; i < 4; i++) {
            ids[i] = q.driver.add(new long[] {buf, buf}, new int[] {8, 8}, 2);
        }
        DescriptorChain c = new DescriptorChain(4);
        for (int i = 0; i < 4; i++) {
            assertTrue(q.device.pop(c));
            q.device.push(c.head(), 0);
        }
        q.device.publish();
        PackedDriverRing.Used used = q.driver.pollUsed();
        assertEquals(ids[3], used.id(), "§2.8.8: one used descriptor with the batch's last buffer id");
        assertNull(q.driver.pollUsed(), "and only one");
        assertEquals(8, q.driver.freeSlots(), "the driver took the skipped buffers as used");
        assertEquals(PackedRing.position(0, false), q.device.nextUsed());
        assertEquals(0, q.driver.usedFlagsAt(2) & PackedRing.DESC_F_USED, "slot 2 (the second buffer's) was not written");
    }

    @Test
    void inOrderBatchBreaksAfterAWritableBufferNotFilledCompletely() {
        pair(8, false, true);
        long buf = q.buffer(100);
        int a = q.driver.add(new long[] {buf}, new int[] {100}, 0);
        int b = q.driver.add(new long[] {buf}, new int[] {100}, 0);
        int c = q.driver.add(new long[] {buf}, new int[] {100}, 0);
        DescriptorChain chain = new DescriptorChain(4);
        int[] written = {100, 50, 100};
        for (int w : written) {
            assertTrue(q.device.pop(chain));
            q.device.push(chain.head(), w);
        }
        q.device.publish();
        PackedDriverRing.Used first = q.driver.pollUsed();
        assertEquals(b, first.id(), "a was filled, so it is skipped; b was not, so the batch ends with it");
        assertEquals(50, first.length());
        PackedDriverRing.Used second = q.driver.pollUsed();
        assertEquals(c, second.id());
        assertEquals(100, second.length());
        assertNull(q.driver.pollUsed());
        assertTrue(a != b);
    }

    @Test
    void inOrderRefusesAPushOutOfOrder() {
        pair(8, false, true);
        long buf = q.buffer(8);
        q.driver.add(new long[] {buf}, new int[] {8}, 1);
        int second = q.driver.add(new long[] {buf}, new int[] {8}, 1);
        DescriptorChain c = new DescriptorChain(4);
        assertTrue(q.device.pop(c));
        assertTrue(q.device.pop(c));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> q.device.push(second, 0));
        assertTrue(e.getMessage().contains("VIRTIO_F_IN_ORDER"), e.getMessage());
    }

    @Test
    void kicksFollowTheDeviceEventFlags() {
        pair(8, false, false);
        long buf = q.buffer(8);
        q.device.disableNotifications();
        assertEquals(PackedRing.RING_EVENT_FLAGS_DISABLE, q.driver.deviceEventFlags());
        q.driver.add(new long[] {buf}, new int[] {8}, 1);
        assertFalse(q.driver.needsKick(), "DISABLE: no kick");
        assertTrue(q.device.enableNotifications(), "a buffer arrived while kicks were off: process again");
        assertEquals(PackedRing.RING_EVENT_FLAGS_ENABLE, q.driver.deviceEventFlags());
        q.popOne();
        assertFalse(q.device.enableNotifications(), "nothing new");
        q.driver.add(new long[] {buf}, new int[] {8}, 1);
        assertTrue(q.driver.needsKick(), "ENABLE: kick");
    }

    @Test
    void withEventIdxTheDeviceAsksForAKickAtTheNextSlotAcrossLaps() {
        pair(3, true, false);
        long buf = q.buffer(8);
        for (int round = 0; round < 10; round++) {
            int id = q.driver.add(new long[] {buf}, new int[] {8}, 1);
            assertTrue(q.driver.needsKick(), "round " + round + ": the slot the device named was made available");
            q.popOne();
            assertEquals(PackedRing.RING_EVENT_FLAGS_DESC, q.driver.deviceEventFlags());
            assertEquals(q.driver.availPosition(), q.driver.deviceEventOffWrap(), "round " + round + ": off_wrap is the next slot, wrap included");
            q.device.push(id, 0);
            q.device.publish();
            q.driver.pollUsed();
        }
        // two buffers without a pop in between: only the first crosses the named slot
        q.driver.add(new long[] {buf}, new int[] {8}, 1);
        assertTrue(q.driver.needsKick());
        q.driver.add(new long[] {buf}, new int[] {8}, 1);
        assertFalse(q.driver.needsKick(), "the device has not looked since: no second kick");
    }

    @Test
    void rewoundBuffersDoNotSendTheDeviceRoundAgain() {
        pair(8, true, false);
        long buf = q.buffer(8);
        q.driver.add(new long[] {buf}, new int[] {8}, 1);
        q.device.disableNotifications();
        q.popOne();
        q.device.rewind(1);
        assertFalse(q.device.enableNotifications(), "the rewound buffer was looked at already");
        assertEquals(PackedRing.position(1, true), q.driver.deviceEventOffWrap(), "off_wrap stays past it");
        q.driver.add(new long[] {buf}, new int[] {8}, 1);
        assertTrue(q.driver.needsKick());
    }

    @Test
    void usedNotificationsFollowTheDriverEventFlags() {
        pair(8, false, false);
        long buf = q.buffer(8);
        assertFalse(q.device.needsNotification(), "nothing published");
        q.driver.driverEvent(0, PackedRing.RING_EVENT_FLAGS_DISABLE);
        useOne(buf);
        assertFalse(q.device.needsNotification(), "DISABLE: no interrupt");
        q.driver.driverEvent(0, PackedRing.RING_EVENT_FLAGS_ENABLE);
        useOne(buf);
        assertTrue(q.device.needsNotification(), "ENABLE: interrupt");
        assertFalse(q.device.needsNotification(), "nothing published since the last decision");
    }

    @Test
    void withEventIdxTheDeviceNotifiesWhenItPassesTheNamedDescriptor() {
        pair(4, true, false);
        long buf = q.buffer(8);
        // the driver asks for an interrupt when slot 2 of the first lap is used
        q.driver.driverEvent(PackedRing.position(2, true), PackedRing.RING_EVENT_FLAGS_DESC);
        useOne(buf);
        assertFalse(q.device.needsNotification(), "slot 0");
        useOne(buf);
        assertFalse(q.device.needsNotification(), "slot 1");
        useOne(buf);
        assertTrue(q.device.needsNotification(), "slot 2: the named descriptor");
        useOne(buf);
        assertFalse(q.device.needsNotification(), "slot 3");
        // slot 1 of the second lap (wrap counter 0)
        q.driver.driverEvent(PackedRing.position(1, false), PackedRing.RING_EVENT_FLAGS_DESC);
        useOne(buf);
        assertFalse(q.device.needsNotification(), "slot 0 of lap 2");
        useOne(buf);
        assertTrue(q.device.needsNotification(), "slot 1 of lap 2");
        // a named slot in a lap not reached yet: slot 0 with wrap 1 is the third lap
        q.driver.driverEvent(PackedRing.position(0, true), PackedRing.RING_EVENT_FLAGS_DESC);
        useOne(buf);
        assertFalse(q.device.needsNotification(), "slot 2 of lap 2");
        useOne(buf);
        assertFalse(q.device.needsNotification(), "slot 3 of lap 2");
        useOne(buf);
        assertTrue(q.device.needsNotification(), "slot 0 of lap 3");
    }

    /** Driver adds one buffer, the device pops, pushes and publishes it, the driver reaps it. */
    private void useOne(long buf) {
        int id = q.driver.add(new long[] {buf}, new int[] {8}, 1);
        DescriptorChain c = q.popOne();
        q.device.push(c.head(), 0);
        q.device.publish();
        assertEquals(id, q.driver.pollUsed().id());
    }

    @Test
    void serveRunsTheSameHandlerOnBothLayoutsThroughTheInterface() {
        pair(6, true, false);
        try (QueuePair split = new QueuePair(8, true)) {
            long packedBuf = q.buffer(4);
            long splitBuf = split.buffer(4);
            for (int i = 0; i < 3; i++) {
                q.driver.add(new long[] {packedBuf}, new int[] {4}, 0);
                split.driver.add(new long[] {splitBuf}, new int[] {4}, 0);
            }
            split.driver.publish();
            for (Virtqueue queue : List.<Virtqueue>of(q.device, split.device)) {
                List<Boolean> notified = new ArrayList<>();
                int[] handled = {0};
                ChainHandler handler = new ChainHandler() {
                    @Override
                    public int handle(DescriptorChain chain) {
                        handled[0]++;
                        return chain.copyToWritable(queue == q.device ? q.memory : split.memory, 0, bytes("rng!"), 0, 4);
                    }

                    @Override
                    public void published(boolean notifyDriver) {
                        notified.add(notifyDriver);
                    }
                };
                queue.serve(new DescriptorChain(queue.maxChainSegments()), handler);
                assertEquals(3, handled[0], queue.toString());
                assertEquals(List.of(true), notified, queue.toString());
            }
            assertArrayEquals(bytes("rng!"), q.read(packedBuf, 4));
            for (int i = 0; i < 3; i++) {
                assertEquals(4, q.driver.pollUsed().length());
            }
            assertTrue(split.device instanceof SplitQueue);
        }
    }

    @Test
    void layoutAcceptsAnySizeUpTo32768AndChecksAlignmentAndBounds() {
        try (CanaryGuestMemory guest = new CanaryGuestMemory(1 << 20, 16 * 1024)) {
            long a = CanaryGuestMemory.A;
            for (int size : new int[] {1, 3, 1000, 32767, 32768}) {
                PackedQueue.validateLayout(guest.memory(), size, a, a + 0x80000, a + 0x80004);
            }
            for (int size : new int[] {0, -1, 32769, 65536}) {
                VirtqueueException e = assertThrows(VirtqueueException.class,
                        () -> new PackedQueue(guest.memory(), size, a, a + 0x80000, a + 0x80004, false, false));
                assertTrue(e.getMessage().contains("queue size " + size + " is not in 1..32768"), e.getMessage());
            }
            assertMessage("descriptor ring address 0x" + Long.toHexString(a + 8) + " is not 16-byte aligned",
                    () -> PackedQueue.validateLayout(guest.memory(), 4, a + 8, a + 0x1000, a + 0x1004));
            assertMessage("driver event suppression area address 0x" + Long.toHexString(a + 0x1002) + " is not 4-byte aligned",
                    () -> PackedQueue.validateLayout(guest.memory(), 4, a, a + 0x1002, a + 0x1004));
            assertMessage("device event suppression area [0x" + Long.toHexString(guest.bEnd()) + ", +4) for queue size 4 is not inside",
                    () -> PackedQueue.validateLayout(guest.memory(), 4, a, a + 0x1000, guest.bEnd()));
            assertMessage("descriptor ring [0x" + Long.toHexString(guest.b() - 32) + ", +64) for queue size 4 is not inside one",
                    () -> PackedQueue.validateLayout(guest.memory(), 4, guest.b() - 32, a + 0x1000, a + 0x1004));
            assertMessage("descriptor ring [0x" + Long.toHexString(guest.b()) + ", +524288) for queue size 32768",
                    () -> PackedQueue.validateLayout(guest.memory(), 32768, guest.b(), a + 0x1000, a + 0x1004));
            guest.assertCanariesIntact();
        }
    }

    private static void assertMessage(String expected, Runnable check) {
        VirtqueueException e = assertThrows(VirtqueueException.class, check::run);
        assertTrue(e.getMessage().contains(expected), "message \"" + e.getMessage() + "\" should contain \"" + expected + "\"");
    }
}
