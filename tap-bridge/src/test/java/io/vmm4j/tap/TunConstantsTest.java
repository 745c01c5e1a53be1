package io.vmm4j.tap;

import io.vmm4j.core.testing.HeaderConstants;
import org.junit.jupiter.api.Test;

class TunConstantsTest {
    @Test
    void tunIoctlsAndFlagsMatchHeaders() throws Exception {
        new HeaderConstants().include("sys/ioctl.h", "linux/if.h", "linux/if_tun.h")
                .expect("IFNAMSIZ", TunIoctls.IFNAMSIZ).expect("sizeof(struct ifreq)", TunIoctls.SIZEOF_IFREQ)
                .expect("TUNSETIFF", TunIoctls.TUNSETIFF).expect("TUNSETPERSIST", TunIoctls.TUNSETPERSIST)
                .expect("TUNGETFEATURES", TunIoctls.TUNGETFEATURES).expect("TUNSETOFFLOAD", TunIoctls.TUNSETOFFLOAD)
                .expect("TUNGETIFF", TunIoctls.TUNGETIFF).expect("TUNGETVNETHDRSZ", TunIoctls.TUNGETVNETHDRSZ)
                .expect("TUNSETVNETHDRSZ", TunIoctls.TUNSETVNETHDRSZ).expect("TUNSETQUEUE", TunIoctls.TUNSETQUEUE)
                .expect("IFF_TAP", TunIoctls.IFF_TAP).expect("IFF_NO_PI", TunIoctls.IFF_NO_PI)
                .expect("IFF_VNET_HDR", TunIoctls.IFF_VNET_HDR).expect("IFF_MULTI_QUEUE", TunIoctls.IFF_MULTI_QUEUE)
                .expect("IFF_ATTACH_QUEUE", TunIoctls.IFF_ATTACH_QUEUE).expect("IFF_DETACH_QUEUE", TunIoctls.IFF_DETACH_QUEUE)
                .expect("TUN_F_CSUM", TunIoctls.TUN_F_CSUM).expect("TUN_F_TSO4", TunIoctls.TUN_F_TSO4)
                .expect("TUN_F_TSO6", TunIoctls.TUN_F_TSO6).expect("TUN_F_TSO_ECN", TunIoctls.TUN_F_TSO_ECN)
                .expect("TUN_F_UFO", TunIoctls.TUN_F_UFO)
                .verify();
    }
}
