package io.vmm4j.virtio.pci;

import java.util.List;

/**
 * A read-only copy of a transport's common configuration (virtio 1.2 §4.1.4.3), for management
 * and logs on any thread: device_status, the features the device offers and the driver wrote,
 * config_msix_vector, config_generation, and every queue's registers.
 *
 * <p>Taken without waiting for the vCPU thread: each value is as it was when read, and each queue's
 * record is consistent in itself. {@code driverFeatures} is the driver's choice, accepted only once
 * device_status has FEATURES_OK.
 */
public record CommonConfigSnapshot(int deviceStatus, long deviceFeatures, long driverFeatures, int configMsixVector,
                                   int configGeneration, List<QueueRegisters> queues) {
    public CommonConfigSnapshot {
        queues = List.copyOf(queues);
    }
}
