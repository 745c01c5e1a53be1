package io.vmm4j.virtio.driver.queue;

import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.virtio.driver.DriverQueue;
import io.vmm4j.virtio.queue.DescriptorChain;
import io.vmm4j.virtio.queue.SplitQueue;
import io.vmm4j.virtio.queue.SplitRing;
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
import static io.vmm4j.virtio.queue.SplitRing.DESC_F_INDIRECT;
import static io.vmm4j.virtio.queue.SplitRing.DESC_F_NEXT;
import static io.vmm4j.virtio.queue.SplitRing.DESC_F_WRITE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every ring rule a guest can break, each built through DriverQueue's raw hooks in canary-guarded
 * memory. For each: the device throws {@link VirtqueueException} naming the bad value, touches no
 * canary byte, writes nothing (used ring included), and is broken afterwards.
 */
class MalformedRingTest {
    private static final int SIZE = 16;

    /** What a case can use: the driver's hooks, a valid 64-byte buffer, room for an indirect table. */
    record Setup(QueuePair pair, DriverQueue driver, long buf, long table, long table2) {
        long b() {
            return pair.guest.b();
        }

        long bEnd() {
            return pair.guest.bEnd();
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
        cases.add(of("avail idx more than the queue size ahead", s -> {
            s.driver.writeDescriptor(0, s.buf, 8, 0, 0);
            for (int i = 0; i <= SIZE; i++) {
                s.driver.pushAvail(0);
            }
        }, "avail idx 17 is 17 entries ahead of the next avail index 0, more than the queue size 16"));
        cases.add(of("avail idx moved backwards", s -> {
            s.driver.writeDescriptor(0, s.buf, 8, 0, 0);
            s.driver.pushAvail(0);
            s.driver.pushAvail(0);
            s.pair.device.setPosition(5, 5);
        }, "avail idx 2 is 65533 entries ahead of the next avail index 5"));
        cases.add(of("head index equal to the queue size", s -> s.driver.pushAvail(SIZE),
                "avail ring entry 0: head index 16 is outside the queue of size 16"));
        cases.add(of("head index 0xFFFF", s -> s.driver.pushAvail(0xFFFF),
                "head index 65535 is outside the queue of size 16"));
        cases.add(of("next index outside the queue", s -> {
            s.driver.writeDescriptor(3, s.buf, 8, DESC_F_NEXT, SIZE);
            s.driver.pushAvail(3);
        }, "descriptor 3 of chain 3: next index 16 is outside the queue of size 16"));
        cases.add(of("chain of two descriptors looping", s -> {
            s.driver.writeDescriptor(3, s.buf, 8, DESC_F_NEXT, 4);
            s.driver.writeDescriptor(4, s.buf, 8, DESC_F_NEXT, 3);
            s.driver.pushAvail(3);
        }, "continues the chain past 16 descriptors, longer than the queue of size 16"));
        cases.add(of("descriptor chained to itself", s -> {
            s.driver.writeDescriptor(2, s.buf, 8, DESC_F_NEXT, 2);
            s.driver.pushAvail(2);
        }, "descriptor 2 of chain 2: next index 2 continues the chain past 16 descriptors"));
        cases.add(of("buffer past the end of guest memory", s -> {
            s.driver.writeDescriptor(0, s.bEnd() - 4, 8, 0, 0);
            s.driver.pushAvail(0);
        }, s -> "descriptor 0 of chain 0: buffer " + range(s.bEnd() - 4, 8) + " is not inside one guest memory region"));
        cases.add(of("buffer across the boundary of two regions", s -> {
            s.driver.writeDescriptor(0, s.b() - 4, 8, 0, 0);
            s.driver.pushAvail(0);
        }, s -> "buffer " + range(s.b() - 4, 8) + " is not inside one guest memory region"));
        cases.add(of("buffer below guest memory", s -> {
            s.driver.writeDescriptor(0, A - 8, 8, DESC_F_WRITE, 0);
            s.driver.pushAvail(0);
        }, "buffer " + range(A - 8, 8)));
        cases.add(of("buffer whose address plus length wraps 2^64", s -> {
            s.driver.writeDescriptor(0, -4L, 8, 0, 0);
            s.driver.pushAvail(0);
        }, "buffer [0xfffffffffffffffc, +8) is not inside one guest memory region"));
        cases.add(of("buffer in the second descriptor outside memory", s -> {
            s.driver.writeDescriptor(0, s.buf, 8, DESC_F_NEXT, 1);
            s.driver.writeDescriptor(1, 0x10, 8, DESC_F_WRITE, 0);
            s.driver.pushAvail(0);
        }, "descriptor 1 of chain 0: buffer [0x10, +8)"));
        cases.add(of("length of 2^31 bytes or more", s -> {
            s.driver.writeDescriptor(0, s.buf, 0x8000_0000, 0, 0);
            s.driver.pushAvail(0);
        }, "length 2147483648 is more than the 2147483647 bytes one segment may have"));
        cases.add(of("readable descriptor after a writable one", s -> {
            s.driver.writeDescriptor(0, s.buf, 8, DESC_F_WRITE | DESC_F_NEXT, 1);
            s.driver.writeDescriptor(1, s.buf, 8, 0, 0);
            s.driver.pushAvail(0);
        }, "descriptor 1 of chain 0: a device-readable descriptor follows a device-writable one"));
        cases.add(of("INDIRECT together with NEXT", s -> {
            s.driver.writeIndirectDescriptor(s.table, 0, s.buf, 8, 0, 0);
            s.driver.writeDescriptor(0, s.table, 16, DESC_F_INDIRECT | DESC_F_NEXT, 1);
            s.driver.writeDescriptor(1, s.buf, 8, 0, 0);
            s.driver.pushAvail(0);
        }, "descriptor 0 of chain 0: flags 0x5 set INDIRECT together with NEXT"));
        cases.add(of("indirect table of length 0", s -> {
            s.driver.writeDescriptor(0, s.table, 0, DESC_F_INDIRECT, 0);
            s.driver.pushAvail(0);
        }, "indirect table length 0 is not a positive multiple of 16"));
        cases.add(of("indirect table length not a multiple of 16", s -> {
            s.driver.writeIndirectDescriptor(s.table, 0, s.buf, 8, 0, 0);
            s.driver.writeDescriptor(0, s.table, 24, DESC_F_INDIRECT, 0);
            s.driver.pushAvail(0);
        }, "indirect table length 24 is not a positive multiple of 16"));
        cases.add(of("indirect table length of 2^32 - 16", s -> {
            s.driver.writeDescriptor(0, s.table, 0xFFFF_FFF0, DESC_F_INDIRECT, 0);
            s.driver.pushAvail(0);
        }, s -> "indirect table " + range(s.table, 0xFFFF_FFF0L) + " is not inside one guest memory region"));
        cases.add(of("indirect table past the end of guest memory", s -> {
            s.driver.writeDescriptor(0, s.bEnd() - 16, 32, DESC_F_INDIRECT, 0);
            s.driver.pushAvail(0);
        }, s -> "indirect table " + range(s.bEnd() - 16, 32) + " is not inside one guest memory region"));
        cases.add(of("indirect table across the boundary of two regions", s -> {
            s.driver.writeDescriptor(0, s.b() - 16, 32, DESC_F_INDIRECT, 0);
            s.driver.pushAvail(0);
        }, s -> "indirect table " + range(s.b() - 16, 32)));
        cases.add(of("indirect table inside an indirect table", s -> {
            s.driver.writeIndirectDescriptor(s.table2, 0, s.buf, 8, 0, 0);
            s.driver.writeIndirectDescriptor(s.table, 0, s.buf, 8, DESC_F_NEXT, 1);
            s.driver.writeIndirectDescriptor(s.table, 1, s.table2, 16, DESC_F_INDIRECT, 0);
            s.driver.writeDescriptor(0, s.table, 32, DESC_F_INDIRECT, 0);
            s.driver.pushAvail(0);
        }, "entry 1 of the indirect table in descriptor 0 of chain 0: flags 0x4 set INDIRECT inside an indirect table"));
        cases.add(of("indirect next index outside the table", s -> {
            s.driver.writeIndirectDescriptor(s.table, 0, s.buf, 8, DESC_F_NEXT, 2);
            s.driver.writeIndirectDescriptor(s.table, 1, s.buf, 8, 0, 0);
            s.driver.writeDescriptor(0, s.table, 32, DESC_F_INDIRECT, 0);
            s.driver.pushAvail(0);
        }, "entry 0 of the indirect table in descriptor 0 of chain 0: next index 2 is outside the table of 2 entries"));
        cases.add(of("loop inside an indirect table", s -> {
            s.driver.writeIndirectDescriptor(s.table, 0, s.buf, 8, DESC_F_NEXT, 1);
            s.driver.writeIndirectDescriptor(s.table, 1, s.buf, 8, DESC_F_NEXT, 2);
            s.driver.writeIndirectDescriptor(s.table, 2, s.buf, 8, DESC_F_NEXT, 1);
            s.driver.writeDescriptor(0, s.table, 48, DESC_F_INDIRECT, 0);
            s.driver.pushAvail(0);
        }, "entry 2 of the indirect table in descriptor 0 of chain 0: next index 1 continues past all 3 entries of the table: a loop"));
        cases.add(of("buffer in an indirect table outside guest memory", s -> {
            s.driver.writeIndirectDescriptor(s.table, 0, s.bEnd(), 1, 0, 0);
            s.driver.writeDescriptor(0, s.table, 16, DESC_F_INDIRECT, 0);
            s.driver.pushAvail(0);
        }, s -> "entry 0 of the indirect table in descriptor 0 of chain 0: buffer " + range(s.bEnd(), 1)));
        cases.add(of("readable entry after a writable one inside an indirect table", s -> {
            s.driver.writeIndirectDescriptor(s.table, 0, s.buf, 8, DESC_F_WRITE | DESC_F_NEXT, 1);
            s.driver.writeIndirectDescriptor(s.table, 1, s.buf, 8, 0, 0);
            s.driver.writeDescriptor(0, s.table, 32, DESC_F_INDIRECT, 0);
            s.driver.pushAvail(0);
        }, "entry 1 of the indirect table in descriptor 0 of chain 0: a device-readable descriptor follows a device-writable one"));
        cases.add(of("readable table entry after a writable direct descriptor", s -> {
            s.driver.writeIndirectDescriptor(s.table, 0, s.buf, 8, 0, 0);
            s.driver.writeDescriptor(0, s.buf, 8, DESC_F_WRITE | DESC_F_NEXT, 1);
            s.driver.writeDescriptor(1, s.table, 16, DESC_F_INDIRECT | DESC_F_WRITE, 0);
            s.driver.pushAvail(0);
        }, "entry 0 of the indirect table in descriptor 1 of chain 0: a device-readable descriptor follows a device-writable one"));
        cases.add(of("indirect table of more than 1024 segments", s -> {
            long big = s.pair.allocator.allocate(1025 * 16, 16);
            for (int i = 0; i < 1025; i++) {
                s.driver.writeIndirectDescriptor(big, i, s.buf, 1, i < 1024 ? DESC_F_NEXT : 0, i + 1);
            }
            s.driver.writeDescriptor(0, big, 1025 * 16, DESC_F_INDIRECT, 0);
            s.driver.pushAvail(0);
        }, "entry 1024 of the indirect table in descriptor 0 of chain 0: chain 0 has more than 1024 segments, the most this queue accepts"));
        cases.add(new Case("chain longer than the device's DescriptorChain", 2, s -> {
            s.driver.writeDescriptor(0, s.buf, 8, DESC_F_NEXT, 1);
            s.driver.writeDescriptor(1, s.buf, 8, DESC_F_NEXT, 2);
            s.driver.writeDescriptor(2, s.buf, 8, 0, 0);
            s.driver.pushAvail(0);
        }, s -> "descriptor 2 of chain 0: chain 0 has more than 2 segments"));
        cases.add(of("second chain bad after a good first one", s -> {
            s.driver.writeDescriptor(0, s.buf, 8, 0, 0);
            s.driver.writeDescriptor(1, s.buf, 8, DESC_F_NEXT, 99);
            s.driver.pushAvail(0);
            s.driver.pushAvail(1);
            s.driver.publish();
            DescriptorChain first = new DescriptorChain(4);
            assertTrue(s.pair.device.pop(first));
            s.pair.device.push(first.head(), 0);
            s.pair.device.publish();
        }, "descriptor 1 of chain 1: next index 99 is outside the queue of size 16"));
        return cases;
    }

