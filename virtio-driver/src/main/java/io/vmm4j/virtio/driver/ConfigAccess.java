package io.vmm4j.virtio.driver;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.virtio.pci.PciHost;

/** How a guest reaches PCI configuration space: mechanism #1 ports or the ECAM window. Bus 0, function 0. */
public interface ConfigAccess {
    int read(int slot, int offset, int size);

    void write(int slot, int offset, int size, int value);

    /** Configuration mechanism #1: a dword address at 0xCF8, data at 0xCFC + (offset & 3). */
    static ConfigAccess ports(Bus pio) {
        return new ConfigAccess() {
            private int address(int slot, int offset) {
                return 0x8000_0000 | (slot << 11) | (offset & 0xFC);
            }

            @Override
            public synchronized int read(int slot, int offset, int size) {
                pio.write(PciHost.CONFIG_ADDRESS_PORT, 4, address(slot, offset) & 0xFFFF_FFFFL);
                return (int) pio.read(PciHost.CONFIG_DATA_PORT + (offset & 3), size);
            }

            @Override
            public synchronized void write(int slot, int offset, int size, int value) {
                pio.write(PciHost.CONFIG_ADDRESS_PORT, 4, address(slot, offset) & 0xFFFF_FFFFL);
                pio.write(PciHost.CONFIG_DATA_PORT + (offset & 3), size, value & 0xFFFF_FFFFL);
            }
        };
    }

    /** ECAM: one MMIO access per config access. */
    static ConfigAccess ecam(Bus mmio, long base) {
        return new ConfigAccess() {
            @Override
            public int read(int slot, int offset, int size) {
                return (int) mmio.read(base + ((long) slot << 15) + offset, size);
            }

            @Override
            public void write(int slot, int offset, int size, int value) {
                mmio.write(base + ((long) slot << 15) + offset, size, value & 0xFFFF_FFFFL);
            }
        };
    }
}
