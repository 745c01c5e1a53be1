package io.vmm4j.virtio.driver.queue;

import io.vmm4j.core.testing.AllocatedBytes;
import io.vmm4j.virtio.driver.DriverVirtqueue.Used;
import io.vmm4j.virtio.driver.DriverQueue;
import io.vmm4j.virtio.queue.DescriptorChain;
import io.vmm4j.virtio.queue.SplitQueue;
import io.vmm4j.virtio.queue.SplitRing;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Chains go driver → device → driver intact, in every shape the spec allows. */
class SplitQueueRoundTripTest {
    private QueuePair q;

    @AfterEach
    void tearDown() {
        if (q != null) {
            q.guest.assertCanariesIntact();
            q.close();
        }
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    @Test
    void simpleReadableChainRoundTrips() {
        q = new QueuePair(8, false);
        long buf = q.buffer(bytes("hello"));
        int head = q.driver.add(new long[] {buf}, new int[] {5}, 1);
        q.driver.publish();

        assertTrue(q.device.hasAvailable());
        DescriptorChain c = q.popOne();
        assertEquals(head, c.head());
        assertEquals(1, c.segmentCount());
        assertEquals(1, c.readableCount());
        assertEquals(buf, c.address(0));
        assertEquals(5, c.length(0));
        assertFalse(c.isWritable(0));
        assertEquals(5, c.readableBytes());
        assertEquals(0, c.writableBytes());
        byte[] got = new byte[5];
        assertEquals(5, c.copyFromReadable(q.memory, 0, got, 0, 5));
        assertArrayEquals(bytes("hello"), got);
        assertFalse(q.device.pop(q.chain), "one chain was offered, one taken");

        assertNull(q.driver.pollUsed(), "nothing used before the device publishes");
        q.device.push(c.head(), 0);
        assertNull(q.driver.pollUsed(), "a pushed element is invisible until publish");
        q.device.publish();
        assertEquals(new Used(head, 0), q.driver.pollUsed());
        assertNull(q.driver.pollUsed());
        assertEquals(8, q.driver.freeDescriptors(), "the chain's descriptor is free again");
        assertEquals(1, q.device.nextAvail());
        assertEquals(1, q.device.nextUsed());
    }

    @Test
    void headerSeparateFromPayloadIsGatheredAcrossDescriptors() {
        q = new QueuePair(8, false);
        byte[] header = bytes("HEADER-12byt");
        long h = q.buffer(header);
        long p1 = q.buffer(bytes("payload-one|"));
        long p2 = q.buffer(bytes("payload-two"));
        int head = q.driver.add(new long[] {h, p1, p2}, new int[] {12, 12, 11}, 3);
        q.driver.publish();

        DescriptorChain c = q.popOne();
        assertEquals(head, c.head());
        assertEquals(3, c.segmentCount());
        assertEquals(35, c.readableBytes());
        assertEquals(h, c.address(0));
        assertEquals(p1, c.address(1));
        assertEquals(p2, c.address(2));
        byte[] all = new byte[35];
        assertEquals(35, c.copyFromReadable(q.memory, 0, all, 0, 35));
        assertEquals("HEADER-12bytpayload-one|payload-two", new String(all, StandardCharsets.US_ASCII));
        byte[] payload = new byte[23];
        assertEquals(23, c.copyFromReadable(q.memory, 12, payload, 0, 23), "skipping the header");
        assertEquals("payload-one|payload-two", new String(payload, StandardCharsets.US_ASCII));
    }

    @Test
    void mixedReadableAndWritableChainCarriesRequestAndResponse() {
        q = new QueuePair(16, false);
        long req1 = q.buffer(bytes("GET "));
        long req2 = q.buffer(bytes("/index"));
        long resp1 = q.buffer(4);
        long resp2 = q.buffer(8);
        int head = q.driver.add(new long[] {req1, req2, resp1, resp2}, new int[] {4, 6, 4, 8}, 2);
        q.driver.publish();

        DescriptorChain c = q.popOne();
        assertEquals(4, c.segmentCount());
        assertEquals(2, c.readableCount());
        assertEquals(2, c.writableCount());
        assertFalse(c.isWritable(1));
        assertTrue(c.isWritable(2));
        assertEquals(10, c.readableBytes());
        assertEquals(12, c.writableBytes());
        byte[] request = new byte[10];
        assertEquals(10, c.copyFromReadable(q.memory, 0, request, 0, 10));
        assertEquals("GET /index", new String(request, StandardCharsets.US_ASCII));
        byte[] response = bytes("200 OK here!");
        assertEquals(12, c.copyToWritable(q.memory, 0, response, 0, 12));
        q.device.push(c.head(), 12);
        q.device.publish();

        assertEquals(new Used(head, 12), q.driver.pollUsed());
        assertEquals("200 ", new String(q.read(resp1, 4), StandardCharsets.US_ASCII));
        assertEquals("OK here!", new String(q.read(resp2, 8), StandardCharsets.US_ASCII));
        assertEquals("GET ", new String(q.read(req1, 4), StandardCharsets.US_ASCII), "readable buffers are never written");
    }

    @Test
    void indirectChainUsesOneRingDescriptor() {
        q = new QueuePair(8, false);
        long table = q.allocator.allocate(4 * 16, 16);
        long r1 = q.buffer(bytes("ab"));
        long r2 = q.buffer(bytes("cde"));
        long w1 = q.buffer(3);
        long w2 = q.buffer(5);
        int head = q.driver.addIndirect(table, new long[] {r1, r2, w1, w2}, new int[] {2, 3, 3, 5}, 2);
        q.driver.publish();
        assertEquals(7, q.driver.freeDescriptors(), "an indirect chain takes one ring descriptor");

        DescriptorChain c = q.popOne();
        assertEquals(head, c.head());
        assertEquals(4, c.segmentCount());
        assertEquals(2, c.readableCount());
        assertEquals(r2, c.address(1));
        assertEquals(w1, c.address(2));
        byte[] in = new byte[5];
        assertEquals(5, c.copyFromReadable(q.memory, 0, in, 0, 5));
        assertEquals("abcde", new String(in, StandardCharsets.US_ASCII));
        assertEquals(8, c.copyToWritable(q.memory, 0, bytes("12345678"), 0, 8));
        q.device.push(head, 8);
        q.device.publish();

        assertEquals(new Used(head, 8), q.driver.pollUsed());
        assertEquals("123", new String(q.read(w1, 3), StandardCharsets.US_ASCII));
        assertEquals("45678", new String(q.read(w2, 5), StandardCharsets.US_ASCII));
        assertEquals(8, q.driver.freeDescriptors());
    }

    @Test
    void directDescriptorsFollowedByAnIndirectTableFormOneChain() {
        // virtio 1.2 §2.7.5.3.2: the device MUST handle normal descriptors followed by one indirect one
        q = new QueuePair(8, false);
        long header = q.buffer(bytes("hdr"));
        long body = q.buffer(bytes("body"));
        long status = q.buffer(1);
        long table = q.allocator.allocate(32, 16);
        q.driver.writeIndirectDescriptor(table, 0, body, 4, SplitRing.DESC_F_NEXT, 1);
        q.driver.writeIndirectDescriptor(table, 1, status, 1, SplitRing.DESC_F_WRITE, 0);
        q.driver.writeDescriptor(5, header, 3, SplitRing.DESC_F_NEXT, 2);
        q.driver.writeDescriptor(2, table, 32, SplitRing.DESC_F_INDIRECT, 0);
        q.driver.pushAvail(5);
        q.driver.publish();

        DescriptorChain c = q.popOne();
        assertEquals(5, c.head());
        assertEquals(3, c.segmentCount());
        assertEquals(header, c.address(0));
        assertEquals(body, c.address(1));
        assertEquals(status, c.address(2));
        assertEquals(2, c.readableCount());
        assertEquals(7, c.readableBytes());
        assertEquals(1, c.writableBytes());
    }

    @Test
    void writeFlagOnTheDescriptorNamingAnIndirectTableIsIgnored() {
        // virtio 1.2 §2.7.5.3.2: the device MUST ignore the write-only flag of a table descriptor
        q = new QueuePair(8, true);
        long request = q.buffer(bytes("req"));
        long reply = q.buffer(2);
        long table = q.allocator.allocate(32, 16);
        q.driver.writeIndirectDescriptor(table, 0, request, 3, SplitRing.DESC_F_NEXT, 1);
        q.driver.writeIndirectDescriptor(table, 1, reply, 2, SplitRing.DESC_F_WRITE, 0);
        q.driver.writeDescriptor(0, table, 32, SplitRing.DESC_F_INDIRECT | SplitRing.DESC_F_WRITE, 0);
        q.driver.pushAvail(0);
        q.driver.publish();

        DescriptorChain c = q.popOne();
        assertEquals(2, c.segmentCount());
        assertEquals(1, c.readableCount(), "the table's own readable entry stays readable");
        assertFalse(c.isWritable(0));
        assertTrue(c.isWritable(1));
        q.device.push(c.head(), 2);
        q.device.publish();
        assertEquals(new Used(0, 2), q.driver.pollUsed());
        assertFalse(q.device.isBroken());
    }

    @Test
    void zeroLengthDescriptorIsAllowed() {
        q = new QueuePair(8, false);
        long a = q.buffer(bytes("xy"));
        long empty = q.buffer(0);
        long b = q.buffer(bytes("z"));
        q.driver.add(new long[] {a, empty, b}, new int[] {2, 0, 1}, 3);
        q.driver.publish();

        DescriptorChain c = q.popOne();
        assertEquals(3, c.segmentCount());
        assertEquals(0, c.length(1));
        byte[] got = new byte[3];
        assertEquals(3, c.copyFromReadable(q.memory, 0, got, 0, 3));
        assertEquals("xyz", new String(got, StandardCharsets.US_ASCII));
    }

    @Test
    void copiesGatherAndScatterAcrossSegmentBoundaries() {
        q = new QueuePair(16, false);
        long r0 = q.buffer(bytes("abc"));
        long r1 = q.buffer(bytes("d"));
        long r2 = q.buffer(bytes("efghi"));
        long w0 = q.buffer(2);
        long w1 = q.buffer(0);
        long w2 = q.buffer(3);
        long w3 = q.buffer(4);
        q.driver.add(new long[] {r0, r1, r2, w0, w1, w2, w3}, new int[] {3, 1, 5, 2, 0, 3, 4}, 3);
        q.driver.publish();
        DescriptorChain c = q.popOne();

        byte[] dst = new byte[10];
        Arrays.fill(dst, (byte) '.');
        assertEquals(5, c.copyFromReadable(q.memory, 2, dst, 1, 5), "from inside r0 across r1 into r2");
        assertEquals(".cdefg....", new String(dst, StandardCharsets.US_ASCII));
        assertEquals(2, c.copyFromReadable(q.memory, 7, dst, 0, 10), "only two readable bytes are left after offset 7");
        assertEquals(0, c.copyFromReadable(q.memory, 9, dst, 0, 10), "offset at the end");
        assertEquals(0, c.copyFromReadable(q.memory, 100, dst, 0, 10), "offset past the end");

        byte[] src = bytes("0123456789");
        assertEquals(6, c.copyToWritable(q.memory, 1, src, 2, 6), "from inside w0, over the empty w1, through w2 into w3");
        assertEquals("\0" + "2", new String(q.read(w0, 2), StandardCharsets.US_ASCII));
        assertEquals("345", new String(q.read(w2, 3), StandardCharsets.US_ASCII));
        assertEquals("67\0\0", new String(q.read(w3, 4), StandardCharsets.US_ASCII));
        assertEquals(2, c.copyToWritable(q.memory, 7, src, 0, 10), "writes stop at the end of the writable bytes");
        assertEquals("6701", new String(q.read(w3, 4), StandardCharsets.US_ASCII));
        assertEquals("abc", new String(q.read(r0, 3), StandardCharsets.US_ASCII), "readable segments untouched");

        assertThrows(IndexOutOfBoundsException.class, () -> c.copyFromReadable(q.memory, 0, dst, 8, 3));
        assertThrows(IllegalArgumentException.class, () -> c.copyToWritable(q.memory, -1, src, 0, 1));
        assertThrows(IndexOutOfBoundsException.class, () -> c.address(7));
    }

    @ParameterizedTest(name = "eventIdx={0}")
    @ValueSource(booleans = {false, true})
    void sixteenBitIndicesWrapAround(boolean eventIdx) {
        q = new QueuePair(4, eventIdx);
        q.driver.startIndicesAt(65533);
        q.device.setPosition(65533, 65533);
        assertFalse(q.device.enableNotifications(), "nothing is available at the start position");
        long buf = q.buffer(8);
        for (int i = 0; i < 6; i++) {
            int head = q.driver.add(new long[] {buf}, new int[] {8}, 0);
            q.driver.publish();
            assertTrue(q.driver.needsKick(), "round " + i + ": notifications are on, so every publish kicks");
            DescriptorChain c = q.popOne();
            assertEquals(head, c.head());
            assertEquals(8, c.writableBytes());
            q.device.push(c.head(), i);
            q.device.publish();
            assertTrue(q.device.needsNotification(), "round " + i);
            assertEquals(new Used(head, i), q.driver.pollUsed());
        }
        assertEquals(3, q.device.nextAvail(), "65533 + 6 wraps to 3");
        assertEquals(3, q.device.nextUsed());
        assertEquals(3, q.driver.availIdx());
        assertEquals(3, Short.toUnsignedInt(q.memory.readShort(q.driver.usedRing() + 2)));
        assertFalse(q.device.pop(q.chain));
    }

    @Test
    void severalPushesThenOnePublishBatch() {
        q = new QueuePair(8, false);
        long buf = q.buffer(16);
        int[] heads = new int[5];
        for (int i = 0; i < 5; i++) {
            heads[i] = q.driver.add(new long[] {buf}, new int[] {16}, 0);
        }
        q.driver.publish();

        int[] popped = new int[5];
        for (int i = 0; i < 5; i++) {
            popped[i] = q.popOne().head();
        }
        assertArrayEquals(heads, popped, "chains come out in avail ring order");
        assertFalse(q.device.pop(q.chain));
        for (int i = 4; i >= 0; i--) {
            q.device.push(popped[i], 100 + i);
        }
        assertNull(q.driver.pollUsed(), "pushed but unpublished elements are invisible");
        assertEquals(0, Short.toUnsignedInt(q.memory.readShort(q.driver.usedRing() + 2)));
        q.device.publish();
        assertEquals(5, Short.toUnsignedInt(q.memory.readShort(q.driver.usedRing() + 2)));
        assertTrue(q.device.needsNotification());
        assertFalse(q.device.needsNotification(), "one notification for the whole batch");
        for (int i = 4; i >= 0; i--) {
            assertEquals(new Used(heads[i], 100 + i), q.driver.pollUsed(), "used elements in push order");
        }
        assertNull(q.driver.pollUsed());
        assertEquals(8, q.driver.freeDescriptors());
    }

    @Test
    void secondQueueResumesExactlyWhereTheFirstStopped() {
        q = new QueuePair(8, true);
        long buf = q.buffer(4);
        List<Integer> offered = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            offered.add(q.driver.add(new long[] {buf}, new int[] {4}, 0));
        }
        q.driver.publish();

        List<Integer> taken = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            DescriptorChain c = q.popOne();
            taken.add(c.head());
            q.device.push(c.head(), 1);
        }
        q.device.publish();
        int nextAvail = q.device.nextAvail();
        int nextUsed = q.device.nextUsed();
        assertEquals(3, nextAvail);
        assertEquals(3, nextUsed);

