package io.vmm4j.tap;

import io.vmm4j.core.linux.Ioctl;

/** /dev/net/tun ioctl requests and flags (include/uapi/linux/if_tun.h, if.h). */
public final class TunIoctls {
    public static final int IFNAMSIZ = 16;
    /** {@code sizeof(struct ifreq)} on x86-64. */
    public static final long SIZEOF_IFREQ = 40;

    public static final long TUNSETIFF = Ioctl.iow('T', 202, 4);
    public static final long TUNSETPERSIST = Ioctl.iow('T', 203, 4);
    public static final long TUNGETFEATURES = Ioctl.ior('T', 207, 4);
    public static final long TUNSETOFFLOAD = Ioctl.iow('T', 208, 4);
    public static final long TUNGETIFF = Ioctl.ior('T', 210, 4);
    public static final long TUNGETVNETHDRSZ = Ioctl.ior('T', 215, 4);
    public static final long TUNSETVNETHDRSZ = Ioctl.iow('T', 216, 4);
    public static final long TUNSETQUEUE = Ioctl.iow('T', 217, 4);

    public static final short IFF_TAP = 0x0002;
    public static final short IFF_NO_PI = 0x1000;
    public static final short IFF_VNET_HDR = 0x4000;
    public static final short IFF_MULTI_QUEUE = 0x0100;
    public static final short IFF_ATTACH_QUEUE = 0x0200;
    public static final short IFF_DETACH_QUEUE = 0x0400;

    // TUNSETOFFLOAD flags: what the reader of the tap (our guest) can receive
    public static final int TUN_F_CSUM = 0x01;
    public static final int TUN_F_TSO4 = 0x02;
    public static final int TUN_F_TSO6 = 0x04;
    public static final int TUN_F_TSO_ECN = 0x08;
    public static final int TUN_F_UFO = 0x10;

    private TunIoctls() {
    }
}
