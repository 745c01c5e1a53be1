package io.vmm4j.virtio.driver;

import io.vmm4j.virtio.pci.PciConfigSpace;

import java.util.ArrayList;
import java.util.List;

/**
 * What firmware does before an OS driver runs: scan bus 0, size every BAR by writing all-ones
 * and reading back the mask, place each BAR naturally aligned in an MMIO window, and enable
 * memory decode and bus mastering.
 */
public final class PciFirmware {
    /** A found device with its assigned BAR addresses (0 where a BAR is absent). */
    public record Device(int slot, int vendorId, int deviceId, int classCode, long[] barAddress, long[] barSize) {
    }

    private PciFirmware() {
    }

    /** Scans and assigns; BARs go into {@code [windowBase, windowBase + windowSize)}. */
    public static List<Device> enumerateAndAssign(ConfigAccess cfg, long windowBase, long windowSize) {
        List<Device> out = new ArrayList<>();
        long next = windowBase;
        for (int slot = 0; slot < 32; slot++) {
            int id = cfg.read(slot, PciConfigSpace.VENDOR_ID, 4);
            if ((id & 0xFFFF) == 0xFFFF) {
                continue;
            }
            int classCode = cfg.read(slot, PciConfigSpace.REVISION_ID, 4) >>> 8;
            long[] address = new long[6];
            long[] size = new long[6];
            // decode off while sizing (the all-ones pattern must not be decoded)
            int command = cfg.read(slot, PciConfigSpace.COMMAND, 2);
            cfg.write(slot, PciConfigSpace.COMMAND, 2, command & ~PciConfigSpace.COMMAND_MEMORY);
            for (int bar = 0; bar < 6; bar++) {
                int off = PciConfigSpace.BAR0 + 4 * bar;
                int original = cfg.read(slot, off, 4);
                boolean io = (original & 1) != 0;
                boolean is64 = !io && ((original >> 1) & 3) == 2;
                cfg.write(slot, off, 4, -1);
                long mask = cfg.read(slot, off, 4) & 0xFFFF_FFFFL;
                if (is64) {
                    cfg.write(slot, off + 4, 4, -1);
                    mask |= (cfg.read(slot, off + 4, 4) & 0xFFFF_FFFFL) << 32;
                } else {
                    mask |= 0xFFFF_FFFF_0000_0000L;
                }
                mask &= io ? ~0x3L : ~0xFL;
                if (mask == 0 || mask == 0xFFFF_FFFF_0000_0000L || io) {
                    cfg.write(slot, off, 4, original);
                    if (is64) {
                        bar++;
                    }
                    continue;
                }
                long barSize = -mask;
                long placed = (next + barSize - 1) & -barSize;
                if (placed + barSize > windowBase + windowSize) {
                    throw new IllegalStateException(String.format("PCI window [0x%x, +0x%x) is too small for BAR %d of slot %d (0x%x bytes)",
                            windowBase, windowSize, bar, slot, barSize));
                }
                next = placed + barSize;
                cfg.write(slot, off, 4, (int) placed);
                if (is64) {
                    cfg.write(slot, off + 4, 4, (int) (placed >>> 32));
                }
                address[bar] = placed;
                size[bar] = barSize;
                if (is64) {
                    bar++;
                }
            }
            cfg.write(slot, PciConfigSpace.COMMAND, 2,
                    command | PciConfigSpace.COMMAND_MEMORY | PciConfigSpace.COMMAND_BUS_MASTER);
            out.add(new Device(slot, id & 0xFFFF, id >>> 16, classCode, address, size));
        }
        return out;
    }
}
