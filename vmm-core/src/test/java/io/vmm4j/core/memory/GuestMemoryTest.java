package io.vmm4j.core.memory;

import io.vmm4j.core.linux.LibC;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.function.Executable;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Guest memory never reaches outside its regions. One memfd holds
 * {@code [canary][region A][canary][region B][canary]}; A and B are adjacent in guest-physical
 * space (0x10000 and 0x11000) but separated by canary pages in the file, so an access that slips
 * past an edge or across the A/B boundary would land on canary bytes, which the test watches
 * through its own mapping of the whole file.
 */
class GuestMemoryTest {
    private static final long PAGE = GuestMemory.PAGE_SIZE;
    private static final long A = 0x10000;
    private static final long B = A + PAGE;
    private static final long END = B + PAGE;
    private static final byte CANARY = (byte) 0xCC;

    private GuestMemory memory;
    private MemorySegment wholeFile;

    @BeforeEach
    void setUp() {
        int fd = LibC.memfdCreate("guest-memory-test", LibC.MFD_CLOEXEC);
        LibC.ftruncate(fd, 5 * PAGE);
        wholeFile = LibC.mmap(5 * PAGE, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, 0);
        wholeFile.fill(CANARY);
        wholeFile.asSlice(PAGE, PAGE).fill((byte) 0);
        wholeFile.asSlice(3 * PAGE, PAGE).fill((byte) 0);
        memory = GuestMemory.builder().region(A, PAGE, fd, PAGE).region(B, PAGE, fd, 3 * PAGE).build();
    }

    @AfterEach
    void tearDown() {
        memory.close();
        LibC.munmap(wholeFile);
    }

    private void assertCanariesIntact() {
        for (long page : new long[] {0, 2, 4}) {
            MemorySegment canary = wholeFile.asSlice(page * PAGE, PAGE);
            for (long i = 0; i < PAGE; i++) {
                if (canary.get(ValueLayout.JAVA_BYTE, i) != CANARY) {
                    throw new AssertionError("canary byte changed at file offset 0x" + Long.toHexString(page * PAGE + i));
                }
            }
        }
    }

    @Test
    void accessesAtTheEdgesWorkAndAreLittleEndian() {
        memory.writeByte(A, (byte) 1);
        memory.writeByte(END - 1, (byte) 2);
        memory.writeLong(B - 8, 0x1122334455667788L);
        memory.writeInt(B, 0xAABBCCDD);
        memory.writeShort(END - 2, (short) 0x0102);
        assertEquals(1, memory.readByte(A));
        assertEquals(0x1122334455667788L, memory.readLong(B - 8));
        assertEquals((byte) 0x88, wholeFile.get(ValueLayout.JAVA_BYTE, 2 * PAGE - 8), "least significant byte first");
        assertEquals((byte) 0xDD, wholeFile.get(ValueLayout.JAVA_BYTE, 3 * PAGE));
        assertEquals((short) 0x0102, memory.readShort(END - 2));
        assertEquals((byte) 0x02, memory.readByte(END - 2));
        assertCanariesIntact();
    }

    @Test
    void regionsExposeWhatVhostNeeds() {
        MemoryRegion b = memory.region(B, 1);
        assertEquals(B, b.guestAddress());
        assertEquals(3 * PAGE, b.fdOffset());
        assertTrue(b.fd() >= 0);
        assertEquals(b.hostAddress() + 16, memory.hostAddress(B + 16, 4));
        assertEquals(2 * PAGE, memory.size());
    }

