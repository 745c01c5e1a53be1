package io.vmm4j.virtio.driver.queue;

import io.vmm4j.virtio.queue.DescriptorChain;
import io.vmm4j.virtio.queue.PackedQueue;
import io.vmm4j.virtio.queue.PackedRing;
import io.vmm4j.virtio.queue.VirtqueueException;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.stream.Stream;

import static io.vmm4j.virtio.driver.queue.CanaryGuestMemory.A;
import static io.vmm4j.virtio.queue.PackedRing.DESC_F_AVAIL;
import static io.vmm4j.virtio.queue.PackedRing.DESC_F_INDIRECT;
import static io.vmm4j.virtio.queue.PackedRing.DESC_F_NEXT;
import static io.vmm4j.virtio.queue.PackedRing.DESC_F_USED;
import static io.vmm4j.virtio.queue.PackedRing.DESC_F_WRITE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every packed-ring rule a guest can break (virtio 1.2 §2.8), each built through
 * {@link PackedDriverRing}'s raw hooks in canary-guarded memory, as {@link MalformedRingTest} does
 * for split. For each: the device throws {@link VirtqueueException} (no other exception) naming the
 * bad value, touches no canary byte, writes nothing, and is broken afterwards.
 */
class PackedMalformedRingTest {
    private static final int SIZE = 8;
    private static final int AVAIL1 = DESC_F_AVAIL;

    /** What a case can use: the ring's hooks, a valid 64-byte buffer, room for indirect tables. */
    record Setup(PackedQueuePair pair, PackedDriverRing driver, long buf, long table, long table2) {
        long b() {
            return pair.guest.b();
        }

        long bEnd() {
            return pair.guest.bEnd();
        }

        /** Pops and returns one well-formed buffer (id 0 at slot 0) so a case starts with it in flight. */
        void oneInFlight() {
            driver.add(new long[] {buf}, new int[] {8}, 1);
            assertTrue(pair.device.pop(new DescriptorChain(4)));
        }
    }

    /**
     * @param holderCapacity segments of the DescriptorChain pop fills; 0 for the queue's maximum
     * @param expected       a part of the message that names the offending value
     */
    record Case(String name, int holderCapacity, Consumer<Setup> build, Function<Setup, String> expected) {
    }

    private static Case of(String name, Consumer<Setup> build, Function<Setup, String> expected) {
        return new Case(name, 0, build, expected);
    }

    private static Case of(String name, Consumer<Setup> build, String expected) {
        return new Case(name, 0, build, s -> expected);
    }

    private static String range(long address, long length) {
        return String.format("[0x%x, +%d)", address, length);
    }

