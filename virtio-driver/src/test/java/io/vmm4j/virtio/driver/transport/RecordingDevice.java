package io.vmm4j.virtio.driver.transport;

import io.vmm4j.virtio.ActivationContext;
import io.vmm4j.virtio.VirtioDevice;
import io.vmm4j.virtio.VirtioDeviceHost;
import io.vmm4j.virtio.VirtioFeatures;

import java.util.ArrayList;
import java.util.List;

/** A test double of a device model: two queues, 8 bytes of config, and a log of what the transport did to it. */
final class RecordingDevice implements VirtioDevice {
    static final int TYPE = 0x2A;
    static final int FEATURE_A = 0;
    static final int FEATURE_NEEDS_A = 1; // offered, but only valid together with FEATURE_A

    final List<String> log = new ArrayList<>();
    final byte[] config = {1, 2, 3, 4, 5, 6, 7, 8};
    volatile ActivationContext context;
    VirtioDeviceHost host;

    @Override
    public int deviceType() {
        return TYPE;
    }

    @Override
    public long offeredFeatures() {
        return VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX)
                | VirtioFeatures.bit(FEATURE_A) | VirtioFeatures.bit(FEATURE_NEEDS_A);
    }

    @Override
    public String validateFeatures(long acked) {
        return VirtioFeatures.has(acked, FEATURE_NEEDS_A) && !VirtioFeatures.has(acked, FEATURE_A)
                ? "feature 1 requires feature 0" : null;
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
        return 0x020000;
    }

    @Override
    public int configSize() {
        return config.length;
    }

    @Override
    public long readConfig(int offset, int size) {
        long v = 0;
        for (int i = 0; i < size; i++) {
            v |= (config[offset + i] & 0xFFL) << (8 * i);
        }
        return v;
    }

    @Override
    public void writeConfig(int offset, int size, long value) {
        log.add("config-write " + offset + "/" + size);
        for (int i = 0; i < size; i++) {
            config[offset + i] = (byte) (value >>> (8 * i));
        }
    }

    @Override
    public void bind(VirtioDeviceHost host) {
        this.host = host;
    }

    @Override
    public void activate(ActivationContext context) {
        this.context = context;
        log.add("activate");
    }

    @Override
    public void reset() {
        context = null;
        log.add("reset");
    }
}
