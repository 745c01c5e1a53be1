package io.vmm4j.core.x86;

import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;

import static org.junit.jupiter.api.Assertions.assertEquals;

class CmosRtcTest {
    private final CmosRtc rtc = new CmosRtc(Clock.fixed(Instant.parse("2026-12-01T21:07:59Z"), ZoneOffset.UTC));

    private int read(int register) {
        rtc.write(0, 1, 0x80 | register); // bit 7: NMI mask, as Linux's CMOS_READ may set it
        return (int) rtc.read(1, 1);
    }

    @Test
    void timeIsBcdIn24HourModeAsFirmwareLeavesIt() {
        assertEquals(0x59, read(0x00));
        assertEquals(0x07, read(0x02));
        assertEquals(0x21, read(0x04));
        assertEquals(0x01, read(0x07));
        assertEquals(0x12, read(0x08));
        assertEquals(0x26, read(0x09));
        assertEquals(0x20, read(0x32), "century");
        assertEquals(0x03, read(0x06), "Tuesday; 1 = Sunday");
    }

    @Test
    void statusRegistersSayValidAndNeverUpdating() {
        assertEquals(0, read(0x0A) & 0x80, "no update in progress: Linux does not wait");
        assertEquals(0x80, read(0x0D), "valid RAM and time");
        assertEquals(0x02, read(0x0B));
        assertEquals(0, read(0x0C));
    }

    @Test
    void binaryAnd12HourModesFollowRegisterB() {
        rtc.write(0, 1, 0x0B);
        rtc.write(1, 1, CmosRtc.B_BINARY); // binary, 12-hour
        assertEquals(59, read(0x00));
        assertEquals(0x80 | 9, read(0x04), "9 pm");
    }

    @Test
    void cmosRamKeepsWhatIsWritten() {
        rtc.write(0, 1, 0x40);
        rtc.write(1, 1, 0xA5);
        assertEquals(0xA5, read(0x40));
        assertEquals(0xFF, rtc.read(0, 1), "the index port is write-only");
    }
}