    static List<Case> popCases() {
        List<Case> cases = new ArrayList<>();
        // wrap counters and AVAIL/USED flags (§2.8.1)
        cases.add(of("descriptor marked used in the current lap at the next slot",
                s -> s.driver.writeDescriptor(0, s.buf, 8, 0, DESC_F_AVAIL | DESC_F_USED),
                "descriptor at slot 0: flags 0x8080 mark it used in the current lap (AVAIL and USED both 1)"));
        cases.add(of("second descriptor of a chain not made available", s -> {
            s.driver.writeDescriptor(1, s.buf, 8, 0, 0);
            s.driver.writeDescriptor(0, s.buf, 8, 0, AVAIL1 | DESC_F_NEXT);
        }, "descriptor at slot 1 of the chain starting at slot 0: flags 0x0 do not mark it available for wrap counter 1"));
        cases.add(of("second descriptor of a chain with the other lap's wrap counter", s -> {
            s.driver.writeDescriptor(1, s.buf, 8, 0, DESC_F_USED);
            s.driver.writeDescriptor(0, s.buf, 8, 0, AVAIL1 | DESC_F_NEXT);
        }, "descriptor at slot 1 of the chain starting at slot 0: flags 0x8000 do not mark it available for wrap counter 1"));
        cases.add(of("chain across the ring's end without flipping the wrap counter", s -> {
            s.driver.skipAvail(SIZE - 1);
            s.pair.device.setPosition(PackedRing.position(SIZE - 1, true), PackedRing.position(SIZE - 1, true));
            s.driver.writeDescriptor(0, s.buf, 8, 0, AVAIL1);
            s.driver.writeDescriptor(SIZE - 1, s.buf, 8, 0, AVAIL1 | DESC_F_NEXT);
        }, "descriptor at slot 0 of the chain starting at slot 7: flags 0x80 do not mark it available for wrap counter 0"));
        // buffer ids (§2.8.6, §2.8.16)
        cases.add(of("buffer id equal to the queue size", s -> s.driver.writeDescriptor(0, s.buf, 8, SIZE, AVAIL1),
                "chain at slot 0: buffer id 8 is outside the queue of size 8"));
        cases.add(of("buffer id 0xFFFF in the last descriptor of a chain", s -> {
            s.driver.writeDescriptor(1, s.buf, 8, 0xFFFF, AVAIL1);
            s.driver.writeDescriptor(0, s.buf, 8, 0, AVAIL1 | DESC_F_NEXT);
        }, "chain at slot 0: buffer id 65535 is outside the queue of size 8"));
        cases.add(of("buffer id reused while in flight", s -> {
            s.oneInFlight();
            s.driver.writeDescriptor(1, s.buf, 8, 0, AVAIL1);
        }, "chain at slot 1: buffer id 0 is already in flight and not yet used"));
        cases.add(of("buffer id reused after push, before publish", s -> {
            s.oneInFlight();
            s.pair.device.push(0, 0);
            s.driver.writeDescriptor(1, s.buf, 8, 0, AVAIL1);
        }, "chain at slot 1: buffer id 0 is already in flight"));
        // chains (§2.8.6, §2.8.17)
        cases.add(of("chain longer than the queue", s -> {
            for (int i = 0; i < SIZE; i++) {
                s.driver.writeDescriptor(i, s.buf, 8, 0, AVAIL1 | DESC_F_NEXT);
            }
        }, "descriptor at slot 0 would be descriptor 9 of the chain starting at slot 0, but only 8 of the ring's 8 slots are not in flight"));
        cases.add(of("chain that runs into a descriptor in flight", s -> {
            s.oneInFlight();
            for (int i = 1; i < SIZE; i++) {
                s.driver.writeDescriptor(i, s.buf, 8, 1, AVAIL1 | DESC_F_NEXT);
            }
            s.driver.writeDescriptor(0, s.buf, 8, 1, DESC_F_USED);
        }, "descriptor at slot 0 would be descriptor 8 of the chain starting at slot 1, but only 7 of the ring's 8 slots are not in flight"));
        cases.add(of("descriptor made available over one still in flight", s -> {
            for (int i = 0; i < SIZE; i++) {
                s.driver.add(new long[] {s.buf}, new int[] {8}, 1);
                assertTrue(s.pair.device.pop(new DescriptorChain(1)));
            }
            s.driver.writeDescriptor(0, s.buf, 8, 0, DESC_F_USED);
        }, "descriptor at slot 0 would be descriptor 1 of the chain starting at slot 0, but only 0 of the ring's 8 slots"));
        cases.add(of("readable descriptor after a writable one", s -> {
            s.driver.writeDescriptor(1, s.buf, 8, 0, AVAIL1);
            s.driver.writeDescriptor(0, s.buf, 8, 0, AVAIL1 | DESC_F_WRITE | DESC_F_NEXT);
        }, "descriptor at slot 1: a device-readable descriptor follows a device-writable one"));
        cases.add(new Case("chain longer than the device's DescriptorChain", 2, s -> {
            s.driver.writeDescriptor(2, s.buf, 8, 0, AVAIL1);
            s.driver.writeDescriptor(1, s.buf, 8, 0, AVAIL1 | DESC_F_NEXT);
            s.driver.writeDescriptor(0, s.buf, 8, 0, AVAIL1 | DESC_F_NEXT);
        }, s -> "descriptor at slot 2: the chain starting at slot 0 has more than 2 segments"));
        // addresses and lengths
        cases.add(of("buffer past the end of guest memory", s -> s.driver.writeDescriptor(0, s.bEnd() - 4, 8, 0, AVAIL1),
                s -> "descriptor at slot 0: buffer " + range(s.bEnd() - 4, 8) + " is not inside one guest memory region"));
        cases.add(of("buffer across the boundary of two regions", s -> s.driver.writeDescriptor(0, s.b() - 4, 8, 0, AVAIL1),
                s -> "buffer " + range(s.b() - 4, 8) + " is not inside one guest memory region"));
        cases.add(of("buffer below guest memory", s -> s.driver.writeDescriptor(0, A - 8, 8, 0, AVAIL1 | DESC_F_WRITE),
                "buffer " + range(A - 8, 8)));
        cases.add(of("zero-length buffer outside guest memory", s -> s.driver.writeDescriptor(0, s.bEnd(), 0, 0, AVAIL1),
                s -> "buffer " + range(s.bEnd(), 0) + " is not inside one guest memory region"));
        cases.add(of("buffer whose address plus length wraps 2^64", s -> s.driver.writeDescriptor(0, -4L, 8, 0, AVAIL1),
                "buffer [0xfffffffffffffffc, +8) is not inside one guest memory region"));
        cases.add(of("length of 2^31 bytes or more", s -> s.driver.writeDescriptor(0, s.buf, 0x8000_0000, 0, AVAIL1),
                "length 2147483648 is more than the 2147483647 bytes one segment may have"));
        cases.add(of("length 0xFFFFFFFF in the second descriptor", s -> {
            s.driver.writeDescriptor(1, s.buf, -1, 0, AVAIL1 | DESC_F_WRITE);
            s.driver.writeDescriptor(0, s.buf, 8, 0, AVAIL1 | DESC_F_NEXT);
        }, "descriptor at slot 1: length 4294967295 is more than"));
        // indirect tables (§2.8.7, §2.8.19)
        cases.add(of("INDIRECT together with NEXT", s -> {
            s.driver.writeIndirectEntry(s.table, 0, s.buf, 8, 0, 0);
            s.driver.writeDescriptor(1, s.buf, 8, 0, AVAIL1);
            s.driver.writeDescriptor(0, s.table, 16, 0, AVAIL1 | DESC_F_INDIRECT | DESC_F_NEXT);
        }, "descriptor at slot 0: flags 0x85 set INDIRECT together with NEXT"));
        cases.add(of("INDIRECT in a list linked by NEXT", s -> {
            s.driver.writeIndirectEntry(s.table, 0, s.buf, 8, 0, 0);
            s.driver.writeDescriptor(1, s.table, 16, 0, AVAIL1 | DESC_F_INDIRECT);
            s.driver.writeDescriptor(0, s.buf, 8, 0, AVAIL1 | DESC_F_NEXT);
        }, "descriptor at slot 1 of the chain starting at slot 0: flags 0x84 set INDIRECT in a list linked by NEXT"));
        cases.add(of("indirect table inside an indirect table", s -> {
            s.driver.writeIndirectEntry(s.table2, 0, s.buf, 8, 0, 0);
            s.driver.writeIndirectEntry(s.table, 0, s.buf, 8, 0, 0);
            s.driver.writeIndirectEntry(s.table, 1, s.table2, 16, 0, DESC_F_INDIRECT);
            s.driver.writeDescriptor(0, s.table, 32, 0, AVAIL1 | DESC_F_INDIRECT);
        }, "entry 1 of the indirect table in the descriptor at slot 0: flags 0x4 set INDIRECT inside an indirect table"));
        cases.add(of("indirect table of length 0", s -> s.driver.writeDescriptor(0, s.table, 0, 0, AVAIL1 | DESC_F_INDIRECT),
                "descriptor at slot 0: indirect table length 0 is not a positive multiple of 16"));
        cases.add(of("indirect table length not a multiple of 16", s -> {
            s.driver.writeIndirectEntry(s.table, 0, s.buf, 8, 0, 0);
            s.driver.writeDescriptor(0, s.table, 24, 0, AVAIL1 | DESC_F_INDIRECT);
        }, "indirect table length 24 is not a positive multiple of 16"));
        cases.add(of("indirect table length of 2^32 - 16", s -> s.driver.writeDescriptor(0, s.table, 0xFFFF_FFF0, 0, AVAIL1 | DESC_F_INDIRECT),
                s -> "indirect table " + range(s.table, 0xFFFF_FFF0L) + " is not inside one guest memory region"));
        cases.add(of("indirect table past the end of guest memory", s -> s.driver.writeDescriptor(0, s.bEnd() - 16, 32, 0, AVAIL1 | DESC_F_INDIRECT),
                s -> "indirect table " + range(s.bEnd() - 16, 32) + " is not inside one guest memory region"));
        cases.add(of("indirect table across the boundary of two regions", s -> s.driver.writeDescriptor(0, s.b() - 16, 32, 0, AVAIL1 | DESC_F_INDIRECT),
                s -> "indirect table " + range(s.b() - 16, 32)));
        cases.add(of("buffer in an indirect table outside guest memory", s -> {
            s.driver.writeIndirectEntry(s.table, 0, s.buf, 8, 0, 0);
            s.driver.writeIndirectEntry(s.table, 1, s.bEnd(), 1, 0, DESC_F_WRITE);
            s.driver.writeDescriptor(0, s.table, 32, 0, AVAIL1 | DESC_F_INDIRECT);
        }, s -> "entry 1 of the indirect table in the descriptor at slot 0: buffer " + range(s.bEnd(), 1)));
        cases.add(of("huge length inside an indirect table", s -> {
            s.driver.writeIndirectEntry(s.table, 0, s.buf, 0x9000_0000, 0, 0);
            s.driver.writeDescriptor(0, s.table, 16, 0, AVAIL1 | DESC_F_INDIRECT);
        }, "entry 0 of the indirect table in the descriptor at slot 0: length 2415919104 is more than"));
        cases.add(of("readable entry after a writable one inside an indirect table", s -> {
            s.driver.writeIndirectEntry(s.table, 0, s.buf, 8, 0, DESC_F_WRITE);
            s.driver.writeIndirectEntry(s.table, 1, s.buf, 8, 0, 0);
            s.driver.writeDescriptor(0, s.table, 32, 0, AVAIL1 | DESC_F_INDIRECT);
        }, "entry 1 of the indirect table in the descriptor at slot 0: a device-readable descriptor follows a device-writable one"));
        cases.add(of("indirect table of more than 1024 segments", s -> {
            long big = s.pair.allocator.allocate(1025 * 16, 16);
            for (int i = 0; i < 1025; i++) {
                s.driver.writeIndirectEntry(big, i, s.buf, 1, 0, 0);
            }
            s.driver.writeDescriptor(0, big, 1025 * 16, 0, AVAIL1 | DESC_F_INDIRECT);
        }, "entry 1024 of the indirect table in the descriptor at slot 0: the chain starting at slot 0 has more than 1024 segments"));
        cases.add(of("second buffer bad after a good first one", s -> {
            s.oneInFlight();
            s.pair.device.push(0, 0);
            s.pair.device.publish();
            s.driver.writeDescriptor(1, s.buf, 8, SIZE + 1, AVAIL1);
        }, "chain at slot 1: buffer id 9 is outside the queue of size 8"));
        return cases;
    }

