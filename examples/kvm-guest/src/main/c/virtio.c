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
    if (size > VQ_MAX_SIZE) {
        size = VQ_MAX_SIZE;
    }
    memset(q, 0, sizeof *q);
    q->index = index;
    q->size = size;
    q->event_idx = (dev->features >> VIRTIO_F_EVENT_IDX) & 1;
    q->packed = (dev->features >> VIRTIO_F_RING_PACKED) & 1;
    mmio_write16(dev->common + COMMON_Q_SIZE, size);
    if (q->packed) {
        /* §2.8.10.1: descriptor ring 16-aligned, zeroed (§2.8.13); the event structures 4-aligned, 0 = ENABLE */
        q->ring = heap_alloc(16u * size, 4096);
        q->driver_event = heap_alloc(sizeof *q->driver_event, 4);
        q->device_event = heap_alloc(sizeof *q->device_event, 4);
        q->avail_wrap = 1;
        q->used_wrap = 1;   /* §2.8.1: both wrap counters start at 1 */
        q->published_pos = PACKED_WRAP_BIT;
        /* §4.1.4.3: with RING_PACKED queue_desc/driver/device name the ring and the two event structures */
        write64(dev->common + COMMON_Q_DESCLO, (u64)q->ring);
        write64(dev->common + COMMON_Q_AVAILLO, (u64)q->driver_event);
        write64(dev->common + COMMON_Q_USEDLO, (u64)q->device_event);
    } else {
        /* §2.7: descriptor table 16-aligned, driver area 2-aligned, device area 4-aligned; a page each here */
        q->desc = heap_alloc(16u * size, 4096);
        q->avail = heap_alloc(6u + 2u * size, 4096);
        q->used = heap_alloc(6u + 8u * size, 4096);
        write64(dev->common + COMMON_Q_DESCLO, (u64)q->desc);
        write64(dev->common + COMMON_Q_AVAILLO, (u64)q->avail);
        write64(dev->common + COMMON_Q_USEDLO, (u64)q->used);
    }
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

/* A packed position (offset | wrap << 15) counted modulo 2 * size; the first lap (wrap 1) starts at 0. */
static u32 packed_linear(u16 position, u16 size) {
    u32 offset = position & (PACKED_WRAP_BIT - 1);
    return (position & PACKED_WRAP_BIT) ? offset : offset + size;
}

/* §2.8.10: whether moving the avail position from old to now passed the descriptor event names (vring_need_event, packed) */
static int packed_need_event(u16 event, u16 now, u16 old, u16 size) {
    u32 laps = 2u * size;
    u32 e = packed_linear(event, size), n = packed_linear(now, size), o = packed_linear(old, size);
    return (n + 2 * laps - e - 1) % laps < (n + laps - o) % laps;
}

static int packed_publish(struct virtqueue *q) {
    if (q->pending == 0) {
        return 0;
    }
    barrier();                    /* every other store of the batch before the first flags (x86 keeps stores in order) */
    q->ring[q->pending_slot].flags = q->pending_flags;   /* §2.8.21.1: the first buffer's flags last expose the batch */
    q->pending = 0;
    u16 old = q->published_pos;
    u16 now = (u16)(q->avail_offset | (q->avail_wrap ? PACKED_WRAP_BIT : 0));
    q->published_pos = now;
    full_fence();                 /* §2.8.21.3.1: the flags store before the load of the device's structure */
    u16 flags = q->device_event->flags;
    u16 off_wrap = q->device_event->off_wrap;
    if (flags == RING_EVENT_FLAGS_DISABLE) {
        return 0;
    }
    /* DESC only counts with EVENT_IDX and an offset inside the ring; any other value kicks, which is always safe */
    if (flags == RING_EVENT_FLAGS_DESC && q->event_idx && (off_wrap & (PACKED_WRAP_BIT - 1)) < q->size) {
        return packed_need_event(off_wrap, now, old, q->size);
    }
    return 1;
}

int vq_publish(struct virtqueue *q) {
    int kick;
    if (q->packed) {
        kick = packed_publish(q);
    } else {
        u16 old = q->published;
        u16 now = q->next_avail;
        if (old == now) {
            return 0;
        }
        barrier();                    /* ring entries before the index (x86 keeps stores in order) */
        q->avail->idx = now;
        q->published = now;
        full_fence();                 /* the index store before the load of the device's wish (§2.7.10) */
        if (q->event_idx) {
            u16 avail_event = *vq_avail_event(q);
            kick = (u16)(now - avail_event - 1) < (u16)(now - old);   /* vring_need_event */
        } else {
            kick = !(q->used->flags & VRING_USED_F_NO_NOTIFY);
        }
    }
    if (kick) {
        mmio_write16(q->notify_address, q->index);   /* §4.1.4.4: the queue index, 16 bits */
        results->kicks++;
    }
    return kick;
}

