package io.vmm4j.core.x86;

import io.vmm4j.core.bus.BusDevice;
import io.vmm4j.core.irq.IntxLine;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.util.ArrayDeque;

/**
 * A 16550A UART (National Semiconductor PC16550D data sheet; the register behaviour Linux's 8250
 * driver probes for, as QEMU's serial.c emulates it): eight registers with the divisor latch,
 * 16-byte FIFOs, and an interrupt output that is high while an enabled interrupt is pending.
 * Transmitted bytes go to an {@link OutputStream} at once, so the transmitter is always empty;
 * received bytes come from {@link #receive} (e.g. a thread reading the VMM's stdin).
 *
 * <p>Thread-safe: the vCPU thread accesses registers while an input thread delivers bytes.
 */
public final class Uart16550 implements BusDevice {
    /** The legacy COM1 port base and its ISA IRQ. */
    public static final int COM1_PORT = 0x3F8;
    public static final int COM1_IRQ = 4;
    /** The eight register offsets the device decodes. */
    public static final int PORTS = 8;

    // register offsets (PC16550D Table II)
    static final int RBR_THR_DLL = 0;
    static final int IER_DLM = 1;
    static final int IIR_FCR = 2;
    static final int LCR = 3;
    static final int MCR = 4;
    static final int LSR = 5;
    static final int MSR = 6;
    static final int SCR = 7;

    static final int IER_RDI = 0x01;   // received data available
    static final int IER_THRI = 0x02;  // transmitter holding register empty
    static final int IER_RLSI = 0x04;  // receiver line status
    static final int IER_MSI = 0x08;   // modem status
    static final int IIR_NO_INT = 0x01;
    static final int IIR_MSI = 0x00;
    static final int IIR_THRI = 0x02;
    static final int IIR_RDI = 0x04;
    static final int IIR_RLSI = 0x06;
    static final int IIR_FIFO_ENABLED = 0xC0;
    static final int FCR_ENABLE_FIFO = 0x01;
    static final int FCR_CLEAR_RCVR = 0x02;
    static final int LCR_DLAB = 0x80;
    static final int MCR_DTR = 0x01;
    static final int MCR_RTS = 0x02;
    static final int MCR_OUT1 = 0x04;
    static final int MCR_OUT2 = 0x08;
    static final int MCR_LOOP = 0x10;
    static final int LSR_DR = 0x01;
    static final int LSR_OE = 0x02;
    static final int LSR_THRE = 0x20;
    static final int LSR_TEMT = 0x40;
    static final int MSR_CTS = 0x10;
    static final int MSR_DSR = 0x20;
    static final int MSR_RI = 0x40;
    static final int MSR_DCD = 0x80;
    static final int FIFO_SIZE = 16;

    private final OutputStream out;
    private final IntxLine irq;
    private final ArrayDeque<Integer> rx = new ArrayDeque<>();
    private int ier;
    private int lcr;
    private int mcr;
    private int lsr = LSR_THRE | LSR_TEMT;
    private int scr;
    private int divisor = 12; // 9600 baud from the 1.8432 MHz clock, as firmware leaves it
    private boolean fifoEnabled;
    private boolean thrInterrupt;
    private boolean lineHigh;
    private long transmitted;
    private long received;
    private long overruns;

    /** @param out where transmitted bytes go; {@code irq} the interrupt output (e.g. ISA IRQ 4 through KVM_IRQ_LINE) */
    public Uart16550(OutputStream out, IntxLine irq) {
        this.out = out;
        this.irq = irq;
    }

    @Override
    public synchronized long read(long offset, int size) {
        int r = switch ((int) offset) {
            case RBR_THR_DLL -> (lcr & LCR_DLAB) != 0 ? divisor & 0xFF : readReceiver();
            case IER_DLM -> (lcr & LCR_DLAB) != 0 ? divisor >>> 8 : ier;
            case IIR_FCR -> readIir();
            case LCR -> lcr;
            case MCR -> mcr;
            case LSR -> readLsr();
            case MSR -> modemStatus();
            case SCR -> scr;
            default -> 0xFF;
        };
        updateIrq();
        return r;
    }

    @Override
    public synchronized void write(long offset, int size, long value) {
        int v = (int) value & 0xFF;
        switch ((int) offset) {
            case RBR_THR_DLL -> {
                if ((lcr & LCR_DLAB) != 0) {
                    divisor = (divisor & 0xFF00) | v;
                } else {
                    transmit(v);
                }
            }
            case IER_DLM -> {
                if ((lcr & LCR_DLAB) != 0) {
                    divisor = (divisor & 0xFF) | (v << 8);
                } else {
                    int changed = (ier ^ v) & 0x0F;
                    ier = v & 0x0F;
                    // enabling THRI with an empty transmitter raises the THRE interrupt (PC16550D; Linux's THRE test needs it)
                    if ((changed & IER_THRI) != 0) {
                        thrInterrupt = (ier & IER_THRI) != 0 && (lsr & LSR_THRE) != 0;
                    }
                }
            }
            case IIR_FCR -> {
                fifoEnabled = (v & FCR_ENABLE_FIFO) != 0;
                if ((v & FCR_CLEAR_RCVR) != 0 || !fifoEnabled) {
                    rx.clear();
                    lsr &= ~(LSR_DR | LSR_OE);
                }
            }
            case LCR -> lcr = v;
            case MCR -> mcr = v & 0x1F;
            case SCR -> scr = v;
            default -> {
                // LSR and MSR are read-only
            }
        }
        updateIrq();
    }

