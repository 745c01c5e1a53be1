package io.vmm4j.virtio.driver.queue;

import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.core.testing.AllocatedBytes;
import io.vmm4j.virtio.driver.DriverVirtqueue;
import io.vmm4j.virtio.driver.PackedDriverQueue;
import io.vmm4j.virtio.queue.DescriptorChain;
import io.vmm4j.virtio.queue.PackedQueue;
import io.vmm4j.virtio.queue.PackedRing;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Java driver's packed ring ({@link PackedDriverQueue}, virtio 1.2 §2.8.21, §2.8.22) against the
 * real device engine {@link PackedQueue}, in canary-guarded guest memory: round trips, many laps at
 * sizes that are and are not powers of two with chains straddling the ring's end and buffers used
 * out of order, indirect tables, chained receive buffers, kick and interrupt suppression in both
 * modes, and a device that writes used descriptors the driver must refuse.
 */
class PackedDriverQueueTest {
    private CanaryGuestMemory guest;
    private GuestMemory memory;
    private GuestAllocator allocator;
    private PackedDriverQueue driver;
    private PackedQueue device;
    private DescriptorChain chain;

    @AfterEach
    void tearDown() {
        if (guest != null) {
            guest.assertCanariesIntact();
            guest.close();
        }
    }

    private void open(int size, boolean eventIdx) {
        guest = new CanaryGuestMemory();
        memory = guest.memory();
        allocator = guest.allocatorOverA();
        driver = new PackedDriverQueue(memory, allocator, size, eventIdx);
        // the device reads what the driver wrote to queue_desc, queue_driver and queue_device (§4.1.4.3)
        device = new PackedQueue(memory, size, driver.descriptorArea(), driver.driverArea(), driver.deviceArea(), eventIdx, false);
        chain = new DescriptorChain(device.maxChainSegments());
    }

    private long buffer(byte[] content) {
        long address = allocator.allocate(Math.max(1, content.length), 8);
        memory.write(address, content, 0, content.length);
        return address;
    }

    private long buffer(int length) {
        long address = allocator.allocate(Math.max(1, length), 8);
        memory.fill(address, Math.max(1, length), (byte) 0);
        return address;
    }

