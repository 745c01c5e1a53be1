#include "virtio.h"

/* §4.1.4 capability types and common configuration layout (§4.1.4.3) */
#define PCI_CAP_VENDOR        0x09
#define PCI_CAP_MSIX          0x11
#define CFG_COMMON            1
#define CFG_NOTIFY            2
#define CFG_ISR               3
#define CFG_DEVICE            4

#define COMMON_DFSELECT       0x00
#define COMMON_DF             0x04
#define COMMON_GFSELECT       0x08
#define COMMON_GF             0x0c
#define COMMON_MSIX           0x10
#define COMMON_NUMQ           0x12
#define COMMON_STATUS         0x14
#define COMMON_CFGGENERATION  0x15
#define COMMON_Q_SELECT       0x16
#define COMMON_Q_SIZE         0x18
#define COMMON_Q_MSIX         0x1a
#define COMMON_Q_ENABLE       0x1c
#define COMMON_Q_NOFF         0x1e
#define COMMON_Q_DESCLO       0x20
#define COMMON_Q_DESCHI       0x24
#define COMMON_Q_AVAILLO      0x28
#define COMMON_Q_AVAILHI      0x2c
#define COMMON_Q_USEDLO       0x30
#define COMMON_Q_USEDHI       0x34

#define LAPIC_MSI_ADDRESS     0xfee00000u   /* SDM 3A §11.11.1: destination APIC 0, physical mode */

int virtio_probe(struct virtio_device *dev, struct pci_device *pci) {
    memset(dev, 0, sizeof *dev);
    dev->pci = pci;
    for (u8 at = pci_find_capability(pci->slot, PCI_CAP_VENDOR, 0); at; at = pci_find_capability(pci->slot, PCI_CAP_VENDOR, at)) {
        u8 type = pci_read8(pci->slot, (u8)(at + 3));
        u8 bar = pci_read8(pci->slot, (u8)(at + 4));
        u32 offset = pci_read32(pci->slot, (u8)(at + 8));
        if (bar > 5 || !pci->bar[bar]) {
            continue;
        }
        u64 address = pci->bar[bar] + offset;
        switch (type) {
        case CFG_COMMON: if (!dev->common) dev->common = address; break;
        case CFG_NOTIFY:
            if (!dev->notify_base) {
                dev->notify_base = address;
                dev->notify_multiplier = pci_read32(pci->slot, (u8)(at + 16));
            }
            break;
        case CFG_ISR: if (!dev->isr) dev->isr = address; break;
        case CFG_DEVICE: if (!dev->device_config) dev->device_config = address; break;
        default: break;
        }
    }
    u8 msix = pci_find_capability(pci->slot, PCI_CAP_MSIX, 0);
    if (msix) {
        u16 control = pci_read16(pci->slot, (u8)(msix + 2));
        u32 table = pci_read32(pci->slot, (u8)(msix + 4));
        u32 pba = pci_read32(pci->slot, (u8)(msix + 8));
        dev->msix_capability = msix;
        dev->msix_vectors = (u16)((control & 0x7ff) + 1);
        dev->msix_table = pci->bar[table & 7] + (table & ~7u);
        dev->msix_pba = pci->bar[pba & 7] + (pba & ~7u);
    }
    return dev->common && dev->notify_base ? 0 : -1;
}

u8 virtio_status(struct virtio_device *dev) { return mmio_read8(dev->common + COMMON_STATUS); }

static void add_status(struct virtio_device *dev, u8 bits) {
    mmio_write8(dev->common + COMMON_STATUS, (u8)(virtio_status(dev) | bits));
}

int virtio_negotiate(struct virtio_device *dev, u64 wanted) {
    mmio_write8(dev->common + COMMON_STATUS, 0);       /* reset (§4.1.4.3.2: reads 0 once done) */
    while (virtio_status(dev) != 0) {
        __asm__ volatile("pause");
    }
    add_status(dev, STATUS_ACKNOWLEDGE);
    add_status(dev, STATUS_DRIVER);
    u64 offered = 0;
    for (u32 select = 0; select < 2; select++) {
        mmio_write32(dev->common + COMMON_DFSELECT, select);
        offered |= (u64)mmio_read32(dev->common + COMMON_DF) << (32 * select);
    }
    u64 accepted = offered & wanted;
    if (!(accepted & (1ull << VIRTIO_F_VERSION_1))) {
        add_status(dev, STATUS_FAILED);
        return -1;
    }
    for (u32 select = 0; select < 2; select++) {
        mmio_write32(dev->common + COMMON_GFSELECT, select);
        mmio_write32(dev->common + COMMON_GF, (u32)(accepted >> (32 * select)));
    }
    add_status(dev, STATUS_FEATURES_OK);
    if (!(virtio_status(dev) & STATUS_FEATURES_OK)) {   /* §3.1.1 step 6: the device may refuse */
        add_status(dev, STATUS_FAILED);
        return -1;
    }
    dev->features = accepted;
    return 0;
}

