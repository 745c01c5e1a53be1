package io.vmm4j.vhost.kernel;

import io.vmm4j.core.testing.HeaderConstants;
import org.junit.jupiter.api.Test;

class VhostConstantsTest {
    @Test
    void vhostIoctlsAndStructsMatchHeaders() throws Exception {
        new HeaderConstants().include("linux/vhost.h")
                .expect("VHOST_VIRTIO", VhostIoctls.VHOST_VIRTIO)
                .expect("sizeof(struct vhost_vring_state)", VhostIoctls.SIZEOF_VRING_STATE)
                .expect("sizeof(struct vhost_vring_file)", VhostIoctls.SIZEOF_VRING_FILE)
                .expect("sizeof(struct vhost_vring_addr)", VhostIoctls.SIZEOF_VRING_ADDR)
                .expect("sizeof(struct vhost_memory)", VhostIoctls.SIZEOF_MEMORY)
                .expect("sizeof(struct vhost_memory_region)", VhostIoctls.SIZEOF_MEMORY_REGION)
                .expect("VHOST_GET_FEATURES", VhostIoctls.GET_FEATURES).expect("VHOST_SET_FEATURES", VhostIoctls.SET_FEATURES)
                .expect("VHOST_SET_OWNER", VhostIoctls.SET_OWNER).expect("VHOST_RESET_OWNER", VhostIoctls.RESET_OWNER)
                .expect("VHOST_SET_MEM_TABLE", VhostIoctls.SET_MEM_TABLE).expect("VHOST_SET_LOG_BASE", VhostIoctls.SET_LOG_BASE)
                .expect("VHOST_SET_VRING_NUM", VhostIoctls.SET_VRING_NUM).expect("VHOST_SET_VRING_ADDR", VhostIoctls.SET_VRING_ADDR)
                .expect("VHOST_SET_VRING_BASE", VhostIoctls.SET_VRING_BASE).expect("VHOST_GET_VRING_BASE", VhostIoctls.GET_VRING_BASE)
                .expect("VHOST_SET_VRING_KICK", VhostIoctls.SET_VRING_KICK).expect("VHOST_SET_VRING_CALL", VhostIoctls.SET_VRING_CALL)
                .expect("VHOST_SET_VRING_ERR", VhostIoctls.SET_VRING_ERR).expect("VHOST_NET_SET_BACKEND", VhostIoctls.NET_SET_BACKEND)
                .expect("VHOST_NET_F_VIRTIO_NET_HDR", VhostIoctls.VHOST_NET_F_VIRTIO_NET_HDR)
                .expect("VHOST_F_LOG_ALL", VhostIoctls.VHOST_F_LOG_ALL)
                .expectLayout("vhost_vring_state", VhostLayouts.VRING_STATE)
                .expectLayout("vhost_vring_file", VhostLayouts.VRING_FILE)
                .expectLayout("vhost_vring_addr", VhostLayouts.VRING_ADDR)
                .expectLayout("vhost_memory_region", VhostLayouts.MEMORY_REGION)
                .expectLayout("vhost_memory", VhostLayouts.MEMORY)
                .verify();
    }
}
