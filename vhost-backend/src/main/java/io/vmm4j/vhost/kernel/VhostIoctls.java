package io.vmm4j.vhost.kernel;

import io.vmm4j.core.linux.Ioctl;

/** /dev/vhost-net ioctl requests and struct sizes (include/uapi/linux/vhost.h, vhost_types.h). */
public final class VhostIoctls {
    public static final int VHOST_VIRTIO = 0xAF;

    public static final long SIZEOF_VRING_STATE = 8;
    public static final long SIZEOF_VRING_FILE = 8;
    public static final long SIZEOF_VRING_ADDR = 40;
    public static final long SIZEOF_MEMORY = 8;
    public static final long SIZEOF_MEMORY_REGION = 32;

    public static final long GET_FEATURES = Ioctl.ior(VHOST_VIRTIO, 0x00, 8);
    public static final long SET_FEATURES = Ioctl.iow(VHOST_VIRTIO, 0x00, 8);
    public static final long SET_OWNER = Ioctl.io(VHOST_VIRTIO, 0x01);
    public static final long RESET_OWNER = Ioctl.io(VHOST_VIRTIO, 0x02);
    public static final long SET_MEM_TABLE = Ioctl.iow(VHOST_VIRTIO, 0x03, SIZEOF_MEMORY);
    public static final long SET_LOG_BASE = Ioctl.iow(VHOST_VIRTIO, 0x04, 8);
    public static final long SET_VRING_NUM = Ioctl.iow(VHOST_VIRTIO, 0x10, SIZEOF_VRING_STATE);
    public static final long SET_VRING_ADDR = Ioctl.iow(VHOST_VIRTIO, 0x11, SIZEOF_VRING_ADDR);
    public static final long SET_VRING_BASE = Ioctl.iow(VHOST_VIRTIO, 0x12, SIZEOF_VRING_STATE);
    public static final long GET_VRING_BASE = Ioctl.iowr(VHOST_VIRTIO, 0x12, SIZEOF_VRING_STATE);
    public static final long SET_VRING_KICK = Ioctl.iow(VHOST_VIRTIO, 0x20, SIZEOF_VRING_FILE);
    public static final long SET_VRING_CALL = Ioctl.iow(VHOST_VIRTIO, 0x21, SIZEOF_VRING_FILE);
    public static final long SET_VRING_ERR = Ioctl.iow(VHOST_VIRTIO, 0x22, SIZEOF_VRING_FILE);
    public static final long NET_SET_BACKEND = Ioctl.iow(VHOST_VIRTIO, 0x30, SIZEOF_VRING_FILE);

    /** Feature bit 27: vhost adds the virtio-net header itself; never with an IFF_VNET_HDR tap. */
    public static final int VHOST_NET_F_VIRTIO_NET_HDR = 27;
    public static final int VHOST_F_LOG_ALL = 26;

    private VhostIoctls() {
    }
}
