package io.vmm4j.tap;

import io.vmm4j.core.linux.Errno;
import org.junit.jupiter.api.Test;

import static io.vmm4j.tap.TunIoctls.TUN_F_CSUM;
import static io.vmm4j.tap.TunIoctls.TUN_F_TSO4;
import static io.vmm4j.tap.TunIoctls.TUN_F_UFO;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What a user reads when a tap cannot be made: errno mapped to a remedy. Runs without privileges. */
class TapDeviceMessagesTest {
    @Test
    void epermOnTunsetiffSaysCapNetAdminAndOffersTheMemoryPort() {
        TapException e = TapDevice.setIffFailure("vtt1", 1, Errno.EPERM, null);
        assertEquals(Errno.EPERM, e.errno());
        String m = e.getMessage();
        assertTrue(m.startsWith("creating tap vtt1 needs CAP_NET_ADMIN: run as root or grant the capability"), m);
        assertTrue(m.contains("ip tuntap add dev vtt1 mode tap vnet_hdr user USER"), m);
        assertTrue(m.contains("use the in-memory port (MemoryPort)"), m);
        assertTrue(m.endsWith("(TUNSETIFF: EPERM, Operation not permitted)"), m);
        assertTrue(TapDevice.setIffFailure("vtt1", 4, Errno.EPERM, null).getMessage().contains("vnet_hdr multi_queue user"));
    }

    @Test
    void otherTunsetiffErrorsSayWhatIsInTheWay() {
        assertTrue(TapDevice.setIffFailure("eth0", 2, Errno.EINVAL, null).getMessage()
                .startsWith("a device named eth0 already exists and is not a multi-queue tap with a vnet header"));
        assertTrue(TapDevice.setIffFailure("vtt1", 1, Errno.EBUSY, null).getMessage()
                .startsWith("tap vtt1 is already open by someone else"));
        assertTrue(TapDevice.setIffFailure("vtt1", 1, Errno.ENOMEM, null).getMessage()
                .startsWith("creating tap vtt1 failed (TUNSETIFF: ENOMEM"));
    }

    @Test
    void missingTunDeviceSaysLoadTheModule() {
        TapException e = TapDevice.openFailure(Errno.ENOENT, null);
        assertEquals("cannot open /dev/net/tun: ENOENT (No such file or directory); the tun driver is not available: "
                + "load the tun module (modprobe tun)", e.getMessage());
        assertTrue(TapDevice.openFailure(Errno.ENODEV, null).getMessage().contains("modprobe tun"));
        assertTrue(TapDevice.openFailure(Errno.EACCES, null).getMessage().contains("run as root"));
    }

    @Test
    void openChecksItsArgumentsBeforeTouchingTheKernel() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> TapDevice.open("vt-name-too-long", 1, 12))
                .getMessage().contains("Linux allows at most 15"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> TapDevice.open("vt:0", 1, 12))
                .getMessage().contains("contains ':'"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> TapDevice.open("vtt1", 0, 12))
                .getMessage().contains("Linux allows 1 to 256"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> TapDevice.open("vtt1", 257, 12))
                .getMessage().contains("Linux allows 1 to 256"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> TapDevice.open("vtt1", 1, 8))
                .getMessage().contains("below the 10 bytes of struct virtio_net_hdr"));
    }

    @Test
    void offloadFlagsReadAsTheirHeaderNames() {
        assertEquals("none", TapDevice.describeOffloads(0));
        assertEquals("TUN_F_CSUM|TUN_F_TSO4|TUN_F_UFO", TapDevice.describeOffloads(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_UFO));
        assertEquals("TUN_F_CSUM|0x40000000", TapDevice.describeOffloads(TUN_F_CSUM | 1 << 30));
    }
}