    @TestFactory
    Stream<DynamicTest> popRejectsEveryMalformedBufferAndTouchesNothing() {
        return popCases().stream().flatMap(c -> Stream.of(false, true).map(eventIdx -> {
            String name = c.name() + (eventIdx ? " (EVENT_IDX)" : "");
            return DynamicTest.dynamicTest(name, () -> named(name, () -> runPopCase(c, eventIdx)));
        }));
    }

    private static void named(String name, Runnable test) {
        try {
            test.run();
        } catch (AssertionError e) {
            throw new AssertionError(name + ": " + e.getMessage(), e);
        }
    }

    private static void runPopCase(Case c, boolean eventIdx) {
        try (PackedQueuePair pair = new PackedQueuePair(SIZE, eventIdx, false)) {
            long buf = pair.buffer(64);
            long table = pair.allocator.allocate(4 * 16, 16);
            long table2 = pair.allocator.allocate(4 * 16, 16);
            Setup s = new Setup(pair, pair.driver, buf, table, table2);
            c.build().accept(s);
            PackedQueue device = pair.device;
            int nextAvail = device.nextAvail();
            int nextUsed = device.nextUsed();
            byte[] memoryBefore = pair.guest.snapshot();
            DescriptorChain holder = new DescriptorChain(c.holderCapacity() == 0 ? device.maxChainSegments() : c.holderCapacity());

            VirtqueueException e = assertThrows(VirtqueueException.class, () -> device.pop(holder));

            String expected = c.expected().apply(s);
            assertTrue(e.getMessage().contains(expected), "message \"" + e.getMessage() + "\" should contain \"" + expected + "\"");
            pair.guest.assertCanariesIntact();
            assertArrayEquals(memoryBefore, pair.guest.snapshot(), "guest memory (ring and event areas included) is unchanged");
            assertTrue(device.isBroken());
            assertEquals(nextAvail, device.nextAvail(), "the bad buffer was not consumed");
            assertEquals(nextUsed, device.nextUsed());
            assertEquals(-1, holder.head(), "the holder keeps no half-read chain");
            assertEquals(0, holder.segmentCount());
            assertThrows(IllegalStateException.class, () -> device.pop(holder), "a broken queue refuses to go on");
            assertThrows(IllegalStateException.class, device::publish);
            assertThrows(IllegalStateException.class, device::enableNotifications);
            assertThrows(IllegalStateException.class, device::needsNotification);
        }
    }

