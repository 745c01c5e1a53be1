package io.vmm4j.tap;

import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The kernel's counters of a real tap, as {@link LinkCounters} reads them. */
class LinkCountersTest {
    private static final int HEADER = TapDevice.VNET_HEADER_V1_SIZE;

    @Test
    void framesWrittenToTheTapFdCountAsReceivedByTheKernel() {
        HostRequirements.requireRoot("creating a tap needs CAP_NET_ADMIN");
        HostRequirements.requireFile(TapDevice.TUN_PATH, "load the tun module: modprobe tun");
        byte[] guestMac = Frames.randomGuestMac();
        try (TapDevice tap = TapDevice.open(ScratchNames.tap(), 1, HEADER)) {
            tap.setUp();
            LinkCounters before = LinkCounters.read(tap.name());
            for (int i = 0; i < 3; i++) {
                tap.send(0, Frames.withZeroHeader(HEADER, Frames.arpRequest(guestMac, Frames.ipv4("10.78.0.2"), Frames.ipv4("10.78.0.1"))));
            }
            LinkCounters after = LinkCounters.read(tap.name());
            assertEquals(3, after.rxPackets() - before.rxPackets(), before + " -> " + after);
            assertEquals(0, after.rxDropped() - before.rxDropped(), before + " -> " + after);
        }
    }

    @Test
    void anInterfaceThatIsNotThereIsNamedWithTheFileThatWasMissing() {
        TapException e = assertThrows(TapException.class, () -> LinkCounters.read("vmm4jgone0"));
        assertTrue(e.getMessage().contains("/sys/class/net/vmm4jgone0/statistics/rx_packets"), e.getMessage());
        assertTrue(e.getMessage().contains("network namespace"), e.getMessage());
    }

    @Test
    void aNameLinuxWouldRefuseIsRefusedBeforeAnyPathIsBuilt() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LinkCounters.read("../../etc"));
        assertTrue(e.getMessage().contains("'../../etc'"), e.getMessage());
    }
}
