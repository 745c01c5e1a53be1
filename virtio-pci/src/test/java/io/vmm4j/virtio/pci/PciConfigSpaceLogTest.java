package io.vmm4j.virtio.pci;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.bus.BusDevice;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A guest that keeps placing a BAR where the bus refuses it gets one log line, not one per write (a fuzz run's 700,000). */
class PciConfigSpaceLogTest {
    private static final BusDevice NOTHING = new BusDevice() {
        @Override
        public long read(long offset, int size) {
            return 0;
        }

        @Override
        public void write(long offset, int size, long value) {
        }
    };

    @Test
    void refusedBarPlacementsAreLoggedOncePerPeriod() {
        Bus mmio = new Bus("mmio");
        mmio.register(0xC000_0000L, 0x1000, NOTHING); // something already there
        PciConfigSpace cfg = new PciConfigSpace("dev", mmio, 0x1af4, 0x1041, 1, 0x020000, 0x1af4, 1, 1);
        cfg.addMemoryBar64(0, 0x4000, false, NOTHING);
        cfg.write(PciConfigSpace.COMMAND, 2, PciConfigSpace.COMMAND_MEMORY);
        PrintStream err = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8)); // slf4j-simple writes to the current System.err
        try {
            for (int i = 0; i < 1000; i++) {
                cfg.write(0x10, 4, 0xC000_0000 | 0x4); // BAR0 over the existing range: refused
                cfg.write(0x14, 4, 0);
                cfg.write(0x10, 4, 0); // away again, so the next write is a new placement
            }
        } finally {
            System.setErr(err);
        }
        String log = captured.toString(StandardCharsets.UTF_8);
        long lines = log.lines().filter(l -> l.contains("not decoded")).count();
        assertEquals(1, lines, "one line for 1000 refused placements within the period:\n" + log);
        assertTrue(log.contains("dev: BAR 0 at 0xc0000000 not decoded: "), log);
    }
}