    record EventCase(String name, boolean eventIdx, int offWrap, int flags, String expected) {
    }

    static List<EventCase> eventCases() {
        return List.of(
                new EventCase("reserved flags value 3", false, 0, 3, "driver event suppression flags 0x3 are not ENABLE (0), DISABLE (1) or DESC (2)"),
                new EventCase("reserved flags value 3 with EVENT_IDX", true, 0, 3, "flags 0x3 are not ENABLE"),
                new EventCase("reserved flag bits set", true, 0, 0x8001, "driver event suppression flags 0x8001"),
                new EventCase("DESC without EVENT_IDX", false, 1, PackedRing.RING_EVENT_FLAGS_DESC,
                        "driver event suppression flags 0x2 (DESC) without VIRTIO_F_EVENT_IDX negotiated"),
                new EventCase("DESC naming an offset outside the ring", true, PackedRing.position(SIZE, true), PackedRing.RING_EVENT_FLAGS_DESC,
                        "driver event suppression off_wrap 0x8008 names offset 8, outside the ring of size 8"),
                new EventCase("DESC naming offset 0x7FFF", true, 0x7FFF, PackedRing.RING_EVENT_FLAGS_DESC, "names offset 32767"));
    }

    @TestFactory
    Stream<DynamicTest> needsNotificationRejectsEveryMalformedDriverEventStructure() {
        return eventCases().stream().map(c -> DynamicTest.dynamicTest(c.name(), () -> named(c.name(), () -> {
            try (PackedQueuePair pair = new PackedQueuePair(SIZE, c.eventIdx(), false)) {
                long buf = pair.buffer(8);
                int id = pair.driver.add(new long[] {buf}, new int[] {8}, 1);
                pair.popOne();
                pair.device.push(id, 0);
                pair.device.publish();
                pair.driver.driverEvent(c.offWrap(), c.flags());
                byte[] before = pair.guest.snapshot();

                VirtqueueException e = assertThrows(VirtqueueException.class, pair.device::needsNotification);

                assertTrue(e.getMessage().contains(c.expected()), "message \"" + e.getMessage() + "\" should contain \"" + c.expected() + "\"");
                assertTrue(pair.device.isBroken());
                pair.guest.assertCanariesIntact();
                assertArrayEquals(before, pair.guest.snapshot(), "guest memory is unchanged");
                assertThrows(IllegalStateException.class, () -> pair.device.pop(pair.chain));
            }
        })));
    }