    @TestFactory
    Stream<DynamicTest> popRejectsEveryMalformedChainAndTouchesNothing() {
        return popCases().stream().flatMap(c -> Stream.of(false, true).map(eventIdx -> {
            String name = c.name() + (eventIdx ? " (EVENT_IDX)" : "");
            return DynamicTest.dynamicTest(name, () -> named(name, () -> runPopCase(c, eventIdx)));
        }));
    }

    /** Surefire reports dynamic tests by index; this puts the case's name into its failure. */
    private static void named(String name, Runnable test) {
        try {
            test.run();
        } catch (AssertionError e) {
            throw new AssertionError(name + ": " + e.getMessage(), e);
        }
    }

    private static void runPopCase(Case c, boolean eventIdx) {
        try (QueuePair pair = new QueuePair(SIZE, eventIdx)) {
            long buf = pair.buffer(64);
            long table = pair.allocator.allocate(4 * 16, 16);
            long table2 = pair.allocator.allocate(4 * 16, 16);
            Setup s = new Setup(pair, pair.driver, buf, table, table2);
            c.build().accept(s);
            pair.driver.publish();
            SplitQueue device = pair.device;
            int nextAvail = device.nextAvail();
            int nextUsed = device.nextUsed();
            long usedBytes = SplitRing.usedRingBytes(SIZE);
            byte[] usedRingBefore = pair.read(pair.driver.usedRing(), (int) usedBytes);
            byte[] memoryBefore = pair.guest.snapshot();
            DescriptorChain holder = new DescriptorChain(c.holderCapacity() == 0 ? device.maxChainSegments() : c.holderCapacity());

            VirtqueueException e = assertThrows(VirtqueueException.class, () -> device.pop(holder));

            String expected = c.expected().apply(s);
            assertTrue(e.getMessage().contains(expected), "message \"" + e.getMessage() + "\" should contain \"" + expected + "\"");
            pair.guest.assertCanariesIntact();
            assertArrayEquals(usedRingBefore, pair.read(pair.driver.usedRing(), (int) usedBytes), "the used ring is unchanged");
            assertArrayEquals(memoryBefore, pair.guest.snapshot(), "guest memory is unchanged");
            assertTrue(device.isBroken());
            assertEquals(nextAvail, device.nextAvail(), "the bad chain was not consumed");
            assertEquals(nextUsed, device.nextUsed());
            assertEquals(-1, holder.head(), "the holder keeps no half-read chain");
            assertEquals(0, holder.segmentCount());
            assertThrows(IllegalStateException.class, () -> device.pop(holder), "a broken queue refuses to go on");
            assertThrows(IllegalStateException.class, device::publish);
            assertThrows(IllegalStateException.class, device::enableNotifications);
        }
    }

