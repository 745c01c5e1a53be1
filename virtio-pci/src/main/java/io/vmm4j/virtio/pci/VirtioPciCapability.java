package io.vmm4j.virtio.pci;

/** The virtio vendor-specific PCI capability (virtio 1.2 §4.1.4): cfg_type values and field offsets. */
public final class VirtioPciCapability {
    /** PCI capability ID for vendor-specific capabilities. */
    public static final int VENDOR_SPECIFIC_ID = 0x09;

    public static final int COMMON_CFG = 1;
    public static final int NOTIFY_CFG = 2;
    public static final int ISR_CFG = 3;
    public static final int DEVICE_CFG = 4;
    public static final int PCI_CFG = 5;

    // offsets from the capability's first byte (cap_vndr)
    public static final int CAP_LEN = 2;
    public static final int CFG_TYPE = 3;
    public static final int BAR = 4;
    public static final int ID = 5;
    public static final int OFFSET = 8;
    public static final int LENGTH = 12;
    /** notify_off_multiplier, in the NOTIFY_CFG capability. */
    public static final int NOTIFY_OFF_MULTIPLIER = 16;
    /** pci_cfg_data, in the PCI_CFG capability. */
    public static final int PCI_CFG_DATA = 16;

    private VirtioPciCapability() {
    }
}
