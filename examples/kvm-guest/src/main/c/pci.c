#include "pci.h"

#define CONFIG_ADDRESS 0xcf8
#define CONFIG_DATA    0xcfc
#define PCI_COMMAND    0x04
#define PCI_STATUS     0x06
#define PCI_BAR0       0x10
#define PCI_CAP_PTR    0x34
#define COMMAND_MEMORY       (1u << 1)
#define COMMAND_BUS_MASTER   (1u << 2)
#define COMMAND_INTX_DISABLE (1u << 10)
#define STATUS_CAPABILITIES  (1u << 4)

/* PCI 3.0 §3.2.2.3.2: enable bit, bus, device, function, dword-aligned register */
static void select(u8 slot, u8 offset) {
    outl(CONFIG_ADDRESS, 0x80000000u | ((u32)slot << 11) | (offset & 0xfc));
}

u32 pci_read32(u8 slot, u8 offset) { select(slot, offset); return inl(CONFIG_DATA); }
u16 pci_read16(u8 slot, u8 offset) { select(slot, offset); return inw(CONFIG_DATA + (offset & 2)); }
u8 pci_read8(u8 slot, u8 offset) { select(slot, offset); return inb(CONFIG_DATA + (offset & 3)); }
void pci_write32(u8 slot, u8 offset, u32 value) { select(slot, offset); outl(CONFIG_DATA, value); }
void pci_write16(u8 slot, u8 offset, u16 value) { select(slot, offset); outw(CONFIG_DATA + (offset & 2), value); }

int pci_enumerate(struct pci_device *out, int max, u64 window, u64 window_size) {
    u64 next = window;
    int found = 0;
    for (u8 slot = 0; slot < 32 && found < max; slot++) {
        u32 id = pci_read32(slot, 0);
        if ((id & 0xffff) == 0xffff) {
            continue; /* master abort: nobody there */
        }
        struct pci_device *d = &out[found++];
        memset(d, 0, sizeof *d);
        d->slot = slot;
        d->vendor = (u16)id;
        d->device = (u16)(id >> 16);
        d->class_code = pci_read32(slot, 0x08) >> 8;
        u16 command = pci_read16(slot, PCI_COMMAND);
        pci_write16(slot, PCI_COMMAND, command & ~COMMAND_MEMORY); /* no decoding while sizing (PCI 3.0 §6.2.5.1) */
        for (int i = 0; i < 6; i++) {
            u8 reg = (u8)(PCI_BAR0 + 4 * i);
            u32 original = pci_read32(slot, reg);
            if (original & 1) {
                continue; /* an I/O BAR: our devices have none */
            }
            int is64 = ((original >> 1) & 3) == 2;
            pci_write32(slot, reg, 0xffffffffu);
            u64 mask = pci_read32(slot, reg) & ~0xfull;
            if (is64) {
                pci_write32(slot, reg + 4, 0xffffffffu);
                mask |= (u64)pci_read32(slot, reg + 4) << 32;
            } else {
                mask |= 0xffffffff00000000ull;
            }
            u64 size = ~mask + 1;
            if ((mask & 0xffffffffull) == 0 || size == 0) {
                pci_write32(slot, reg, original);
                if (is64) i++;
                continue; /* not implemented */
            }
            u64 at = (next + size - 1) & ~(size - 1);
            if (at + size > window + window_size) {
                fail(STATUS_PANIC, "PCI window [0x%lx, +0x%lx) is full at slot %u BAR%d", (unsigned long)window,
                     (unsigned long)window_size, slot, i);
            }
            pci_write32(slot, reg, (u32)at);
            if (is64) {
                pci_write32(slot, reg + 4, (u32)(at >> 32));
            }
            d->bar[i] = at;
            d->bar_size[i] = size;
            next = at + size;
            if (is64) i++;
        }
        pci_write16(slot, PCI_COMMAND, (u16)(command | COMMAND_MEMORY | COMMAND_BUS_MASTER | COMMAND_INTX_DISABLE));
    }
    return found;
}

u8 pci_find_capability(u8 slot, u8 id, u8 start) {
    if (!(pci_read16(slot, PCI_STATUS) & STATUS_CAPABILITIES)) {
        return 0;
    }
    u8 at = start ? pci_read8(slot, (u8)(start + 1)) : pci_read8(slot, PCI_CAP_PTR);
    for (int guard = 0; at && guard < 48; guard++) {
        if (pci_read8(slot, at) == id) {
            return at;
        }
        at = pci_read8(slot, (u8)(at + 1));
    }
    return 0;
}
