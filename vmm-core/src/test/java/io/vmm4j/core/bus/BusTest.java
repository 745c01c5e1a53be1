package io.vmm4j.core.bus;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BusTest {
    /** Records accesses and answers reads with offset * 0x10 + size. */
    static final class Recorder implements BusDevice {
        final List<String> log = new ArrayList<>();

        @Override
        public long read(long offset, int size) {
            log.add("r" + offset + "/" + size);
            return offset * 0x10 + size;
        }

        @Override
        public void write(long offset, int size, long value) {
            log.add("w" + offset + "/" + size + "=" + Long.toHexString(value));
        }
    }

    @Test
    void dispatchesWithOffsetsRelativeToTheRange() {
        Bus bus = new Bus("pio");
        Recorder a = new Recorder();
        Recorder b = new Recorder();
        bus.register(0xCF8, 4, a);
        bus.register(0xCFC, 4, b);
        assertTrue(bus.write(0xCF8, 4, 0x8000_0000L));
        assertEquals(0x10 * 2 + 2, bus.read(0xCFE, 2));
        assertEquals(List.of("w0/4=80000000"), a.log);
        assertEquals(List.of("r2/2"), b.log);
    }

    @Test
    void rejectsOverlapsButAllowsAdjacentRanges() {
        Bus bus = new Bus("mmio");
        bus.register(0x1000, 0x100, new Recorder());
        bus.register(0x1100, 0x100, new Recorder());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> bus.register(0x10FF, 2, new Recorder()));
        assertTrue(e.getMessage().contains("overlaps"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> bus.register(0x0F00, 0x1000, new Recorder()));
        assertThrows(IllegalArgumentException.class, () -> bus.register(0x2000, 0, new Recorder()));
        assertEquals(2, bus.ranges().size());
    }

    @Test
    void unclaimedAndStraddlingAccessesReadAllOnesAndDropWrites() {
        Bus bus = new Bus("mmio");
        Recorder r = new Recorder();
        bus.register(0x1000, 0x10, r);
        assertEquals(0xFF, bus.read(0x10, 1));
        assertEquals(0xFFFF_FFFFL, bus.read(0x100E, 4), "an access crossing the end of a range is not the device's");
        assertEquals(-1L, bus.read(0x2000, 8));
        assertFalse(bus.write(0x100F, 2, 0));
        assertEquals(List.of(), r.log);
        assertEquals(4, bus.unclaimedAccesses());
        assertThrows(IllegalArgumentException.class, () -> bus.read(0x1000, 3));
    }

    @Test
    void aMovedRangeAnswersAtItsNewPlace() {
        Bus bus = new Bus("mmio");
        Recorder r = new Recorder();
        Bus.Range old = bus.register(0xE000_0000L, 0x1000, r);
        assertTrue(bus.unregister(old));
        bus.register(0xF000_0000L, 0x1000, r);
        assertFalse(bus.write(0xE000_0000L, 4, 1));
        assertTrue(bus.write(0xF000_0004L, 4, 1));
        assertEquals(List.of("w4/4=1"), r.log);
    }

    @Test
    void readsAreTruncatedToTheAccessSize() {
        Bus bus = new Bus("pio");
        bus.register(0, 0x10, new BusDevice() {
            @Override
            public long read(long offset, int size) {
                return -1L;
            }

            @Override
            public void write(long offset, int size, long value) {
            }
        });
        assertEquals(0xFFFF, bus.read(0, 2));
    }

    @Test
    void unclaimedAccessesReachTheListenerAndReadAllOnes() {
        Bus bus = new Bus("pio");
        bus.register(0x3F8, 8, new BusDevice() {
            @Override
            public long read(long offset, int size) {
                return 0;
            }

            @Override
            public void write(long offset, int size, long value) {
            }
        });
        List<String> seen = new java.util.ArrayList<>();
        bus.setUnclaimedListener((write, address, size, value) -> seen.add((write ? "w" : "r") + Long.toHexString(address) + "/" + size + "=" + value));
        assertEquals(0xFF, bus.read(0x2F9, 1));
        bus.write(0xCF8, 4, 0x8000_0000L);
        bus.read(0x3F8, 1);
        assertEquals(List.of("r2f9/1=0", "wcf8/4=2147483648"), seen, "claimed accesses are not reported");
        assertEquals(2, bus.unclaimedAccesses());
        bus.setUnclaimedListener(null);
        bus.read(0x2F9, 1);
        assertEquals(2, seen.size());
    }
}
