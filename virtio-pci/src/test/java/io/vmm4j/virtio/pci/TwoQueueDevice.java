package io.vmm4j.virtio.pci;

import io.vmm4j.virtio.ActivationContext;
import io.vmm4j.virtio.VirtioDevice;

import java.util.concurrent.atomic.AtomicInteger;

/** A device model with two queues (256 and 64 entries), the offer it is given, and no device configuration. */
final class TwoQueueDevice implements VirtioDevice {
    private final long offered;
    final AtomicInteger activations = new AtomicInteger();

    TwoQueueDevice(long offered) {
        this.offered = offered;
    }

    @Override
    public int deviceType() {
        return 0x2A;
    }

    @Override
    public long offeredFeatures() {
        return offered;
    }

    @Override
    public int queueCount() {
        return 2;
    }

    @Override
    public int maxQueueSize(int index) {
        return index == 0 ? 256 : 64;
    }

    @Override
    public int pciClassCode() {
        return 0xFF0000;
    }

    @Override
    public int configSize() {
        return 0;
    }

    @Override
    public long readConfig(int offset, int size) {
        return 0;
    }

    @Override
    public void writeConfig(int offset, int size, long value) {
    }

    @Override
    public void activate(ActivationContext context) {
        activations.incrementAndGet();
    }

    @Override
    public void reset() {
    }
}