    @Test
    void chainOfMoreThan2To32BytesIsRejected() {
        // the memfd is sparse, so a 2 GiB region costs only the pages touched
        long twoGiB = 1L << 31;
        try (PackedQueuePair pair = new PackedQueuePair(new CanaryGuestMemory(twoGiB, CanaryGuestMemory.PAGE), 4, false, false)) {
            int max = Integer.MAX_VALUE;
            long ring = pair.driver.descRing;
            assertTrue(ring >= A);
            int id = pair.driver.add(new long[] {A, A, A}, new int[] {max, max, 2}, 3);
            assertTrue(pair.device.pop(pair.chain), "exactly 2^32 bytes is allowed");
            assertEquals(1L << 32, pair.chain.readableBytes());
            pair.device.push(id, 0);
            pair.device.publish();
            assertEquals(id, pair.driver.pollUsed().id());

            pair.driver.add(new long[] {A, A, A}, new int[] {max, max, 3}, 3);
            byte[] ringBefore = pair.read(ring, 64);
            VirtqueueException e = assertThrows(VirtqueueException.class, () -> pair.device.pop(pair.chain));
            assertTrue(e.getMessage().contains("descriptor at slot 1: the chain starting at slot 3 grows to 4294967297 bytes"),
                    e.getMessage());
            pair.guest.assertCanariesIntact();
            assertArrayEquals(ringBefore, pair.read(ring, 64));
        }
    }
}
