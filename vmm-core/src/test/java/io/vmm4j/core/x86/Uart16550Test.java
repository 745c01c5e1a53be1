package io.vmm4j.core.x86;

import io.vmm4j.core.irq.IntxLine;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.List;

import static io.vmm4j.core.x86.Uart16550.IER_DLM;
import static io.vmm4j.core.x86.Uart16550.IIR_FCR;
import static io.vmm4j.core.x86.Uart16550.LCR;
import static io.vmm4j.core.x86.Uart16550.LSR;
import static io.vmm4j.core.x86.Uart16550.MCR;
import static io.vmm4j.core.x86.Uart16550.MSR;
import static io.vmm4j.core.x86.Uart16550.RBR_THR_DLL;
import static io.vmm4j.core.x86.Uart16550.SCR;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Uart16550Test {
    /** Records the interrupt line's level changes. */
    private static final class Line implements IntxLine {
        final List<Boolean> changes = new ArrayList<>();
        boolean high;

        @Override
        public void assertLine() {
            high = true;
            changes.add(true);
        }

        @Override
        public void deassertLine() {
            high = false;
            changes.add(false);
        }
    }

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final Line irq = new Line();
    private final Uart16550 uart = new Uart16550(out, irq);

    private int in(int reg) {
        return (int) uart.read(reg, 1);
    }

    private void out(int reg, int value) {
        uart.write(reg, 1, value);
    }

    @Test
    void transmittedBytesReachTheConsoleAndTheTransmitterIsAlwaysEmpty() {
        for (byte b : "Linux\n".getBytes()) {
            assertEquals(0x60, in(LSR) & 0x60, "THRE and TEMT: a polling console never waits");
            out(RBR_THR_DLL, b);
        }
        assertEquals("Linux\n", out.toString());
        assertEquals(6, uart.transmittedBytes());
        assertEquals(List.of(), irq.changes, "no interrupt without IER");
    }

    @Test
    void ierKeepsItsLowFourBitsAsThe8250ProbeExpects() {
        // serial8250 autoconfig: IER=0 reads back 0, IER=0x0F reads back 0x0F
        out(IER_DLM, 0);
        assertEquals(0, in(IER_DLM));
        out(IER_DLM, 0xFF);
        assertEquals(0x0F, in(IER_DLM) & 0xFF);
        out(IER_DLM, 0);
        assertEquals(0x12, scratch(0x12));
    }

    private int scratch(int v) {
        out(SCR, v);
        return in(SCR);
    }

    @Test
    void fifoEnableShowsInIirAsA16550A() {
        assertEquals(0x01, in(IIR_FCR), "no FIFO, no interrupt");
        out(IIR_FCR, 0x07);
        assertEquals(0xC1, in(IIR_FCR), "IIR bits 7:6 = 11: a 16550A with working FIFOs");
    }

    @Test
    void thrEmptyInterruptIsRaisedByIerAndClearedByReadingIir() {
        // serial8250_do_startup's THRE test: enable THRI, read IIR, disable, enable again, read IIR
        out(IER_DLM, Uart16550.IER_THRI);
        assertTrue(irq.high, "THRE interrupt pending with an empty transmitter");
        assertEquals(0x02, in(IIR_FCR) & 0x0F, "IIR says THRE");
        assertTrue(!irq.high, "reading IIR cleared it");
        assertEquals(0x01, in(IIR_FCR) & 0x0F, "nothing pending now");
        out(IER_DLM, 0);
        out(IER_DLM, Uart16550.IER_THRI);
        assertEquals(0x02, in(IIR_FCR) & 0x0F, "re-enabling re-asserts THRE (no UART_BUG_THRE)");
        out(IER_DLM, 0);
        out(IER_DLM, Uart16550.IER_THRI);
        assertTrue(irq.high);
        int before = irq.changes.size();
        out(RBR_THR_DLL, 'x');
        assertTrue(irq.high, "after each byte the empty transmitter interrupts again");
        assertEquals(List.of(false, true), irq.changes.subList(before, irq.changes.size()),
                "the line drops at the THR write and rises when the byte is gone: an edge per byte");
    }

    @Test
    void receivedBytesRaiseTheDataInterruptUntilRead() throws Exception {
        out(IIR_FCR, 0x01);
        out(IER_DLM, Uart16550.IER_RDI);
        uart.receive("ok".getBytes(), 0, 2);
        assertTrue(irq.high);
        assertEquals(0x04, in(IIR_FCR) & 0x0F, "received data available");
        assertEquals(1, in(LSR) & 1, "data ready");
        assertEquals('o', in(RBR_THR_DLL));
        assertEquals('k', in(RBR_THR_DLL));
        assertEquals(0, in(LSR) & 1);
        assertTrue(!irq.high, "the FIFO is empty: the line drops");
        assertEquals(2, uart.receivedBytes());
    }

    /**
     * The console's keyboard path as Linux's 8250 driver sees it: bytes from an input stream
     * (startInput, e.g. the VMM's stdin) raise the RX interrupt; the handler reads IIR, then RBR
     * while LSR says data ready, until the line drops; later input raises it again. 46 bytes pass a
     * 16-byte FIFO in order with no overrun, because input waits for the guest to read.
     */
    @Test
    void typedInputReachesTheGuestThroughRxInterrupts() throws Exception {
        String typed = "root\rls -l /sys/class/net && cat /proc/cmdline\r";
        java.util.concurrent.atomic.AtomicBoolean line = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicInteger edges = new java.util.concurrent.atomic.AtomicInteger();
        Uart16550 u = new Uart16550(new ByteArrayOutputStream(), new IntxLine() {
            @Override
            public void assertLine() {
                line.set(true);
                edges.incrementAndGet();
            }

            @Override
            public void deassertLine() {
                line.set(false);
            }
        });
        u.write(IIR_FCR, 1, 0x07);              // FIFO on, both FIFOs cleared (serial8250_do_startup)
        u.write(LCR, 1, 0x03);
        u.write(MCR, 1, 0x0B);                  // DTR, RTS, OUT2: the PC's interrupt gate
        u.write(IER_DLM, 1, Uart16550.IER_RDI | Uart16550.IER_RLSI);
        Thread input = u.startInput(new java.io.ByteArrayInputStream(typed.getBytes(java.nio.charset.StandardCharsets.US_ASCII)),
                "test-console-in");
        StringBuilder got = new StringBuilder();
        long deadline = System.nanoTime() + 5_000_000_000L;
        int interrupts = 0;
        while (got.length() < typed.length() && System.nanoTime() < deadline) {
            if (!line.get()) {
                Thread.onSpinWait();
                continue;
            }
            interrupts++;
            // serial8250_handle_irq: IIR names the cause, then serial8250_rx_chars reads while LSR.DR
            assertEquals(0x04, u.read(IIR_FCR, 1) & 0x0F, "received data available");
            int lsr;
            while (((lsr = (int) u.read(LSR, 1)) & Uart16550.LSR_DR) != 0) {
                assertEquals(0, lsr & Uart16550.LSR_OE, "no overrun");
                got.append((char) u.read(RBR_THR_DLL, 1));
            }
        }
        input.join(2000);
        assertEquals(typed, got.toString(), "every typed byte, in order");
        assertTrue(!input.isAlive(), "the input thread ends at the end of its stream");
        assertTrue(!line.get(), "nothing left: the line is low");
        // the handler may drain bytes that arrive while it reads, so it can see fewer interrupts than edges
        assertTrue(interrupts >= 1 && edges.get() >= interrupts, interrupts + " interrupts handled, " + edges.get() + " rising edges");
        assertEquals(typed.length(), u.receivedBytes());
        assertEquals(0, u.overruns());
        assertEquals(0x01, u.read(IIR_FCR, 1) & 0x0F, "no interrupt pending");
        int before = edges.get();
        u.receive(new byte[] {'y'}, 0, 1);
        assertTrue(line.get() && edges.get() == before + 1, "a later key press is a new rising edge");
        assertEquals('y', u.read(RBR_THR_DLL, 1));
        assertTrue(!line.get());
    }

    @Test
    void divisorLatchHidesThrAndIer() {
        out(LCR, 0x83); // DLAB, 8N1
        out(RBR_THR_DLL, 0x01);
        out(IER_DLM, 0x00);
        assertEquals(0x01, in(RBR_THR_DLL), "DLL");
        assertEquals(0x00, in(IER_DLM), "DLM");
        assertEquals("", out.toString(), "a divisor write is not a transmitted byte");
        out(LCR, 0x03);
        assertEquals(0, in(IER_DLM));
    }

    @Test
    void loopbackReturnsBytesAndMirrorsModemLines() {
        out(MCR, Uart16550.MCR_LOOP | 0x0A); // loop, RTS, OUT2: the 8250 loopback probe expects MSR 0x90
        assertEquals(0x90, in(MSR) & 0xF0);
        out(RBR_THR_DLL, 'z');
        assertEquals("", out.toString(), "looped back, not sent");
        assertEquals('z', in(RBR_THR_DLL));
        out(MCR, 0x0B);
        assertEquals(0xB0, in(MSR) & 0xF0, "carrier, DSR, CTS: a terminal is attached");
    }

    @Test
    void overrunIsCountedAndReported() throws Exception {
        out(IER_DLM, Uart16550.IER_RLSI);
        uart.write(IIR_FCR, 1, 0); // no FIFO: one byte of room
        Thread t = Thread.ofPlatform().start(() -> {
            try {
                uart.receive(new byte[] {1, 2}, 0, 2); // the second byte waits for the guest to read
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        Thread.sleep(50);
        assertTrue(t.isAlive(), "receive paces itself instead of overrunning");
        assertEquals(1, in(RBR_THR_DLL));
        t.join(2000);
        assertEquals(2, in(RBR_THR_DLL));
        assertEquals(0, uart.overruns());
    }
}
