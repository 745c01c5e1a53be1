package io.vmm4j.core.x86;

import io.vmm4j.core.bus.BusDevice;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;

class I8042Test {
    private final AtomicInteger resets = new AtomicInteger();
    private final I8042 kbc = new I8042(resets::incrementAndGet);
    private final BusDevice data = kbc.dataPort();
    private final BusDevice command = kbc.commandPort();

    @Test
    void statusNeverShowsAFullInputBuffer() {
        // Linux's kb_wait() polls bit 1 before writing the reset command
        assertEquals(0, command.read(0, 1) & 0x02);
        assertEquals(0, command.read(0, 1) & 0x01, "no output pending");
    }

    @Test
    void selfTestsPassAndTheCommandByteReadsBack() {
        command.write(0, 1, 0xAA);
        assertEquals(1, command.read(0, 1) & 0x01, "output buffer full");
        assertEquals(0x55, data.read(0, 1), "self-test passed");
        assertEquals(0x04, command.read(0, 1) & 0x04, "system flag after the self-test");
        command.write(0, 1, 0xAB);
        assertEquals(0x00, data.read(0, 1), "keyboard interface ok");
        command.write(0, 1, 0x60);
        data.write(0, 1, 0x47);
        command.write(0, 1, 0x20);
        assertEquals(0x47, data.read(0, 1));
        command.write(0, 1, 0xD3); // write to the aux output buffer: the MUX probe's loopback
        data.write(0, 1, 0xF0);
        assertEquals(0xF0, data.read(0, 1));
        data.write(0, 1, 0xF4); // a keyboard command
        assertEquals(0xFA, data.read(0, 1), "acknowledged");
        assertEquals(0, resets.get());
    }

    @Test
    void pulseResetCommandResetsTheMachine() {
        command.write(0, 1, 0xFE);
        assertEquals(1, resets.get());
        assertEquals(1, kbc.resets());
        command.write(0, 1, 0xFF); // pulses no line: bit 0 stays high
        assertEquals(1, resets.get());
    }

    @Test
    void clearingTheResetLineThroughTheOutputPortResets() {
        command.write(0, 1, 0xD0);
        assertEquals(0x03, data.read(0, 1), "reset line high, A20 on");
        command.write(0, 1, 0xD1);
        data.write(0, 1, 0x03);
        assertEquals(0, resets.get(), "A20 stays on, no reset");
        command.write(0, 1, 0xD1);
        data.write(0, 1, 0x02);
        assertEquals(1, resets.get());
    }
}
