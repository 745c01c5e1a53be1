package io.vmm4j.vhost;

import io.vmm4j.virtio.VirtioDeviceHost;

import java.util.List;

/** The transport's side of a device, as a data-plane test needs it: ring errors (DEVICE_NEEDS_RESET) land in a list. */
public final class RecordingDeviceHost implements VirtioDeviceHost {
    private final List<String> deviceErrors;

    /** @param deviceErrors where each {@link #deviceError} reason goes (a thread-safe list: data-plane threads report) */
    public RecordingDeviceHost(List<String> deviceErrors) {
        this.deviceErrors = deviceErrors;
    }

    @Override
    public void configChanged() {
    }

    @Override
    public void deviceError(String reason) {
        deviceErrors.add(reason);
    }
}
