/*
 * A virtio 1.x driver core over the modern PCI transport (virtio 1.2 §4.1) with split virtqueues
 * (§2.7), or packed ones (§2.8) when VIRTIO_F_RING_PACKED is negotiated. The vq_* calls hide which.
 */
#ifndef VMM4J_VIRTIO_H
#define VMM4J_VIRTIO_H

#include "guest.h"
#include "pci.h"

#define VIRTIO_F_EVENT_IDX      29
#define VIRTIO_F_VERSION_1      32
#define VIRTIO_F_RING_PACKED    34

/* §2.1 device status */
#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER      2
#define STATUS_DRIVER_OK   4
#define STATUS_FEATURES_OK 8
#define STATUS_NEEDS_RESET 64
#define STATUS_FAILED      128

#define VRING_DESC_F_NEXT        1
#define VRING_DESC_F_WRITE       2
#define VRING_USED_F_NO_NOTIFY   1
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define MSIX_NO_VECTOR           0xffff

/* §2.8.1, §2.8.10: packed descriptor flags and event suppression flags */
#define PACKED_DESC_F_AVAIL      (1u << 7)
#define PACKED_DESC_F_USED       (1u << 15)
#define RING_EVENT_FLAGS_ENABLE  0
#define RING_EVENT_FLAGS_DISABLE 1
#define RING_EVENT_FLAGS_DESC    2
#define PACKED_WRAP_BIT          (1u << 15)

/* the largest queue this guest sets up (its packed rings keep per-buffer state in the queue) */
#define VQ_MAX_SIZE              256

struct vring_desc {
    u64 addr;
    u32 len;
    u16 flags;
    u16 next;
};

struct vring_avail {
    u16 flags;
    u16 idx;
    u16 ring[];   /* then used_event */
};

struct vring_used_elem {
    u32 id;
    u32 len;
};

struct vring_used {
    u16 flags;
    u16 idx;
    struct vring_used_elem ring[];  /* then avail_event */
};

/* §2.8.13: a packed ring descriptor */
struct pvirtq_desc {
    u64 addr;
    u32 len;
    u16 id;
    u16 flags;
};

/* §2.8.14: an event suppression structure; off_wrap = offset in bits 0-14, wrap counter in bit 15 */
struct pvirtq_event_suppress {
    u16 off_wrap;
    u16 flags;
};

struct virtqueue {
    u16 index;
    u16 size;
    int event_idx;
    int packed;
    /* split (§2.7) */
    volatile struct vring_desc *desc;
    volatile struct vring_avail *avail;
    volatile struct vring_used *used;
    u16 next_avail;     /* the driver's shadow of avail->idx */
    u16 published;      /* avail->idx as last published */
    u16 last_used;      /* next used entry to look at */
    /* packed (§2.8): every buffer of this guest is one descriptor, its id the caller's buffer number */
    volatile struct pvirtq_desc *ring;
    volatile struct pvirtq_event_suppress *driver_event;   /* the driver writes it: used buffer notifications */
    volatile struct pvirtq_event_suppress *device_event;   /* the device writes it: kicks */
    u16 avail_offset;   /* next slot to fill, and the driver ring wrap counter there */
    u8 avail_wrap;
    u16 used_offset;    /* next slot the device writes a used descriptor to, and the device ring wrap counter */
    u8 used_wrap;
    u16 pending;        /* buffers added since the last publish */
    u16 pending_slot;   /* the first of them: its flags are stored last, at publish */
    u16 pending_flags;
    u16 published_pos;  /* avail position (offset | wrap << 15) at the last publish */
    u16 outstanding;    /* buffers added and not yet taken back used */
    u8 in_flight[VQ_MAX_SIZE];
    u64 notify_address;
};

struct virtio_device {
    struct pci_device *pci;
    u64 common;
    u64 notify_base;
    u32 notify_multiplier;
    u64 isr;
    u64 device_config;
    u8 msix_capability;
    u16 msix_vectors;
    u64 msix_table;
    u64 msix_pba;
    u64 features;
};

