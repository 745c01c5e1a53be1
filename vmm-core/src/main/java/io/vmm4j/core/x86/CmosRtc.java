package io.vmm4j.core.x86;

import io.vmm4j.core.bus.BusDevice;

import java.time.Clock;
import java.time.ZonedDateTime;

/**
 * The PC's CMOS real-time clock and its 128 bytes of CMOS RAM behind the index port 0x70 and the
 * data port 0x71 (Motorola MC146818A data sheet; Linux's include/linux/mc146818rtc.h). It tells
 * the time of {@code clock} in the format register B asks for, never reports an update in
 * progress, and raises no interrupts. Without it Linux reads 0xFF for the time (and warns).
 */
public final class CmosRtc implements BusDevice {
    public static final int INDEX_PORT = 0x70;
    /** The index and data ports, as one range at {@link #INDEX_PORT}. */
    public static final int PORTS = 2;

    static final int SECONDS = 0x00;
    static final int MINUTES = 0x02;
    static final int HOURS = 0x04;
    static final int DAY_OF_WEEK = 0x06;
    static final int DAY_OF_MONTH = 0x07;
    static final int MONTH = 0x08;
    static final int YEAR = 0x09;
    static final int REGISTER_A = 0x0A;
    static final int REGISTER_B = 0x0B;
    static final int REGISTER_C = 0x0C;
    static final int REGISTER_D = 0x0D;
    static final int CENTURY = 0x32; // where PC firmware keeps the century
    /** Register A: 32.768 kHz time base, 1024 Hz periodic rate; bit 7 (update in progress) stays 0. */
    static final int A_DEFAULT = 0x26;
    /** Register B: 24-hour mode (bit 1); bit 2 (DM) selects binary instead of BCD. */
    static final int B_24_HOUR = 0x02;
    static final int B_BINARY = 0x04;
    /** Register D bit 7: the battery is fine, the time is valid. */
    static final int D_VALID_RAM_AND_TIME = 0x80;

    private final Clock clock;
    private final byte[] ram = new byte[128];
    private int index;

    public CmosRtc(Clock clock) {
        this.clock = clock;
        ram[REGISTER_A] = A_DEFAULT;
        ram[REGISTER_B] = B_24_HOUR;
        ram[REGISTER_D] = (byte) D_VALID_RAM_AND_TIME;
    }

    @Override
    public synchronized long read(long offset, int size) {
        if (offset == 0) {
            return 0xFF; // the index port is write-only
        }
        return switch (index) {
            case SECONDS, MINUTES, HOURS, DAY_OF_WEEK, DAY_OF_MONTH, MONTH, YEAR, CENTURY -> time(index);
            case REGISTER_C -> 0; // no interrupt flags; reading would clear them
            default -> ram[index] & 0xFF;
        };
    }

    @Override
    public synchronized void write(long offset, int size, long value) {
        if (offset == 0) {
            index = (int) value & 0x7F; // bit 7 masks NMIs on a real PC
            return;
        }
        switch (index) {
            case REGISTER_A -> ram[REGISTER_A] = (byte) ((value & 0x7F)); // UIP is read-only
            case REGISTER_C, REGISTER_D -> {
                // read-only
            }
            case SECONDS, MINUTES, HOURS, DAY_OF_WEEK, DAY_OF_MONTH, MONTH, YEAR, CENTURY -> {
                // setting the clock: the host's time stays authoritative
            }
            default -> ram[index] = (byte) value;
        }
    }

    private int time(int register) {
        ZonedDateTime t = ZonedDateTime.now(clock);
        int b = ram[REGISTER_B];
        int v = switch (register) {
            case SECONDS -> t.getSecond();
            case MINUTES -> t.getMinute();
            case HOURS -> t.getHour();
            case DAY_OF_WEEK -> t.getDayOfWeek().getValue() % 7 + 1; // 1 = Sunday
            case DAY_OF_MONTH -> t.getDayOfMonth();
            case MONTH -> t.getMonthValue();
            case YEAR -> t.getYear() % 100;
            default -> t.getYear() / 100;
        };
        boolean pm = false;
        if (register == HOURS && (b & B_24_HOUR) == 0) {
            pm = v >= 12;
            v = v % 12 == 0 ? 12 : v % 12;
        }
        int encoded = (b & B_BINARY) != 0 ? v : (v / 10) << 4 | v % 10;
        return pm ? encoded | 0x80 : encoded;
    }

    @Override
    public String toString() {
        return "cmos-rtc";
    }
}