    private void transmit(int b) {
        // writing THR clears the THRE interrupt; the byte leaves at once and THR is empty again
        thrInterrupt = false;
        updateIrq();
        if ((mcr & MCR_LOOP) != 0) {
            enqueue(b);
        } else {
            try {
                out.write(b);
            } catch (IOException e) {
                throw new UncheckedIOException("serial console output failed", e);
            }
        }
        transmitted++;
        lsr |= LSR_THRE | LSR_TEMT;
        thrInterrupt = (ier & IER_THRI) != 0;
    }

    private int readReceiver() {
        Integer b = rx.poll();
        notifyAll(); // room in the FIFO for a waiting receive()
        if (rx.isEmpty()) {
            lsr &= ~LSR_DR;
        }
        return b == null ? 0 : b;
    }

    private int readIir() {
        int id = pendingInterrupt();
        if (id == IIR_THRI) {
            thrInterrupt = false; // reading IIR with THRE as the source clears it (PC16550D Table IV)
        }
        return id | (fifoEnabled ? IIR_FIFO_ENABLED : 0);
    }

    private int readLsr() {
        int r = lsr;
        lsr &= ~LSR_OE; // error bits clear on read
        return r;
    }

    /** The highest-priority enabled pending interrupt (PC16550D Table IV), or IIR_NO_INT. */
    private int pendingInterrupt() {
        if ((ier & IER_RLSI) != 0 && (lsr & LSR_OE) != 0) {
            return IIR_RLSI;
        }
        if ((ier & IER_RDI) != 0 && (lsr & LSR_DR) != 0) {
            return IIR_RDI;
        }
        if ((ier & IER_THRI) != 0 && thrInterrupt) {
            return IIR_THRI;
        }
        return IIR_NO_INT; // modem status never changes here, so MSI is never pending
    }

    private int modemStatus() {
        if ((mcr & MCR_LOOP) != 0) {
            // loopback: the modem inputs follow the outputs (PC16550D, MCR bit 4)
            int m = 0;
            m |= (mcr & MCR_RTS) != 0 ? MSR_CTS : 0;
            m |= (mcr & MCR_DTR) != 0 ? MSR_DSR : 0;
            m |= (mcr & MCR_OUT1) != 0 ? MSR_RI : 0;
            m |= (mcr & MCR_OUT2) != 0 ? MSR_DCD : 0;
            return m;
        }
        return MSR_DCD | MSR_DSR | MSR_CTS; // a terminal is attached and ready
    }

    private void enqueue(int b) {
        int capacity = fifoEnabled ? FIFO_SIZE : 1;
        if (rx.size() >= capacity) {
            lsr |= LSR_OE;
            overruns++;
        } else {
            rx.add(b & 0xFF);
            received++;
        }
        lsr |= LSR_DR;
    }

    private void updateIrq() {
        boolean high = pendingInterrupt() != IIR_NO_INT;
        if (high != lineHigh) {
            lineHigh = high;
            if (high) {
                irq.assertLine();
            } else {
                irq.deassertLine();
            }
        }
    }

    /**
     * Delivers bytes from the outside (the console's keyboard). Waits while the receive FIFO is
     * full, so input is paced by the guest's reading instead of overrunning.
     */
    public synchronized void receive(byte[] bytes, int offset, int length) throws InterruptedException {
        for (int i = 0; i < length; i++) {
            while (rx.size() >= (fifoEnabled ? FIFO_SIZE : 1)) {
                wait(10);
            }
            enqueue(bytes[offset + i]);
            updateIrq();
        }
    }

    /**
     * Starts a daemon thread copying {@code in} into the receiver until end of stream; returns it.
     */
    public Thread startInput(InputStream in, String threadName) {
        return Thread.ofPlatform().daemon().name(threadName).start(() -> {
            byte[] buf = new byte[256];
            try {
                for (int n; (n = in.read(buf)) > 0; ) {
                    receive(buf, 0, n);
                }
            } catch (IOException | InterruptedException e) {
                // end of input: the console is detached
            }
        });
    }

    public synchronized long transmittedBytes() {
        return transmitted;
    }

    public synchronized long receivedBytes() {
        return received;
    }

    public synchronized long overruns() {
        return overruns;
    }

    @Override
    public String toString() {
        return "uart16550";
    }
}
