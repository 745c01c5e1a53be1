/* PCI configuration mechanism #1 (ports CF8/CFC) and firmware-style BAR assignment. */
#ifndef VMM4J_PCI_H
#define VMM4J_PCI_H

#include "guest.h"

#define PCI_MAX_DEVICES 32

struct pci_device {
    u8 slot;
    u16 vendor;
    u16 device;
    u32 class_code;
    u64 bar[6];        /* assigned addresses, 0 when unused (a 64-bit BAR fills i; i + 1 stays 0) */
    u64 bar_size[6];
};

u32 pci_read32(u8 slot, u8 offset);
u16 pci_read16(u8 slot, u8 offset);
u8 pci_read8(u8 slot, u8 offset);
void pci_write32(u8 slot, u8 offset, u32 value);
void pci_write16(u8 slot, u8 offset, u16 value);

/* Enumerates bus 0, sizes and places every memory BAR in [window, window + size), enables decoding; returns the count. */
int pci_enumerate(struct pci_device *out, int max, u64 window, u64 window_size);
/* The offset of the first capability with id at or after offset start (0: from the list head), or 0. */
u8 pci_find_capability(u8 slot, u8 id, u8 start);

#endif
