package io.vmm4j.virtio;

import java.util.ArrayList;
import java.util.List;

/** The device status field's bits (virtio 1.2 §2.1). */
public final class DeviceStatus {
    public static final int ACKNOWLEDGE = 1;
    public static final int DRIVER = 2;
    public static final int DRIVER_OK = 4;
    public static final int FEATURES_OK = 8;
    public static final int DEVICE_NEEDS_RESET = 0x40;
    public static final int FAILED = 0x80;

    private DeviceStatus() {
    }

    /** e.g. {@code ACKNOWLEDGE|DRIVER|FEATURES_OK}, or {@code RESET} for 0. */
    public static String describe(int status) {
        if (status == 0) {
            return "RESET";
        }
        List<String> parts = new ArrayList<>();
        String[] names = {"ACKNOWLEDGE", "DRIVER", "DRIVER_OK", "FEATURES_OK", "bit4", "bit5", "DEVICE_NEEDS_RESET", "FAILED"};
        for (int b = 0; b < 8; b++) {
            if ((status & (1 << b)) != 0) {
                parts.add(names[b]);
            }
        }
        return String.join("|", parts);
    }
}