    record LayoutCase(String name, int size, Function<Layout, long[]> addresses, Function<Layout, String> expected) {
    }

    /** Valid, allocated areas for a queue of 16, and the memory's edges. */
    record Layout(long desc, long avail, long used, long b, long bEnd) {
    }

    static List<LayoutCase> layoutCases() {
        List<LayoutCase> cases = new ArrayList<>();
        cases.add(new LayoutCase("queue size 0", 0, l -> new long[] {l.desc, l.avail, l.used}, l -> "queue size 0 is not a power of two in 1..32768"));
        cases.add(new LayoutCase("queue size 3", 3, l -> new long[] {l.desc, l.avail, l.used}, l -> "queue size 3 is not a power of two"));
        cases.add(new LayoutCase("queue size 65536", 65536, l -> new long[] {l.desc, l.avail, l.used}, l -> "queue size 65536 is not a power of two"));
        cases.add(new LayoutCase("negative queue size", -16, l -> new long[] {l.desc, l.avail, l.used}, l -> "queue size -16"));
        cases.add(new LayoutCase("descriptor table 8-byte aligned", 16, l -> new long[] {l.desc + 8, l.avail, l.used},
                l -> String.format("descriptor table address 0x%x is not 16-byte aligned", l.desc + 8)));
        cases.add(new LayoutCase("available ring at an odd address", 16, l -> new long[] {l.desc, l.avail + 1, l.used},
                l -> String.format("available ring address 0x%x is not 2-byte aligned", l.avail + 1)));
        cases.add(new LayoutCase("used ring 2-byte aligned", 16, l -> new long[] {l.desc, l.avail, l.used + 2},
                l -> String.format("used ring address 0x%x is not 4-byte aligned", l.used + 2)));
        cases.add(new LayoutCase("descriptor table past the end of memory", 16, l -> new long[] {l.bEnd - 240, l.avail, l.used},
                l -> "descriptor table " + range(l.bEnd - 240, 256) + " for queue size 16 is not inside one guest memory region"));
        cases.add(new LayoutCase("descriptor table across two regions", 16, l -> new long[] {l.b - 128, l.avail, l.used},
                l -> "descriptor table " + range(l.b - 128, 256)));
        cases.add(new LayoutCase("descriptor table wrapping 2^64", 16, l -> new long[] {-128L, l.avail, l.used},
                l -> "descriptor table [0xffffffffffffff80, +256)"));
        cases.add(new LayoutCase("available ring whose used_event crosses into the next region", 16,
                l -> new long[] {l.desc, l.b - 36, l.used}, l -> "available ring " + range(l.b - 36, 38)));
        cases.add(new LayoutCase("used ring whose avail_event crosses into the next region", 16,
                l -> new long[] {l.desc, l.avail, l.b - 132}, l -> "used ring " + range(l.b - 132, 134)));
        cases.add(new LayoutCase("used ring below guest memory", 16, l -> new long[] {l.desc, l.avail, A - 8},
                l -> "used ring " + range(A - 8, 134)));
        cases.add(new LayoutCase("queue of 32768 larger than guest memory", 32768, l -> new long[] {l.desc, l.avail, l.used},
                l -> "is not inside one guest memory region"));
        return cases;
    }

