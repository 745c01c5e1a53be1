package io.vmm4j.cli.vm;

import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.pci.VirtioPciTransport;

import java.util.List;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What management reports about one virtio device beyond what the transport exposes: the last
 * feature negotiation, the queues the driver enabled (size, ring addresses, MSI-X vector) and how
 * often the device entered DEVICE_NEEDS_RESET. Fed by the transport as an observer on the vCPU
 * (and data-plane) threads; read by anyone.
 */
public final class VirtioDeviceState implements VirtioPciTransport.Observer {
    /** One enabled queue as the driver set it up before DRIVER_OK. */
    public record Queue(int index, int size, long desc, long driver, long device, int msixVector) {
    }

    private final ConcurrentSkipListMap<Integer, Queue> queues = new ConcurrentSkipListMap<>();
    private final AtomicLong needsResetCount = new AtomicLong();
    private volatile long offered;
    private volatile long acked;
    private volatile String featureProblem;
    private volatile String lastError;

    @Override
    public void statusChanged(int oldStatus, int newStatus) {
        if (newStatus == 0) {
            queues.clear(); // a reset forgets the rings
            acked = 0;
            featureProblem = null;
        }
        if ((newStatus & DeviceStatus.DEVICE_NEEDS_RESET) != 0 && (oldStatus & DeviceStatus.DEVICE_NEEDS_RESET) == 0) {
            needsResetCount.incrementAndGet();
        }
    }

    @Override
    public void featuresNegotiated(long offered, long acked, boolean accepted, String problem) {
        this.offered = offered;
        this.acked = accepted ? acked : 0;
        this.featureProblem = problem;
    }

    @Override
    public void queueActivated(int queue, int size, long desc, long driver, long device, int msixVector) {
        queues.put(queue, new Queue(queue, size, desc, driver, device, msixVector));
    }

    @Override
    public void deviceError(String reason) {
        lastError = reason;
    }

    /** The queues enabled at the last DRIVER_OK (empty before it and after a reset). */
    public List<Queue> queues() {
        return List.copyOf(queues.values());
    }

    /** Features accepted at the last FEATURES_OK (0 before, after a refusal and after a reset). */
    public long ackedFeatures() {
        return acked;
    }

    public long offeredFeatures() {
        return offered;
    }

    /** Why the last FEATURES_OK was refused, or null. */
    public String featureProblem() {
        return featureProblem;
    }

    /** How many times the device entered DEVICE_NEEDS_RESET (a ring or activation error). */
    public long needsResetCount() {
        return needsResetCount.get();
    }

    /** The reason of the last device error, or null. */
    public String lastError() {
        return lastError;
    }
}