/* Finds the capabilities and maps the structures; returns 0 on success. */
int virtio_probe(struct virtio_device *dev, struct pci_device *pci);
/* Reset, ACKNOWLEDGE, DRIVER, features (wanted & offered, must include VERSION_1), FEATURES_OK; returns 0 on success. */
int virtio_negotiate(struct virtio_device *dev, u64 wanted);
/* Enables MSI-X: every entry to the local APIC with vector first_vector + entry, unmasked. */
void virtio_enable_msix(struct virtio_device *dev, int entries, u8 first_vector);
void virtio_mask_vector(struct virtio_device *dev, int entry, int masked);
int virtio_set_config_vector(struct virtio_device *dev, u16 entry);
/* Allocates and enables queue index with up to max_size entries and MSI-X entry msix (MSIX_NO_VECTOR: none). */
int virtio_setup_queue(struct virtio_device *dev, struct virtqueue *q, u16 index, u16 max_size, u16 msix);
void virtio_driver_ok(struct virtio_device *dev);
u8 virtio_status(struct virtio_device *dev);
u8 virtio_config8(struct virtio_device *dev, u32 offset);
u16 virtio_config16(struct virtio_device *dev, u32 offset);

/* §2.7.10: used_event follows the driver ring, avail_event the device ring */
static inline volatile u16 *vq_used_event(struct virtqueue *q) {
    return (volatile u16 *)((volatile u8 *)q->avail + 4 + 2u * q->size);
}
static inline volatile u16 *vq_avail_event(struct virtqueue *q) {
    return (volatile u16 *)((volatile u8 *)q->used + 4 + 8u * q->size);
}

/* Publishes the buffers added since the last publish and notifies the device unless it asked not to (§2.7.10, §2.8.10); returns 1 if it kicked. */
int vq_publish(struct virtqueue *q);
/*
 * Adds buffer id (0..size-1, at most once in flight) of one segment, device-writable or readable;
 * the device sees it at the next vq_publish. Split: descriptor id is the buffer; packed: the next slot carries id.
 */
void vq_add_buffer(struct virtqueue *q, u16 id, u64 addr, u32 len, int writable);
/* Takes the next used buffer: 1 with its id and written length, or 0 if the device has not used more. */
int vq_next_used(struct virtqueue *q, u32 *id, u32 *len);
/* Whether the device has used a buffer not taken yet. */
int vq_has_used(struct virtqueue *q);
/* Asks for an interrupt at the next used buffer (§2.7.7: used_event with EVENT_IDX; §2.8.10: DESC with EVENT_IDX, else ENABLE). */
void vq_enable_interrupts(struct virtqueue *q);
/*
 * Asks for an interrupt once count (>= 1) more buffers are used, like Linux's virtqueue_enable_cb_delayed: with EVENT_IDX
 * the event index or descriptor points that far ahead; without it the device may interrupt at the next one.
 */
void vq_enable_interrupts_after(struct virtqueue *q, u16 count);
/* Asks for no interrupts (§2.7.7: NO_INTERRUPT, which a device with EVENT_IDX may ignore; §2.8.10: DISABLE). */
void vq_disable_interrupts(struct virtqueue *q);
/* Takes up to max used buffers at once, as vq_next_used does one: ids into ids[], written lengths into lens[] (unless 0); returns how many. */
u16 vq_take_used(struct virtqueue *q, u16 *ids, u32 *lens, u16 max);
/* Adds count buffers at once, as vq_add_buffer does one: buffer ids[i] at base + ids[i] * stride, len bytes, device-writable or readable. */
void vq_add_buffers(struct virtqueue *q, const u16 *ids, u16 count, u64 base, u32 stride, u32 len, int writable);
/* Buffers added and not yet taken back used. */
u16 vq_in_flight(struct virtqueue *q);

#endif
