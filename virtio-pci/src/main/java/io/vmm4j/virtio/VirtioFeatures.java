package io.vmm4j.virtio;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Device-independent feature bits (virtio 1.2 §6 "Reserved Feature Bits") and naming of feature sets. */
public final class VirtioFeatures {
    public static final int INDIRECT_DESC = 28;
    public static final int EVENT_IDX = 29;
    public static final int VERSION_1 = 32;
    public static final int ACCESS_PLATFORM = 33;
    public static final int RING_PACKED = 34;
    public static final int IN_ORDER = 35;
    public static final int ORDER_PLATFORM = 36;
    public static final int SR_IOV = 37;
    public static final int NOTIFICATION_DATA = 38;
    public static final int NOTIF_CONFIG_DATA = 39;
    public static final int RING_RESET = 40;

    private static final Map<Integer, String> TRANSPORT_NAMES = Map.ofEntries(
            Map.entry(INDIRECT_DESC, "INDIRECT_DESC"), Map.entry(EVENT_IDX, "EVENT_IDX"),
            Map.entry(VERSION_1, "VERSION_1"), Map.entry(ACCESS_PLATFORM, "ACCESS_PLATFORM"),
            Map.entry(RING_PACKED, "RING_PACKED"), Map.entry(IN_ORDER, "IN_ORDER"),
            Map.entry(ORDER_PLATFORM, "ORDER_PLATFORM"), Map.entry(SR_IOV, "SR_IOV"),
            Map.entry(NOTIFICATION_DATA, "NOTIFICATION_DATA"), Map.entry(NOTIF_CONFIG_DATA, "NOTIF_CONFIG_DATA"),
            Map.entry(RING_RESET, "RING_RESET"));

    private VirtioFeatures() {
    }

    public static long bit(int feature) {
        return 1L << feature;
    }

    public static boolean has(long features, int feature) {
        return (features & (1L << feature)) != 0;
    }

    /** Names the bits of {@code features}: transport names, then {@code deviceNames}, else {@code bitN}. */
    public static List<String> names(long features, Map<Integer, String> deviceNames) {
        Map<Integer, String> all = new TreeMap<>(TRANSPORT_NAMES);
        all.putAll(deviceNames);
        List<String> out = new ArrayList<>();
        for (int b = 0; b < 64; b++) {
            if (has(features, b)) {
                out.add(all.getOrDefault(b, "bit" + b));
            }
        }
        return out;
    }
}
