package io.vmm4j.virtio.pci;

/**
 * Register offsets of {@code struct virtio_pci_common_cfg} (virtio 1.2 §4.1.4.3), shared by the
 * device side ({@link CommonConfigRegisters}) and the guest-side driver.
 */
public final class CommonConfig {
    public static final int DEVICE_FEATURE_SELECT = 0x00;
    public static final int DEVICE_FEATURE = 0x04;
    public static final int DRIVER_FEATURE_SELECT = 0x08;
    public static final int DRIVER_FEATURE = 0x0C;
    public static final int CONFIG_MSIX_VECTOR = 0x10;
    public static final int NUM_QUEUES = 0x12;
    public static final int DEVICE_STATUS = 0x14;
    public static final int CONFIG_GENERATION = 0x15;
    public static final int QUEUE_SELECT = 0x16;
    public static final int QUEUE_SIZE = 0x18;
    public static final int QUEUE_MSIX_VECTOR = 0x1A;
    public static final int QUEUE_ENABLE = 0x1C;
    public static final int QUEUE_NOTIFY_OFF = 0x1E;
    public static final int QUEUE_DESC = 0x20;
    public static final int QUEUE_DRIVER = 0x28;
    public static final int QUEUE_DEVICE = 0x30;
    public static final int QUEUE_NOTIFY_DATA = 0x38;
    public static final int QUEUE_RESET = 0x3A;
    /** Size of the structure with every virtio 1.2 field. */
    public static final int SIZE = 0x3C;

    /** {offset, width} of every field, in order. */
    static final int[][] FIELDS = {
            {DEVICE_FEATURE_SELECT, 4}, {DEVICE_FEATURE, 4}, {DRIVER_FEATURE_SELECT, 4}, {DRIVER_FEATURE, 4},
            {CONFIG_MSIX_VECTOR, 2}, {NUM_QUEUES, 2}, {DEVICE_STATUS, 1}, {CONFIG_GENERATION, 1},
            {QUEUE_SELECT, 2}, {QUEUE_SIZE, 2}, {QUEUE_MSIX_VECTOR, 2}, {QUEUE_ENABLE, 2}, {QUEUE_NOTIFY_OFF, 2},
            {QUEUE_DESC, 8}, {QUEUE_DRIVER, 8}, {QUEUE_DEVICE, 8}, {QUEUE_NOTIFY_DATA, 2}, {QUEUE_RESET, 2},
    };

    private CommonConfig() {
    }

    /** The {offset, width} of the field holding byte {@code offset}, or null past the structure. */
    static int[] fieldAt(int offset) {
        for (int[] f : FIELDS) {
            if (offset >= f[0] && offset < f[0] + f[1]) {
                return f;
            }
        }
        return null;
    }
}
