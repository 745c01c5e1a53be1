package io.vmm4j.virtio.pci;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.bus.BusDevice;

/**
 * A PCI host bridge with one bus (bus 0) and up to 32 single-function devices, reachable through
 * configuration mechanism #1 (address at I/O port 0xCF8, data at 0xCFC-0xCFF; PCI 3.0 §3.2.2.3.2)
 * and through an ECAM window on the MMIO bus (PCIe: bus << 20 | device << 15 | function << 12 | register).
 * Absent devices read as all-ones, as a master abort does. Slot 0 holds the host bridge itself.
 */
public final class PciHost {
    public static final int CONFIG_ADDRESS_PORT = 0xCF8;
    public static final int CONFIG_DATA_PORT = 0xCFC;
    /** ECAM window for bus 0: 32 devices x 8 functions x 4 KiB. */
    public static final long ECAM_SIZE = 1L << 20;

    private final PciFunction[] slots = new PciFunction[32];
    private int configAddress;

    /**
     * Registers the CF8/CFC ports on {@code pio} and the ECAM window at {@code ecamBase} on
     * {@code mmio}, and puts a host bridge in slot 0.
     */
    public PciHost(Bus pio, Bus mmio, long ecamBase) {
        pio.register(CONFIG_ADDRESS_PORT, 4, new ConfigAddressPort());
        pio.register(CONFIG_DATA_PORT, 4, new ConfigDataPort());
        mmio.register(ecamBase, ECAM_SIZE, new EcamWindow());
        // Red Hat's QEMU PCIe host bridge IDs (1b36:0008), class 06.00.00 host bridge.
        PciConfigSpace bridge = new PciConfigSpace("host-bridge", mmio, 0x1B36, 0x0008, 0, 0x060000, 0x1AF4, 0x1100, 0);
        slots[0] = new PciFunction() {
            @Override
            public int readConfig(int offset, int size) {
                return bridge.read(offset, size);
            }

            @Override
            public void writeConfig(int offset, int size, int value) {
                bridge.write(offset, size, value);
            }
        };
    }

    /** Plugs a device into {@code slot} (1..31). */
    public synchronized void attach(int slot, PciFunction function) {
        if (slot < 1 || slot > 31) {
            throw new IllegalArgumentException("PCI slot must be 1..31 (0 is the host bridge), was " + slot);
        }
        if (slots[slot] != null) {
            throw new IllegalArgumentException("PCI slot " + slot + " is already taken");
        }
        slots[slot] = function;
    }

    /** The first free slot, for callers that do not care where a device goes. */
    public synchronized int freeSlot() {
        for (int i = 1; i < 32; i++) {
            if (slots[i] == null) {
                return i;
            }
        }
        throw new IllegalStateException("all 31 PCI slots are taken");
    }

    private synchronized PciFunction function(int bus, int device, int function) {
        return bus == 0 && function == 0 ? slots[device] : null;
    }

    private int readFrom(int bus, int device, int function, int register, int size) {
        PciFunction f = function(bus, device, function);
        if (f == null || register >= PciConfigSpace.SIZE) {
            // master abort; extended config space (>= 256) is not implemented and reads as 0 for present devices
            return f == null ? (size == 4 ? -1 : (1 << (8 * size)) - 1) : 0;
        }
        return f.readConfig(register, size);
    }

    private void writeTo(int bus, int device, int function, int register, int size, int value) {
        PciFunction f = function(bus, device, function);
        if (f != null && register < PciConfigSpace.SIZE) {
            f.writeConfig(register, size, value);
        }
    }

    private final class ConfigAddressPort implements BusDevice {
        @Override
        public long read(long offset, int size) {
            synchronized (PciHost.this) {
                return size == 4 && offset == 0 ? configAddress & 0xFFFF_FFFFL : 0xFFFF_FFFFL;
            }
        }

        @Override
        public void write(long offset, int size, long value) {
            // only dword writes to 0xCF8 address the configuration space; bit 31 enables, bits 1:0 read as 0
            if (size == 4 && offset == 0) {
                synchronized (PciHost.this) {
                    configAddress = (int) value & 0x80FF_FFFC;
                }
            }
        }
    }

    private final class ConfigDataPort implements BusDevice {
        @Override
        public long read(long offset, int size) {
            int address;
            synchronized (PciHost.this) {
                address = configAddress;
            }
            if (address >= 0 || (offset & (size - 1)) != 0) {
                return size == 4 ? 0xFFFF_FFFFL : (1L << (8 * size)) - 1;
            }
            return readFrom((address >> 16) & 0xFF, (address >> 11) & 0x1F, (address >> 8) & 7,
                    (address & 0xFC) + (int) offset, size) & 0xFFFF_FFFFL;
        }

        @Override
        public void write(long offset, int size, long value) {
            int address;
            synchronized (PciHost.this) {
                address = configAddress;
            }
            if (address >= 0 || (offset & (size - 1)) != 0) {
                return;
            }
            writeTo((address >> 16) & 0xFF, (address >> 11) & 0x1F, (address >> 8) & 7,
                    (address & 0xFC) + (int) offset, size, (int) value);
        }
    }

    private final class EcamWindow implements BusDevice {
        @Override
        public long read(long offset, int size) {
            if (size == 8 || (offset & (size - 1)) != 0) {
                return -1L;
            }
            return readFrom(0, (int) (offset >> 15) & 0x1F, (int) (offset >> 12) & 7, (int) offset & 0xFFF, size) & 0xFFFF_FFFFL;
        }

        @Override
        public void write(long offset, int size, long value) {
            if (size == 8 || (offset & (size - 1)) != 0) {
                return;
            }
            writeTo(0, (int) (offset >> 15) & 0x1F, (int) (offset >> 12) & 7, (int) offset & 0xFFF, size, (int) value);
        }
    }
}