    @TestFactory
    Stream<DynamicTest> everyOutOfBoundsAccessThrowsAndTouchesNothing() {
        byte[] big = new byte[0x200];
        java.util.Arrays.fill(big, (byte) 0x77);
        MemorySegment src = MemorySegment.ofArray(new byte[0x101]);
        Map<String, Executable> cases = new LinkedHashMap<>();
        cases.put("byte below the first region", () -> memory.writeByte(A - 1, (byte) 9));
        cases.put("byte at the end of memory", () -> memory.writeByte(END, (byte) 9));
        cases.put("short across the A/B boundary", () -> memory.writeShort(B - 1, (short) -1));
        cases.put("int across the end of memory", () -> memory.writeInt(END - 2, -1));
        cases.put("long across the A/B boundary", () -> memory.writeLong(B - 4, -1L));
        cases.put("long starting below memory", () -> memory.writeLong(A - 4, -1L));
        cases.put("array across the A/B boundary", () -> memory.write(B - 0x100, big, 0, big.length));
        cases.put("segment past the end", () -> memory.write(END - 0x100, src));
        cases.put("fill across the boundary", () -> memory.fill(A, 2 * PAGE, (byte) 9));
        cases.put("fill with negative length", () -> memory.fill(A, -1, (byte) 9));
        cases.put("slice across the boundary", () -> memory.slice(B - 1, 2).fill((byte) 9));
        cases.put("slice of huge length", () -> memory.slice(A, Long.MAX_VALUE));
        cases.put("address wrapping to zero", () -> memory.writeLong(-4L, -1L));
        cases.put("address near 2^63", () -> memory.writeByte(Long.MAX_VALUE, (byte) 9));
        cases.put("length that wraps the address", () -> memory.fill(B, -A, (byte) 9));
        cases.put("release store past the end", () -> memory.storeReleaseShort(END, (short) 9));
        cases.put("release store below memory", () -> memory.storeReleaseInt(A - 4, 9));
        cases.put("misaligned release store", () -> memory.storeReleaseShort(A + 1, (short) 9));
        cases.put("misaligned acquire load", () -> memory.loadAcquireInt(B + 2));
        cases.put("read across the boundary", () -> memory.read(B - 2, new byte[4], 0, 4));
        cases.put("long read past the end", () -> memory.readLong(END - 7));
        return cases.entrySet().stream().map(c -> DynamicTest.dynamicTest(c.getKey(), () -> {
            byte[] beforeA = wholeFile.asSlice(PAGE, PAGE).toArray(ValueLayout.JAVA_BYTE);
            byte[] beforeB = wholeFile.asSlice(3 * PAGE, PAGE).toArray(ValueLayout.JAVA_BYTE);
            assertThrows(GuestMemoryException.class, c.getValue());
            assertCanariesIntact();
            assertArrayEquals(beforeA, wholeFile.asSlice(PAGE, PAGE).toArray(ValueLayout.JAVA_BYTE), "region A unchanged");
            assertArrayEquals(beforeB, wholeFile.asSlice(3 * PAGE, PAGE).toArray(ValueLayout.JAVA_BYTE), "region B unchanged");
        }));
    }

    @Test
    void containsAnswersForEdgesAndBoundaries() {
        assertTrue(memory.contains(A, PAGE));
        assertTrue(memory.contains(B, PAGE));
        assertFalse(memory.contains(A, PAGE + 1), "one access never spans two regions");
        assertFalse(memory.contains(END, 0 + 1));
        assertFalse(memory.contains(A - 1, 1));
    }

    @Test
    void acquireAndReleaseRoundTripRingIndices() {
        memory.storeReleaseShort(A + 2, (short) 0xFFFE);
        assertEquals((short) 0xFFFE, memory.loadAcquireShort(A + 2));
        assertEquals((byte) 0xFE, memory.readByte(A + 2));
        memory.storeReleaseInt(B + 4, 0x01020304);
        assertEquals(0x01020304, memory.loadAcquireInt(B + 4));
    }

    @Test
    void accessAfterCloseFailsInsteadOfTouchingUnmappedMemory() {
        memory.close();
        assertThrows(IllegalStateException.class, () -> memory.readByte(A));
    }

    @Test
    void builderRejectsBadLayouts() {
        assertThrows(IllegalArgumentException.class, () -> GuestMemory.builder().region(0, PAGE).region(0, PAGE));
        assertThrows(IllegalArgumentException.class, () -> GuestMemory.builder().region(0x1000, 100));
        assertThrows(IllegalArgumentException.class, () -> GuestMemory.builder().region(0x1001, PAGE));
        assertThrows(IllegalArgumentException.class, () -> GuestMemory.builder().region(0, 2 * PAGE).region(PAGE, PAGE));
        assertThrows(IllegalStateException.class, () -> GuestMemory.builder().build());
    }

    @Test
    void freshRegionsAreZeroedAndIndependent() {
        try (GuestMemory m = GuestMemory.builder().region(0, 2 * PAGE).region(0x100000, PAGE).build()) {
            assertEquals(0, m.readLong(0));
            m.writeLong(0x100000, 42);
            assertEquals(0, m.readLong(0));
            assertEquals(42, m.readLong(0x100000));
            assertTrue(m.regions().get(0).fd() != m.regions().get(1).fd(), "each fresh region has its own memfd");
        }
    }
}