void virtio_mask_vector(struct virtio_device *dev, int entry, int masked) {
    mmio_write32(dev->msix_table + 16u * (u32)entry + 12, masked ? 1 : 0);
}

void virtio_enable_msix(struct virtio_device *dev, int entries, u8 first_vector) {
    u8 cap = dev->msix_capability;
    u16 control = pci_read16(dev->pci->slot, (u8)(cap + 2));
    pci_write16(dev->pci->slot, (u8)(cap + 2), control | 0x8000 | 0x4000);   /* enable, function masked while programming */
    for (int i = 0; i < entries; i++) {
        u64 entry = dev->msix_table + 16u * (u32)i;  /* PCI 3.0 §6.8.2.8: address lo, hi, data, vector control */
        mmio_write32(entry, LAPIC_MSI_ADDRESS);
        mmio_write32(entry + 4, 0);
        mmio_write32(entry + 8, (u32)(first_vector + i));   /* fixed delivery, edge */
        virtio_mask_vector(dev, i, 0);
    }
    pci_write16(dev->pci->slot, (u8)(cap + 2), (u16)((control | 0x8000) & ~0x4000));
}

int virtio_set_config_vector(struct virtio_device *dev, u16 entry) {
    mmio_write16(dev->common + COMMON_MSIX, entry);
    return mmio_read16(dev->common + COMMON_MSIX) == entry ? 0 : -1;
}

static void write64(u64 lo_address, u64 value) {
    mmio_write32(lo_address, (u32)value);
    mmio_write32(lo_address + 4, (u32)(value >> 32));
}

int virtio_setup_queue(struct virtio_device *dev, struct virtqueue *q, u16 index, u16 max_size, u16 msix) {
    mmio_write16(dev->common + COMMON_Q_SELECT, index);
    u16 size = mmio_read16(dev->common + COMMON_Q_SIZE);
    if (size == 0) {
        return -1;
    }
    if (size > max_size) {
        size = max_size;
    }
    memset(q, 0, sizeof *q);
    q->index = index;
    q->size = size;
    q->event_idx = (dev->features >> VIRTIO_F_EVENT_IDX) & 1;
    /* §2.7: descriptor table 16-aligned, driver area 2-aligned, device area 4-aligned; a page each here */
    q->desc = heap_alloc(16u * size, 4096);
    q->avail = heap_alloc(6u + 2u * size, 4096);
    q->used = heap_alloc(6u + 8u * size, 4096);
    mmio_write16(dev->common + COMMON_Q_SIZE, size);
    write64(dev->common + COMMON_Q_DESCLO, (u64)q->desc);
    write64(dev->common + COMMON_Q_AVAILLO, (u64)q->avail);
    write64(dev->common + COMMON_Q_USEDLO, (u64)q->used);
    if (msix != MSIX_NO_VECTOR) {
        mmio_write16(dev->common + COMMON_Q_MSIX, msix);
        if (mmio_read16(dev->common + COMMON_Q_MSIX) != msix) {
            return -1;   /* §4.1.5.1.2: the device could not allocate it */
        }
    }
    u16 notify_off = mmio_read16(dev->common + COMMON_Q_NOFF);
    q->notify_address = dev->notify_base + (u64)notify_off * dev->notify_multiplier;
    mmio_write16(dev->common + COMMON_Q_ENABLE, 1);
    return 0;
}

void virtio_driver_ok(struct virtio_device *dev) { add_status(dev, STATUS_DRIVER_OK); }

u8 virtio_config8(struct virtio_device *dev, u32 offset) { return mmio_read8(dev->device_config + offset); }

u16 virtio_config16(struct virtio_device *dev, u32 offset) { return mmio_read16(dev->device_config + offset); }

int vq_publish(struct virtqueue *q) {
    u16 old = q->published;
    u16 now = q->next_avail;
    if (old == now) {
        return 0;
    }
    barrier();                    /* ring entries before the index (x86 keeps stores in order) */
    q->avail->idx = now;
    q->published = now;
    full_fence();                 /* the index store before the load of the device's wish (§2.7.10) */
    int kick;
    if (q->event_idx) {
        u16 avail_event = *vq_avail_event(q);
        kick = (u16)(now - avail_event - 1) < (u16)(now - old);   /* vring_need_event */
    } else {
        kick = !(q->used->flags & VRING_USED_F_NO_NOTIFY);
    }
    if (kick) {
        mmio_write16(q->notify_address, q->index);   /* §4.1.4.4: the queue index, 16 bits */
        results->kicks++;
    }
    return kick;
}

volatile struct vring_used_elem *vq_next_used(struct virtqueue *q) {
    if (q->last_used == q->used->idx) {
        return 0;
    }
    barrier();                    /* the index before the entry (loads stay in order on x86) */
    return &q->used->ring[q->last_used++ & (q->size - 1)];
}

void vq_enable_interrupts(struct virtqueue *q) {
    if (q->event_idx) {
        *vq_used_event(q) = q->last_used;
    }
    q->avail->flags = 0;
}
