package io.vmm4j.virtio.pci;

/**
 * One virtqueue's fields of the common configuration (virtio 1.2 §4.1.4.3) as the driver set them:
 * queue_size, queue_msix_vector, queue_enable, and the guest-physical addresses of the Descriptor
 * Area (queue_desc), the Driver Area (queue_driver) and the Device Area (queue_device).
 *
 * <p>Immutable: the register file swaps in a new record on every write, so a record read on any
 * thread is one consistent queue.
 */
public record QueueRegisters(int index, int size, int msixVector, boolean enabled, long desc, long driver, long device) {

    /** §4.1.4.3: after a reset queue_size holds the maximum, no vector, the queue disabled, addresses 0. */
    static QueueRegisters atReset(int index, int maxSize) {
        return new QueueRegisters(index, maxSize, MsixTable.NO_VECTOR, false, 0, 0, 0);
    }

    /** queue_notify_off: each queue has a doorbell of its own, notify_off_multiplier × index into the notify region. */
    public int notifyOffset() {
        return index;
    }

    QueueRegisters withSize(int value) {
        return new QueueRegisters(index, value, msixVector, enabled, desc, driver, device);
    }

    QueueRegisters withMsixVector(int value) {
        return new QueueRegisters(index, size, value, enabled, desc, driver, device);
    }

    QueueRegisters enable() {
        return new QueueRegisters(index, size, msixVector, true, desc, driver, device);
    }

    QueueRegisters withDesc(long value) {
        return new QueueRegisters(index, size, msixVector, enabled, value, driver, device);
    }

    QueueRegisters withDriver(long value) {
        return new QueueRegisters(index, size, msixVector, enabled, desc, value, device);
    }

    QueueRegisters withDevice(long value) {
        return new QueueRegisters(index, size, msixVector, enabled, desc, driver, value);
    }
}