    private DescriptorChain popOne() {
        assertTrue(device.pop(chain), "the device found no available buffer");
        return chain;
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    @Test
    void layoutIsWhatTheTransportExpects() {
        open(5, false);
        assertTrue(driver.packed());
        assertEquals(0, driver.descriptorArea() % 16, "descriptor ring 16-byte aligned (§2.8.10.1)");
        assertEquals(0, driver.driverArea() % 4, "driver event suppression 4-byte aligned");
        assertEquals(0, driver.deviceArea() % 4, "device event suppression 4-byte aligned");
        assertEquals(5, driver.freeDescriptors());
        PackedQueue.validateLayout(memory, 5, driver.descriptorArea(), driver.driverArea(), driver.deviceArea());
        assertThrows(IllegalArgumentException.class, () -> new PackedDriverQueue(memory, allocator, 0, false));
        assertThrows(IllegalArgumentException.class, () -> new PackedDriverQueue(memory, allocator, PackedRing.MAX_QUEUE_SIZE + 1, false));
    }

    @Test
    void readableAndWritableBufferRoundTrip() {
        open(8, false);
        long request = buffer(bytes("ping"));
        long reply = buffer(16);
        int id = driver.add(new long[] {request, reply}, new int[] {4, 16}, 1);
        assertTrue(id >= 0 && id < 8);
        assertEquals(6, driver.freeDescriptors(), "a two-segment buffer takes two slots");
        assertFalse(device.hasAvailable(), "an added buffer is not visible before publish");
        driver.publish();

        DescriptorChain c = popOne();
        assertEquals(id, c.head(), "the chain's head is the buffer id (§2.8.6)");
        assertEquals(2, c.segmentCount());
        assertEquals(request, c.address(0));
        assertFalse(c.isWritable(0));
        assertEquals(reply, c.address(1));
        assertTrue(c.isWritable(1));
        byte[] got = new byte[4];
        c.copyFromReadable(memory, 0, got, 0, 4);
        assertArrayEquals(bytes("ping"), got);
        c.copyToWritable(memory, 0, bytes("pong!"), 0, 5);
        device.push(id, 5);

        assertFalse(driver.hasUsed(), "nothing used before the device publishes");
        assertEquals(-1, driver.pollUsedHead());
        device.publish();
        assertTrue(driver.hasUsed());
        DriverVirtqueue.Used used = driver.pollUsed();
        assertNotNull(used);
        assertEquals(id, used.head());
        assertEquals(5, used.length());
        assertArrayEquals(bytes("pong!"), guest.read(reply, 5));
        assertEquals(8, driver.freeDescriptors(), "the slots are free again");
        assertNull(driver.pollUsed());
        assertEquals(PackedRing.position(2, true), driver.lastUsed(), "the used position skipped the buffer's two slots");
    }

    @Test
    void aBatchBecomesVisibleAtOnce() {
        open(8, false);
        long buf = buffer(8);
        int[] ids = new int[3];
        for (int i = 0; i < 3; i++) {
            ids[i] = driver.add(new long[] {buf}, new int[] {8}, 0);
        }
        assertFalse(device.hasAvailable(), "no buffer of the batch is visible before publish");
        driver.publish();
        for (int i = 0; i < 3; i++) {
            assertEquals(ids[i], popOne().head());
        }
        assertFalse(device.pop(chain));
        assertEquals(3, Arrays.stream(ids).distinct().count(), "every buffer in flight has its own id");
    }

    /**
     * Several laps of the ring (both wrap counters flip many times) with buffers of 1..3 slots, so
     * chains straddle the ring's end, three in flight at once and used in reverse order, so the used
     * position skips slots of buffers other than the one first made available there.
     */
    @ParameterizedTest
    @CsvSource({"1,false", "3,false", "3,true", "7,true", "8,false", "8,true", "256,true", "255,false"})
    void manyLapsWithChainsAcrossTheEndAndOutOfOrderUse(int size, boolean eventIdx) {
        open(size, eventIdx);
        long readable = buffer(64);
        long writable = buffer(64);
        ArrayDeque<Integer> inFlight = new ArrayDeque<>();
        int[] segmentsOf = new int[size];
        int rounds = 6 * size + 5;
        long slotsUsed = 0;
        int sequence = 0;
        for (int round = 0; round < rounds; round++) {
            int batch = Math.min(3, size);
            int added = 0;
            for (int b = 0; b < batch; b++) {
                int segments = 1 + (sequence % Math.min(3, size));
                if (segments > driver.freeDescriptors()) {
                    break;
                }
                sequence++;
                long[] addrs = new long[segments];
                int[] lens = new int[segments];
                for (int s = 0; s < segments; s++) {
                    addrs[s] = s == segments - 1 ? writable : readable + s;
                    lens[s] = s == segments - 1 ? 32 : 1;
                }
                int id = driver.add(addrs, lens, segments - 1);
                assertTrue(id >= 0, "round " + round + ": " + driver);
                segmentsOf[id] = segments;
                added++;
            }
            driver.publish();
            for (int b = 0; b < added; b++) {
                DescriptorChain c = popOne();
                assertEquals(segmentsOf[c.head()], c.segmentCount(), "round " + round);
                assertEquals(writable, c.address(c.segmentCount() - 1));
                assertTrue(c.isWritable(c.segmentCount() - 1));
                inFlight.push(c.head());
            }
            assertFalse(device.pop(chain), "round " + round + ": only what was published is available");
            // used in the reverse of the order they were made available
            int[] expected = new int[inFlight.size()];
            for (int i = 0; !inFlight.isEmpty(); i++) {
                expected[i] = inFlight.pop();
                device.push(expected[i], expected[i] % 33);
            }
            device.publish();
            for (int want : expected) {
                int head = driver.pollUsedHead();
                assertEquals(want, head, "round " + round);
                assertEquals(want % 33, driver.lastUsedLength());
                slotsUsed += segmentsOf[head];
            }
            assertEquals(-1, driver.pollUsedHead());
            assertEquals(size, driver.freeDescriptors(), "round " + round + ": every slot is free again");
            assertEquals(device.nextUsed(), driver.lastUsed(), "round " + round + ": driver and device agree on the used position");
            assertEquals(device.nextAvail(), driver.availPosition(), "round " + round);
        }
        assertTrue(slotsUsed >= 4L * size, "the test went round the ring at least twice per wrap counter: " + slotsUsed);
        assertFalse(device.isBroken());
    }

    @Test
    void indirectBufferTakesOneSlot() {
        open(4, false);
        long header = buffer(bytes("hdr"));
        long body = buffer(bytes("body"));
        long reply = buffer(8);
        long table = allocator.allocate(3 * PackedRing.DESCRIPTOR_SIZE, 16);
        int id = driver.addIndirect(table, new long[] {header, body, reply}, new int[] {3, 4, 8}, 2);
        assertEquals(3, driver.freeDescriptors(), "an indirect buffer takes one ring slot (§2.8.7)");
        driver.publish();
        DescriptorChain c = popOne();
        assertEquals(id, c.head());
        assertEquals(3, c.segmentCount());
        assertEquals(2, c.readableCount());
        assertEquals(header, c.address(0));
        assertEquals(body, c.address(1));
        assertEquals(reply, c.address(2));
        assertTrue(c.isWritable(2));
        c.copyToWritable(memory, 0, bytes("ok"), 0, 2);
        device.push(id, 2);
        device.publish();
        assertEquals(id, driver.pollUsedHead());
        assertEquals(2, driver.lastUsedLength());
        assertEquals(4, driver.freeDescriptors());
        assertArrayEquals(bytes("ok"), guest.read(reply, 2));
    }

    @Test
    void chainedReceiveBuffersAreFilledAcrossSegments() {
        open(16, true);
        // a receive buffer as header + data segments, all device-writable, as virtio-net without MRG_RXBUF may post
        int[] ids = new int[4];
        long[][] segments = new long[4][];
        for (int b = 0; b < 4; b++) {
            segments[b] = new long[] {buffer(12), buffer(20), buffer(30)};
            ids[b] = driver.add(segments[b], new int[] {12, 20, 30}, 0);
        }
        driver.publish();
        assertEquals(4, driver.freeDescriptors());
        byte[] frame = new byte[50];
        for (int i = 0; i < frame.length; i++) {
            frame[i] = (byte) (i + 1);
        }
        for (int b = 0; b < 4; b++) {
            DescriptorChain c = popOne();
            assertEquals(3, c.writableCount());
            assertEquals(62, c.writableBytes());
            int n = c.copyToWritable(memory, 0, frame, 0, frame.length - b);
            device.push(c.head(), n);
        }
        device.publish();
        for (int b = 0; b < 4; b++) {
            int head = driver.pollUsedHead();
            assertEquals(ids[b], head);
            int length = driver.lastUsedLength();
            assertEquals(50 - b, length);
            byte[] got = new byte[length];
            int at = 0;
            int[] lens = {12, 20, 30};
            for (int s = 0; s < 3 && at < length; s++) {
                int n = Math.min(lens[s], length - at);
                System.arraycopy(guest.read(segments[b][s], n), 0, got, at, n);
                at += n;
            }
            assertArrayEquals(Arrays.copyOf(frame, length), got, "buffer " + b);
        }
        assertEquals(16, driver.freeDescriptors());
    }

    @Test
    void addRefusesWhenSlotsOrIdsRunOut() {
        open(4, false);
        long buf = buffer(8);
        assertTrue(driver.add(new long[] {buf, buf, buf}, new int[] {8, 8, 8}, 3) >= 0);
        assertEquals(-1, driver.add(new long[] {buf, buf}, new int[] {8, 8}, 2), "two slots wanted, one free");
        int last = driver.add(new long[] {buf}, new int[] {8}, 1);
        assertTrue(last >= 0);
        long table = allocator.allocate(16, 16);
        assertEquals(-1, driver.add(new long[] {buf}, new int[] {8}, 1), "the ring is full");
        assertEquals(-1, driver.addIndirect(table, new long[] {buf}, new int[] {8}, 1), "the ring is full");
        assertThrows(IllegalArgumentException.class, () -> driver.add(new long[0], new int[0], 0));
        assertThrows(IllegalArgumentException.class, () -> driver.add(new long[] {buf}, new int[] {-1}, 1));
        assertThrows(IllegalArgumentException.class, () -> driver.add(new long[] {buf}, new int[] {8}, 2));
    }

    @Test
    void kickFollowsTheDeviceFlagsWithoutEventIdx() {
        open(8, false);
        long buf = buffer(8);
        assertFalse(driver.needsKick(), "nothing published, no kick");
        driver.add(new long[] {buf}, new int[] {8}, 1);
        assertFalse(driver.needsKick(), "added but not published: no kick");
        driver.publish();
        assertTrue(driver.needsKick(), "ENABLE (0) at start: kick");
        assertFalse(driver.needsKick(), "the same buffers are not kicked for twice");

        device.disableNotifications();
        driver.add(new long[] {buf}, new int[] {8}, 1);
        driver.publish();
        assertFalse(driver.needsKick(), "DISABLE: no kick (§2.8.10)");

        device.enableNotifications();
        driver.add(new long[] {buf}, new int[] {8}, 1);
        driver.publish();
        assertTrue(driver.needsKick(), "ENABLE again: kick");
    }

    @Test
    void kickFollowsOffWrapWithEventIdx() {
        open(4, true);
        long buf = buffer(8);
        assertFalse(device.enableNotifications(), "nothing available yet");
        assertEquals(PackedRing.RING_EVENT_FLAGS_DESC, Short.toUnsignedInt(memory.readShort(driver.deviceArea() + PackedRing.EVENT_FLAGS)));
        driver.add(new long[] {buf}, new int[] {8}, 1);
        driver.publish();
        assertTrue(driver.needsKick(), "off_wrap names slot 0, which this publish made available");
        driver.add(new long[] {buf}, new int[] {8}, 1);
        driver.publish();
        assertFalse(driver.needsKick(), "the device has not looked at slot 0 yet: it needs no second kick");

        int first = popOne().head();
        int second = popOne().head();
        assertEquals(PackedRing.position(2, true), Short.toUnsignedInt(memory.readShort(driver.deviceArea())),
                "the device keeps off_wrap at the first slot it has not looked at");
        device.push(first, 0);
        device.push(second, 0);
        device.publish();
        while (driver.pollUsedHead() >= 0) {
            // reaped
        }
        // three more: slots 2 and 3, then slot 0 in the second lap (driver wrap counter 0)
        for (int i = 0; i < 3; i++) {
            driver.add(new long[] {buf}, new int[] {8}, 1);
        }
        driver.publish();
        assertTrue(driver.needsKick(), "the device waits at slot 2, which this publish made available");
        for (int i = 0; i < 3; i++) {
            popOne();
        }
        assertEquals(PackedRing.position(1, false), Short.toUnsignedInt(memory.readShort(driver.deviceArea())),
                "the device's off_wrap went past the ring's end with the wrap counter flipped");
        driver.add(new long[] {buf}, new int[] {8}, 1);
        driver.publish();
        assertTrue(driver.needsKick(), "slot 1 of the second lap is what the device waits for");
    }

    @Test
    void interruptSuppressionWithoutEventIdx() {
        open(8, false);
        long buf = buffer(8);
        driver.setInterruptSuppressed(true);
        driver.add(new long[] {buf}, new int[] {8}, 1);
        driver.publish();
        device.push(popOne().head(), 0);
        device.publish();
        assertFalse(device.needsNotification(), "DISABLE in the driver's structure: no interrupt (§2.8.10)");
        driver.pollUsedHead();

        driver.setInterruptSuppressed(false);
        driver.add(new long[] {buf}, new int[] {8}, 1);
        driver.publish();
        device.push(popOne().head(), 0);
        device.publish();
        assertTrue(device.needsNotification(), "ENABLE: interrupt");
    }

    @Test
    void interruptSuppressionWithEventIdx() {
        open(8, true);
        long buf = buffer(8);
        for (int i = 0; i < 3; i++) {
            driver.add(new long[] {buf}, new int[] {8}, 1);
        }
        driver.publish();
        int[] heads = {popOne().head(), popOne().head(), popOne().head()};

        device.push(heads[0], 0);
        device.publish();
        assertTrue(device.needsNotification(), "off_wrap names the first used slot");
        device.push(heads[1], 0);
        device.publish();
        assertFalse(device.needsNotification(), "the driver has not taken the first one: no second interrupt");
        assertEquals(heads[0], driver.pollUsedHead());
        assertEquals(heads[1], driver.pollUsedHead());
        assertEquals(PackedRing.position(2, true) | PackedRing.RING_EVENT_FLAGS_DESC << 16, memory.readInt(driver.driverArea()),
                "DESC with off_wrap at the next used slot");

        driver.setInterruptSuppressed(true);
        device.push(heads[2], 0);
        device.publish();
        assertFalse(device.needsNotification(), "suppressed: DISABLE");
        assertEquals(heads[2], driver.pollUsedHead());
        assertEquals(PackedRing.RING_EVENT_FLAGS_DISABLE, memory.readInt(driver.driverArea()) >>> 16,
                "taking a buffer while suppressed leaves DISABLE in place");

        driver.setInterruptSuppressed(false);
        driver.add(new long[] {buf}, new int[] {8}, 1);
        driver.publish();
        device.push(popOne().head(), 0);
        device.publish();
        assertTrue(device.needsNotification(), "DESC at slot 3, where this used descriptor went");
    }

    /** Writes a used descriptor at {@code slot} as a broken device would: any id and length, the used bits of lap {@code wrap}. */
    private void forgeUsed(int slot, boolean wrap, int id, int length) {
        long entry = driver.descriptorArea() + (long) PackedRing.DESCRIPTOR_SIZE * slot;
        memory.writeInt(entry + PackedRing.DESCRIPTOR_LEN, length);
        memory.writeShort(entry + PackedRing.DESCRIPTOR_ID, (short) id);
        memory.writeShort(entry + PackedRing.DESCRIPTOR_FLAGS, (short) PackedRing.usedFlags(wrap));
    }

    @ParameterizedTest
    @ValueSource(ints = {8, 9, 0x7FFF, 0xFFFF})
    void usedIdOutsideTheQueueIsRefused(int id) {
        open(8, false);
        driver.add(new long[] {buffer(8)}, new int[] {8}, 0);
        driver.publish();
        forgeUsed(0, true, id, 0);
        IllegalStateException e = assertThrows(IllegalStateException.class, driver::pollUsedHead);
        assertTrue(e.getMessage().contains("buffer id " + id) && e.getMessage().contains("outside the queue of size 8"), e.getMessage());
        assertEquals(7, driver.freeDescriptors(), "a refused descriptor frees nothing");
    }

    @Test
    void usedIdNotInFlightIsRefused() {
        open(8, false);
        int id = driver.add(new long[] {buffer(8)}, new int[] {8}, 0);
        driver.publish();
        forgeUsed(0, true, (id + 1) % 8, 0);
        IllegalStateException e = assertThrows(IllegalStateException.class, driver::pollUsedHead);
        assertTrue(e.getMessage().contains("not in flight"), e.getMessage());

        // the same id twice: the first time it was in flight, the second time not
        open(8, false);
        long buf = buffer(8);
        int a = driver.add(new long[] {buf}, new int[] {8}, 0);
        driver.add(new long[] {buf}, new int[] {8}, 0);
        driver.publish();
        forgeUsed(0, true, a, 0);
        forgeUsed(1, true, a, 0);
        assertEquals(a, driver.pollUsedHead());
        assertThrows(IllegalStateException.class, driver::pollUsedHead, "buffer " + a + " was already returned");
    }

    @Test
    void usedLengthBeyondTheWritableBytesIsRefused() {
        open(8, false);
        int id = driver.add(new long[] {buffer(8), buffer(16)}, new int[] {8, 16}, 1);
        driver.publish();
        forgeUsed(0, true, id, 17);
        IllegalStateException e = assertThrows(IllegalStateException.class, driver::pollUsedHead);
        assertTrue(e.getMessage().contains("wrote 17 bytes") && e.getMessage().contains("16 writable bytes"), e.getMessage());
        forgeUsed(0, true, id, -1);
        assertThrows(IllegalStateException.class, driver::pollUsedHead, "0xFFFFFFFF bytes is beyond too");
        forgeUsed(0, true, id, 16);
        assertEquals(id, driver.pollUsedHead(), "exactly the writable bytes is fine");
    }

    @Test
    void aDescriptorOfTheWrongLapIsNotUsed() {
        open(4, false);
        driver.add(new long[] {buffer(8)}, new int[] {8}, 0);
        driver.publish();
        forgeUsed(0, false, 0, 0);
        assertFalse(driver.hasUsed(), "used bits of lap 0 while the device ring wrap counter is 1: not used (§2.8.1)");
        assertEquals(-1, driver.pollUsedHead());
    }

    @ParameterizedTest
    @CsvSource({"3,0,true", "4,0,true", "0x8000,0,true", "2,0,false", "2,0x0004,true", "2,0x8004,true"})
    void malformedDeviceEventStructureIsRefused(int flags, int offWrap, boolean eventIdx) {
        open(4, eventIdx);
        driver.add(new long[] {buffer(8)}, new int[] {8}, 0);
        driver.publish();
        memory.writeInt(driver.deviceArea(), offWrap | flags << 16);
        IllegalStateException e = assertThrows(IllegalStateException.class, driver::needsKick);
        assertTrue(e.getMessage().contains("device event suppression"), e.getMessage());
    }

    @Test
    void steadyStateDriverDataPathAllocatesNothing() {
        open(64, true);
        long header = buffer(12);
        long payload = buffer(64);
        long[] addrs = {header, payload};
        int[] lens = {12, 64};
        AllocatedBytes counter = new AllocatedBytes();
        long thread = Thread.currentThread().threadId();
        long[] measured = new long[12];
        for (int round = 0; round < measured.length; round++) {
            long before = counter.of(thread);
            for (int i = 0; i < 32; i++) {
                driver.add(addrs, lens, 1);
            }
            driver.publish();
            driver.needsKick();
            long driverBytes = counter.of(thread) - before;
            device.disableNotifications();
            while (device.pop(chain)) {
                device.push(chain.head(), 0);
            }
            device.publish();
            device.enableNotifications();
            before = counter.of(thread);
            while (driver.pollUsedHead() >= 0) {
                driver.lastUsedLength();
            }
            driver.hasUsed();
            measured[round] = driverBytes + counter.of(thread) - before;
        }
        AllocatedBytes.assertNothingInSteadyState(measured, 4, "the driver, per 32 packets,");
    }
}
