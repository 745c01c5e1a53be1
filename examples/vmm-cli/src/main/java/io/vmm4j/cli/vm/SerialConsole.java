package io.vmm4j.cli.vm;

import io.vmm4j.core.bus.BusDevice;

import java.io.PrintStream;

/**
 * The transmit side of a 16550 UART at 0x3F8, enough for a guest that only writes: bytes to THR
 * are collected into lines and printed to the VMM's log. LSR reads "transmitter empty", so a
 * driver that polls before writing never waits; every other register reads 0 and ignores writes.
 */
final class SerialConsole implements BusDevice {
    static final int PORTS = 8;
    private static final int THR = 0;
    private static final int LSR = 5;
    private static final int LSR_THR_EMPTY = 0x20;
    private static final int LSR_TRANSMITTER_EMPTY = 0x40;

    private final PrintStream out;
    private final StringBuilder line = new StringBuilder();
    private String lastLine = "";

    SerialConsole(PrintStream out) {
        this.out = out;
    }

    @Override
    public long read(long offset, int size) {
        return offset == LSR ? LSR_THR_EMPTY | LSR_TRANSMITTER_EMPTY : 0;
    }

    @Override
    public synchronized void write(long offset, int size, long value) {
        if (offset != THR) {
            return;
        }
        char c = (char) (value & 0xFF);
        if (c == '\n') {
            flush();
        } else if (c != '\r') {
            line.append(c);
            if (line.length() >= 4096) {
                flush();
            }
        }
    }

    /** Prints a partial last line, if any. */
    synchronized void flush() {
        if (!line.isEmpty()) {
            lastLine = line.toString();
            out.println(lastLine);
            line.setLength(0);
        }
    }

    /** The last complete line the guest printed, for error messages. */
    synchronized String lastLine() {
        return lastLine;
    }
}
