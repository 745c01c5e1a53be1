/* virtio-rng (virtio 1.2 §5.4): one queue, one device-writable buffer, read once at boot. */
#include "virtio.h"

#define VECTOR_RNG_REQUEST 0x38

static volatile u32 rng_interrupts;

static void on_rng(void) { rng_interrupts++; }

int rng_read(struct pci_device *pci, u8 *out, u32 length) {
    static struct virtio_device dev;
    static struct virtqueue q;
    if (virtio_probe(&dev, pci) != 0 || virtio_negotiate(&dev, 1ull << VIRTIO_F_VERSION_1) != 0) {
        return -1;
    }
    set_irq_handler(VECTOR_RNG_REQUEST, on_rng);
    if (dev.msix_capability && dev.msix_vectors >= 2) {
        virtio_enable_msix(&dev, 2, VECTOR_RNG_REQUEST - 1);  /* entry 0: config (unused), entry 1: the queue */
        virtio_set_config_vector(&dev, MSIX_NO_VECTOR);
    }
    if (virtio_setup_queue(&dev, &q, 0, 16, dev.msix_capability ? 1 : MSIX_NO_VECTOR) != 0) {
        return -1;
    }
    u8 *buffer = heap_alloc(length, 16);
    vq_enable_interrupts(&q);
    virtio_driver_ok(&dev);
    vq_add_buffer(&q, 0, (u64)buffer, length, 1);
    vq_publish(&q);
    u64 deadline = rdtsc() + ms_to_tsc(2000);
    u32 id, written;
    while (!vq_next_used(&q, &id, &written)) {
        if (rdtsc() >= deadline) {
            return -1;
        }
        wait_until(deadline);
    }
    u32 got = written < length ? written : length;
    memcpy(out, buffer, got);
    mmio_write8(dev.common + 0x14, 0);   /* reset: done with the device */
    return (int)got;
}
