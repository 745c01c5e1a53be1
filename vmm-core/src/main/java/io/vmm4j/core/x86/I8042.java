package io.vmm4j.core.x86;

import io.vmm4j.core.bus.BusDevice;

import java.util.ArrayDeque;

/**
 * The PC keyboard controller, an i8042, as far as Linux uses it without a keyboard: the status
 * and command port 0x64 and the data port 0x60 (IBM PC/AT Technical Reference, "Keyboard
 * Controller"; the commands Linux's drivers/input/serio/i8042.h names). Self-tests pass,
 * the command byte reads back, device commands are acknowledged, and a CPU reset request
 * (command 0xFE, or output-port bit 0 cleared through 0xD1) calls the reset handler: that is
 * how {@code reboot=k} restarts a PC, and how this VMM learns that the guest rebooted.
 */
public final class I8042 {
    public static final int DATA_PORT = 0x60;
    public static final int COMMAND_PORT = 0x64;

    // status register bits
    static final int STATUS_OUTPUT_FULL = 0x01;
    static final int STATUS_SYSTEM_FLAG = 0x04;  // set once the self-test passed
    static final int STATUS_LAST_WAS_COMMAND = 0x08;
    static final int STATUS_NOT_INHIBITED = 0x10;
    // controller commands
    static final int CMD_READ_COMMAND_BYTE = 0x20;
    static final int CMD_WRITE_COMMAND_BYTE = 0x60;
    static final int CMD_DISABLE_AUX = 0xA7;
    static final int CMD_ENABLE_AUX = 0xA8;
    static final int CMD_TEST_AUX = 0xA9;
    static final int CMD_SELF_TEST = 0xAA;
    static final int CMD_TEST_KEYBOARD = 0xAB;
    static final int CMD_DISABLE_KEYBOARD = 0xAD;
    static final int CMD_ENABLE_KEYBOARD = 0xAE;
    static final int CMD_READ_OUTPUT_PORT = 0xD0;
    static final int CMD_WRITE_OUTPUT_PORT = 0xD1;
    static final int CMD_WRITE_KEYBOARD_OUTPUT = 0xD2;
    static final int CMD_WRITE_AUX_OUTPUT = 0xD3;
    static final int CMD_WRITE_AUX = 0xD4;
    static final int CMD_PULSE_RESET = 0xFE;
    static final int SELF_TEST_PASSED = 0x55;
    static final int INTERFACE_OK = 0x00;
    static final int DEVICE_ACK = 0xFA;
    /** Output port bit 0: the CPU reset line (active low). */
    static final int OUTPUT_PORT_RESET = 0x01;
    static final int OUTPUT_PORT_A20 = 0x02;
    static final int COMMAND_BYTE_DEFAULT = 0x45; // keyboard interrupt, system flag, translation

    private final Runnable onReset;
    private final ArrayDeque<Integer> output = new ArrayDeque<>();
    private int commandByte = COMMAND_BYTE_DEFAULT;
    private int outputPort = OUTPUT_PORT_RESET | OUTPUT_PORT_A20;
    private int pendingCommand = -1; // a command whose parameter byte comes through the data port
    private boolean lastWasCommand;
    private boolean selfTested;
    private long resets;

    /** @param onReset called (on the vCPU thread) when the guest pulses the CPU reset line */
    public I8042(Runnable onReset) {
        this.onReset = onReset;
    }

    /** The data port's view (register at 0x60). */
    public BusDevice dataPort() {
        return new Port(false);
    }

    /** The status/command port's view (register at 0x64). */
    public BusDevice commandPort() {
        return new Port(true);
    }

    private final class Port implements BusDevice {
        private final boolean command;

        Port(boolean command) {
            this.command = command;
        }

        @Override
        public long read(long offset, int size) {
            return command ? status() : readData();
        }

        @Override
        public void write(long offset, int size, long value) {
            if (command) {
                command((int) value & 0xFF);
            } else {
                writeData((int) value & 0xFF);
            }
        }

        @Override
        public String toString() {
            return command ? "i8042 command/status" : "i8042 data";
        }
    }

    private synchronized int status() {
        int s = STATUS_NOT_INHIBITED;
        s |= output.isEmpty() ? 0 : STATUS_OUTPUT_FULL;
        s |= selfTested || (commandByte & STATUS_SYSTEM_FLAG) != 0 ? STATUS_SYSTEM_FLAG : 0;
        s |= lastWasCommand ? STATUS_LAST_WAS_COMMAND : 0;
        return s; // the input buffer is never full: every write is consumed at once
    }

    private synchronized int readData() {
        Integer b = output.poll();
        return b == null ? 0 : b;
    }

    private void command(int c) {
        boolean reset = false;
        synchronized (this) {
            lastWasCommand = true;
            pendingCommand = -1;
            switch (c) {
                case CMD_READ_COMMAND_BYTE -> output.add(commandByte);
                case CMD_WRITE_COMMAND_BYTE, CMD_WRITE_OUTPUT_PORT, CMD_WRITE_KEYBOARD_OUTPUT, CMD_WRITE_AUX_OUTPUT, CMD_WRITE_AUX ->
                        pendingCommand = c;
                case CMD_SELF_TEST -> {
                    selfTested = true;
                    output.add(SELF_TEST_PASSED);
                }
                case CMD_TEST_KEYBOARD, CMD_TEST_AUX -> output.add(INTERFACE_OK);
                case CMD_READ_OUTPUT_PORT -> output.add(outputPort);
                case CMD_DISABLE_KEYBOARD, CMD_ENABLE_KEYBOARD, CMD_DISABLE_AUX, CMD_ENABLE_AUX -> {
                    // no devices behind the ports: nothing changes
                }
                default -> {
                    // 0xF0-0xFF pulse output-port lines for 6 us; bit 0 low pulses the CPU reset
                    if (c >= 0xF0 && (c & OUTPUT_PORT_RESET) == 0) {
                        reset = true;
                    }
                }
            }
        }
        if (reset) {
            reset();
        }
    }

    private void writeData(int b) {
        boolean reset = false;
        synchronized (this) {
            lastWasCommand = false;
            int c = pendingCommand;
            pendingCommand = -1;
            switch (c) {
                case CMD_WRITE_COMMAND_BYTE -> commandByte = b;
                case CMD_WRITE_OUTPUT_PORT -> {
                    outputPort = b;
                    reset = (b & OUTPUT_PORT_RESET) == 0;
                }
                case CMD_WRITE_KEYBOARD_OUTPUT, CMD_WRITE_AUX_OUTPUT -> output.add(b); // echoed as if the device sent it
                case CMD_WRITE_AUX -> {
                    // no mouse: the byte goes nowhere
                }
                default -> output.add(DEVICE_ACK); // a keyboard command: acknowledged, nothing else happens
            }
        }
        if (reset) {
            reset();
        }
    }

    private void reset() {
        synchronized (this) {
            resets++;
        }
        onReset.run();
    }

    /** How often the guest asked for a CPU reset. */
    public synchronized long resets() {
        return resets;
    }
}