    @TestFactory
    Stream<DynamicTest> layoutRulesRejectEveryBadQueueAddress() {
        return layoutCases().stream().map(c -> DynamicTest.dynamicTest(c.name(), () -> named(c.name(), () -> {
            try (CanaryGuestMemory guest = new CanaryGuestMemory()) {
                GuestAllocator allocator = guest.allocatorOverA();
                Layout l = new Layout(allocator.allocate(256, 16), allocator.allocate(38, 2), allocator.allocate(134, 4), guest.b(), guest.bEnd());
                long[] a = c.addresses().apply(l);
                byte[] before = guest.snapshot();
                String expected = c.expected().apply(l);

                VirtqueueException viaConstructor = assertThrows(VirtqueueException.class,
                        () -> new SplitQueue(guest.memory(), c.size(), a[0], a[1], a[2], true));
                VirtqueueException viaCheck = assertThrows(VirtqueueException.class,
                        () -> SplitQueue.validateLayout(guest.memory(), c.size(), a[0], a[1], a[2]));

                assertTrue(viaConstructor.getMessage().contains(expected),
                        "message \"" + viaConstructor.getMessage() + "\" should contain \"" + expected + "\"");
                assertEquals(viaConstructor.getMessage(), viaCheck.getMessage());
                guest.assertCanariesIntact();
                assertArrayEquals(before, guest.snapshot(), "guest memory is unchanged");
            }
        })));
    }