void vq_add_buffer(struct virtqueue *q, u16 id, u64 addr, u32 len, int writable) {
    if (!q->packed) {
        q->desc[id].addr = addr;
        q->desc[id].len = len;
        q->desc[id].flags = writable ? VRING_DESC_F_WRITE : 0;
        q->avail->ring[q->next_avail & (q->size - 1)] = id;
        q->next_avail++;
        return;
    }
    volatile struct pvirtq_desc *d = &q->ring[q->avail_offset];
    /* §2.8.1: available = AVAIL equal to the driver ring wrap counter, USED its inverse */
    u16 flags = (u16)((q->avail_wrap ? PACKED_DESC_F_AVAIL : PACKED_DESC_F_USED) | (writable ? VRING_DESC_F_WRITE : 0));
    d->addr = addr;
    d->len = len;
    d->id = id;
    if (q->pending++ == 0) {
        q->pending_slot = q->avail_offset;
        q->pending_flags = flags;
    } else {
        d->flags = flags;         /* invisible to the device until the batch's first flags are stored */
    }
    q->in_flight[id] = 1;
    q->outstanding++;
    if (++q->avail_offset == q->size) {
        q->avail_offset = 0;
        q->avail_wrap ^= 1;
    }
}

static int packed_is_used(struct virtqueue *q, u16 flags) {
    /* §2.8.1: used = AVAIL and USED both equal to the device ring wrap counter */
    u16 both = flags & (PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED);
    return q->used_wrap ? both == (PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED) : both == 0;
}

int vq_has_used(struct virtqueue *q) {
    if (q->packed) {
        return packed_is_used(q, q->ring[q->used_offset].flags);
    }
    return q->last_used != q->used->idx;
}

int vq_next_used(struct virtqueue *q, u32 *id, u32 *len) {
    if (!q->packed) {
        if (q->last_used == q->used->idx) {
            return 0;
        }
        barrier();                /* the index before the entry (loads stay in order on x86) */
        volatile struct vring_used_elem *e = &q->used->ring[q->last_used++ & (q->size - 1)];
        *id = e->id;
        *len = e->len;
        return 1;
    }
    volatile struct pvirtq_desc *d = &q->ring[q->used_offset];
    if (!packed_is_used(q, d->flags)) {
        return 0;
    }
    barrier();                    /* the flags before id and len (loads stay in order on x86) */
    u32 used_id = d->id;
    if (used_id >= q->size || !q->in_flight[used_id]) {
        fail(STATUS_DEVICE_ERROR, "virtio queue %u: the device used buffer id %u at slot %u, which is not in flight "
             "(queue size %u, virtio 1.2 §2.8.22)", q->index, used_id, q->used_offset, q->size);
    }
    q->in_flight[used_id] = 0;
    q->outstanding--;
    *id = used_id;
    *len = d->len;
    if (++q->used_offset == q->size) {   /* each buffer of this guest takes one slot (§2.8.6) */
        q->used_offset = 0;
        q->used_wrap ^= 1;
    }
    return 1;
}

void vq_enable_interrupts(struct virtqueue *q) {
    if (q->packed) {
        if (q->event_idx) {
            /* §2.8.10: an interrupt when the device writes the used descriptor at the next used slot */
            u32 off_wrap = q->used_offset | (q->used_wrap ? PACKED_WRAP_BIT : 0);
            *(volatile u32 *)q->driver_event = off_wrap | (u32)RING_EVENT_FLAGS_DESC << 16;   /* one store: off_wrap, flags */
        } else {
            q->driver_event->flags = RING_EVENT_FLAGS_ENABLE;
        }
        return;
    }
    if (q->event_idx) {
        *vq_used_event(q) = q->last_used;
    }
    q->avail->flags = 0;
}

u16 vq_in_flight(struct virtqueue *q) {
    return q->packed ? q->outstanding : (u16)(q->next_avail - q->last_used);
}

void vq_enable_interrupts_after(struct virtqueue *q, u16 count) {
    if (count == 0 || count > q->size) {
        count = 1;
    }
    if (q->packed) {
        if (q->event_idx) {
            /* §2.8.10: the slot count - 1 past the next used one, with the device ring wrap counter it will have there */
            u32 offset = (u32)q->used_offset + count - 1;
            u32 wrap = q->used_wrap;
            if (offset >= q->size) {
                offset -= q->size;
                wrap ^= 1;
            }
            *(volatile u32 *)q->driver_event = (offset | (wrap ? PACKED_WRAP_BIT : 0)) | (u32)RING_EVENT_FLAGS_DESC << 16;
        } else {
            q->driver_event->flags = RING_EVENT_FLAGS_ENABLE;
        }
        return;
    }
    if (q->event_idx) {
        /* §2.7.10: the device interrupts when it moves used idx past used_event */
        *vq_used_event(q) = (u16)(q->last_used + count - 1);
    }
    q->avail->flags = 0;
}

void vq_disable_interrupts(struct virtqueue *q) {
    if (q->packed) {
        q->driver_event->flags = RING_EVENT_FLAGS_DISABLE;
        return;
    }
    q->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
    if (q->event_idx) {
        /* half the index space ahead: the device passes it only after 32768 more used buffers (vring_need_event) */
        *vq_used_event(q) = (u16)(q->last_used + 0x8000);
    }
}