        SplitQueue second = q.newDevice();
        second.setPosition(nextAvail, nextUsed);
        DescriptorChain chain = new DescriptorChain(second.maxChainSegments());
        while (second.pop(chain)) {
            taken.add(chain.head());
            second.push(chain.head(), 2);
        }
        second.publish();
        assertEquals(offered, taken, "every chain taken once, in order, across the switch");

        List<Used> used = new ArrayList<>();
        for (Used u; (u = q.driver.pollUsed()) != null; ) {
            used.add(u);
        }
        assertEquals(6, used.size());
        for (int i = 0; i < 6; i++) {
            assertEquals(new Used(offered.get(i), i < 3 ? 1 : 2), used.get(i));
        }
        assertEquals(8, q.driver.freeDescriptors());
    }

    @Test
    void setPositionRejectsImpossiblePositions() {
        q = new QueuePair(8, false);
        assertThrows(IllegalArgumentException.class, () -> q.device.setPosition(65536, 0));
        assertThrows(IllegalArgumentException.class, () -> q.device.setPosition(0, -1));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> q.device.setPosition(20, 10));
        assertTrue(e.getMessage().contains("10 chains in flight"), e.getMessage());
        q.device.setPosition(18, 10);
        assertEquals(18, q.device.nextAvail());
        assertEquals(10, q.device.nextUsed());
    }

    @Test
    void pushRejectsWhatNoChainExplains() {
        q = new QueuePair(8, false);
        assertThrows(IllegalStateException.class, () -> q.device.push(0, 0), "no chain was popped");
        q.driver.add(new long[] {q.buffer(4)}, new int[] {4}, 0);
        q.driver.publish();
        q.popOne();
        assertThrows(IllegalArgumentException.class, () -> q.device.push(8, 0));
        assertThrows(IllegalArgumentException.class, () -> q.device.push(0, -1));
        q.device.push(q.chain.head(), 4);
        assertThrows(IllegalStateException.class, () -> q.device.push(q.chain.head(), 4), "the chain was already returned");
    }

    @Test
    void steadyStateDataPathAllocatesNothing() {
        q = new QueuePair(64, true);
        long buf = q.buffer(64);
        AllocatedBytes counter = new AllocatedBytes();
        long thread = Thread.currentThread().threadId();
        long[] measured = new long[12];
        for (int round = 0; round < measured.length; round++) {
            for (int i = 0; i < 64; i++) {
                q.driver.add(new long[] {buf, buf}, new int[] {32, 32}, 1);
            }
            q.driver.publish();
            long before = counter.of(thread);
            deviceRound(q.device, q.chain);
            measured[round] = counter.of(thread) - before;
            while (q.driver.pollUsed() != null) {
                // driver-side bookkeeping allocates Used records; it is not measured
            }
        }
        // the first rounds may load classes or run the interpreter
        AllocatedBytes.assertNothingInSteadyState(measured, 4, "64 pop/push cycles");
    }

    private static void deviceRound(SplitQueue device, DescriptorChain chain) {
        device.disableNotifications();
        while (device.pop(chain)) {
            device.push(chain.head(), (int) chain.writableBytes());
        }
        device.publish();
        device.needsNotification();
        device.enableNotifications();
    }

    @Test
    void driverReusesFreedDescriptorsOverManyRounds() {
        q = new QueuePair(4, false);
        long buf = q.buffer(8);
        for (int round = 0; round < 50; round++) {
            int h1 = q.driver.add(new long[] {buf, buf}, new int[] {4, 4}, 1);
            int h2 = q.driver.add(new long[] {buf, buf}, new int[] {4, 4}, 1);
            assertEquals(-1, q.driver.add(new long[] {buf}, new int[] {1}, 1), "all four descriptors are taken");
            q.driver.publish();
            assertEquals(h1, q.popOne().head());
            q.device.push(h1, 4);
            assertEquals(h2, q.popOne().head());
            q.device.push(h2, 4);
            q.device.publish();
            assertEquals(h1, q.driver.pollUsed().head());
            assertEquals(h2, q.driver.pollUsed().head());
            assertEquals(4, q.driver.freeDescriptors());
        }
        assertEquals(100, q.device.nextAvail());
    }

    @Test
    void driverQueueNeedsAValidSize() {
        try (CanaryGuestMemory guest = new CanaryGuestMemory()) {
            assertThrows(IllegalArgumentException.class, () -> new DriverQueue(guest.memory(), guest.allocatorOverA(), 3, false));
        }
    }
}