    @Test
    void validLayoutAtTheVeryEdgesOfARegionIsAccepted() {
        try (CanaryGuestMemory guest = new CanaryGuestMemory()) {
            // areas that start at a region's first byte or end at its last one (the used ring, 2 mod 4
            // bytes long, can come no closer than 2 bytes to a page-aligned end)
            SplitQueue.validateLayout(guest.memory(), 16, A, guest.bEnd() - 38, guest.b() - 136);
            SplitQueue queue = new SplitQueue(guest.memory(), 1, guest.b() - 16, guest.b() - 8 - 16, guest.bEnd() - 16, false);
            assertFalse(queue.hasAvailable());
        }
    }

    @Test
    void chainOfMoreThan2To32BytesIsRejected() {
        // virtio 1.2 §2.7.5.2; the memfd is sparse, so a 2 GiB region costs only the pages touched
        long twoGiB = 1L << 31;
        try (QueuePair pair = new QueuePair(new CanaryGuestMemory(twoGiB, CanaryGuestMemory.PAGE), 4, false)) {
            int max = Integer.MAX_VALUE;
            pair.driver.writeDescriptor(0, A, max, DESC_F_NEXT, 1);
            pair.driver.writeDescriptor(1, A, max, DESC_F_NEXT, 2);
            pair.driver.writeDescriptor(2, A, 2, 0, 0);
            pair.driver.pushAvail(0);
            pair.driver.publish();
            assertTrue(pair.device.pop(pair.chain), "exactly 2^32 bytes is allowed");
            assertEquals(1L << 32, pair.chain.readableBytes());
            pair.device.push(0, 0);
            pair.device.publish();

            pair.driver.writeDescriptor(2, A, 3, 0, 0);
            pair.driver.pushAvail(0);
            pair.driver.publish();
            byte[] usedBefore = pair.read(pair.driver.usedRing(), (int) SplitRing.usedRingBytes(4));
            VirtqueueException e = assertThrows(VirtqueueException.class, () -> pair.device.pop(pair.chain));
            assertTrue(e.getMessage().contains("descriptor 2 of chain 0: chain 0 grows to 4294967297 bytes, longer than the 2^32 bytes"),
                    e.getMessage());
            pair.guest.assertCanariesIntact();
            assertArrayEquals(usedBefore, pair.read(pair.driver.usedRing(), (int) SplitRing.usedRingBytes(4)));
        }
    }
}