/*
 * The batch forms of vq_next_used and vq_add_buffer for the flood loops: the queue's indices live in
 * locals for the whole batch (with -fno-strict-aliasing every ring store could alias them), which
 * matters where each guest instruction is emulated (kvm_pvm) and costs about a microsecond.
 */
u16 vq_take_used(struct virtqueue *q, u16 *ids, u32 *lens, u16 max) {
    u16 n = 0;
    u16 size = q->size;
    if (!q->packed) {
        u16 last = q->last_used;
        u16 avail_used = (u16)(q->used->idx - last);
        barrier();                /* the index before the entries (loads stay in order on x86) */
        volatile struct vring_used_elem *ring = q->used->ring;
        while (n < max && avail_used) {
            volatile struct vring_used_elem *e = &ring[last & (size - 1)];
            u32 id = e->id;
            last++;
            avail_used--;
            if (id >= size) {
                continue;         /* no buffer of ours (a split ring's device broke it): nothing to hand back */
            }
            ids[n] = (u16)id;
            if (lens) lens[n] = e->len;
            n++;
        }
        q->last_used = last;
        return n;
    }
    u16 offset = q->used_offset;
    u8 wrap = q->used_wrap;
    u16 want = wrap ? (u16)(PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED) : 0;
    volatile struct pvirtq_desc *ring = q->ring;
    while (n < max) {
        volatile struct pvirtq_desc *d = &ring[offset];
        if ((d->flags & (PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED)) != want) {
            break;                /* §2.8.1: used = AVAIL and USED both equal to the device ring wrap counter */
        }
        barrier();                /* the flags before id and len */
        u32 id = d->id;
        if (id >= size || !q->in_flight[id]) {
            q->used_offset = offset;
            q->used_wrap = wrap;
            fail(STATUS_DEVICE_ERROR, "virtio queue %u: the device used buffer id %u at slot %u, which is not in flight "
                 "(queue size %u, virtio 1.2 §2.8.22)", q->index, id, offset, size);
        }
        q->in_flight[id] = 0;
        ids[n] = (u16)id;
        if (lens) lens[n] = d->len;
        n++;
        if (++offset == size) {   /* each buffer of this guest takes one slot (§2.8.6) */
            offset = 0;
            wrap ^= 1;
            want = wrap ? (u16)(PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED) : 0;
        }
    }
    q->used_offset = offset;
    q->used_wrap = wrap;
    q->outstanding = (u16)(q->outstanding - n);
    return n;
}

void vq_add_buffers(struct virtqueue *q, const u16 *ids, u16 count, u64 base, u32 stride, u32 len, int writable) {
    if (count == 0) {
        return;
    }
    u16 size = q->size;
    if (!q->packed) {
        volatile struct vring_desc *desc = q->desc;
        volatile u16 *ring = q->avail->ring;
        u16 next = q->next_avail;
        u16 flags = writable ? VRING_DESC_F_WRITE : 0;
        for (u16 i = 0; i < count; i++) {
            u16 id = ids[i];
            desc[id].addr = base + (u64)id * stride;
            desc[id].len = len;
            desc[id].flags = flags;
            ring[next & (size - 1)] = id;
            next++;
        }
        q->next_avail = next;
        return;
    }
    volatile struct pvirtq_desc *ring = q->ring;
    u16 offset = q->avail_offset;
    u8 wrap = q->avail_wrap;
    u16 write = writable ? VRING_DESC_F_WRITE : 0;
    u16 i = 0;
    if (q->pending == 0) {
        /* §2.8.21.1: the batch's first flags are stored last, at publish */
        u16 id = ids[0];
        ring[offset].addr = base + (u64)id * stride;
        ring[offset].len = len;
        ring[offset].id = id;
        q->pending_slot = offset;
        q->pending_flags = (u16)((wrap ? PACKED_DESC_F_AVAIL : PACKED_DESC_F_USED) | write);
        q->in_flight[id] = 1;
        if (++offset == size) {
            offset = 0;
            wrap ^= 1;
        }
        i = 1;
    }
    u16 flags = (u16)((wrap ? PACKED_DESC_F_AVAIL : PACKED_DESC_F_USED) | write);
    for (; i < count; i++) {
        u16 id = ids[i];
        volatile struct pvirtq_desc *d = &ring[offset];
        d->addr = base + (u64)id * stride;
        d->len = len;
        d->id = id;
        d->flags = flags;         /* invisible to the device until the batch's first flags are stored */
        q->in_flight[id] = 1;
        if (++offset == size) {
            offset = 0;
            wrap ^= 1;
            flags = (u16)((wrap ? PACKED_DESC_F_AVAIL : PACKED_DESC_F_USED) | write);
        }
    }
    q->pending = (u16)(q->pending + count);
    q->outstanding = (u16)(q->outstanding + count);
    q->avail_offset = offset;
    q->avail_wrap = wrap;
}
