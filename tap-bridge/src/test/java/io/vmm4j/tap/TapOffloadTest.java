package io.vmm4j.tap;

import io.vmm4j.core.linux.Errno;
import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static io.vmm4j.tap.TunIoctls.TUN_F_CSUM;
import static io.vmm4j.tap.TunIoctls.TUN_F_TSO4;
import static io.vmm4j.tap.TunIoctls.TUN_F_TSO6;
import static io.vmm4j.tap.TunIoctls.TUN_F_TSO_ECN;
import static io.vmm4j.tap.TunIoctls.TUN_F_UFO;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * TUNSETOFFLOAD as the kernel reports it back through {@code ethtool -k}: what the tap may hand
 * its reader unchecksummed or unsegmented shows up as the tap's own transmit features.
 *
 * <p>Mapping observed (Linux 6.18, ethtool 6.1; tun.c set_offload):
 * <ul>
 *   <li>TUN_F_CSUM → tx-checksum-ip-generic, so tx-checksumming: on</li>
 *   <li>TUN_F_TSO4 → tx-tcp-segmentation; TUN_F_TSO6 → tx-tcp6-segmentation;
 *       TUN_F_TSO_ECN → tx-tcp-ecn-segmentation; tcp-segmentation-offload reads on when any of them is</li>
 *   <li>TUN_F_UFO with TUN_F_CSUM is accepted and dropped: no netdev feature since UFO left the kernel (4.14)</li>
 *   <li>without TUN_F_CSUM every other flag is EINVAL; TUN_F_TSO_ECN without TSO4/TSO6 is EINVAL; unknown bits are EINVAL</li>
 * </ul>
 */
class TapOffloadTest {
    private static final int ALL_TCP = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    private static final Pattern FEATURE = Pattern.compile("^\\s*([\\w-]+): (on|off)", Pattern.MULTILINE);

    @BeforeEach
    void requireTapAndEthtool() {
        HostRequirements.requireRoot("creating taps and network namespaces needs CAP_NET_ADMIN");
        HostRequirements.requireFile(TapDevice.TUN_PATH, "load the tun module: modprobe tun");
        HostRequirements.requireCommand("ethtool", "ethtool");
    }

    /** flags; then tx-checksumming, tcp-segmentation-offload, tx-tcp-segmentation, tx-tcp6-segmentation, tx-tcp-ecn-segmentation. */
    static Stream<Arguments> acceptedOffloads() {
        return Stream.of(
                Arguments.of(offloads(0), false, false, false, false, false),
                Arguments.of(offloads(TUN_F_CSUM), true, false, false, false, false),
                Arguments.of(offloads(TUN_F_CSUM | TUN_F_TSO4), true, true, true, false, false),
                Arguments.of(offloads(TUN_F_CSUM | TUN_F_TSO6), true, true, false, true, false),
                Arguments.of(offloads(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6), true, true, true, true, false),
                Arguments.of(offloads(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN), true, true, true, true, true),
                Arguments.of(offloads(TUN_F_CSUM | TUN_F_TSO6 | TUN_F_TSO_ECN), true, true, false, true, true),
                Arguments.of(offloads(TUN_F_CSUM | TUN_F_UFO), true, false, false, false, false));
    }

    private static Named<Integer> offloads(int flags) {
        return Named.of(TapDevice.describeOffloads(flags), flags);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("acceptedOffloads")
    void offloadsShowAsTheTapsTransmitFeatures(int flags, boolean csum, boolean tso, boolean tso4, boolean tso6, boolean ecn) {
        try (NetNamespace ns = NetNamespace.create(ScratchNames.namespace());
             TapDevice tap = TapDevice.open(ScratchNames.tap(), 1, TapDevice.VNET_HEADER_V1_SIZE)) {
            tap.moveToNamespace(ns);
            // everything on first, so the row proves features are cleared as well as set
            tap.setOffloads(ALL_TCP);
            assertFeatures(ns, tap, true, true, true, true, true, "after " + TapDevice.describeOffloads(ALL_TCP));

            tap.setOffloads(flags);
            assertEquals(flags, tap.offloads());
            assertFeatures(ns, tap, csum, tso, tso4, tso6, ecn, "after " + TapDevice.describeOffloads(flags));
            assertEquals("off", features(ns, tap).get("tx-udp-segmentation"), "TUN_F_UFO maps to no feature");
        }
    }

    @Test
    void kernelRejectsOffloadsThatNeedCsumOrTsoAndKeepsTheOldOnes() {
        try (NetNamespace ns = NetNamespace.create(ScratchNames.namespace());
             TapDevice tap = TapDevice.open(ScratchNames.tap(), 1, TapDevice.VNET_HEADER_V1_SIZE)) {
            tap.moveToNamespace(ns);
            tap.setOffloads(TUN_F_CSUM | TUN_F_TSO4);
            for (int rejected : new int[] {TUN_F_TSO4, TUN_F_UFO, TUN_F_TSO_ECN, TUN_F_CSUM | TUN_F_TSO_ECN, TUN_F_CSUM | (1 << 30)}) {
                TapException e = assertThrows(TapException.class, () -> tap.setOffloads(rejected));
                assertEquals(Errno.EINVAL, e.errno(), e.getMessage());
                assertTrue(e.getMessage().contains(TapDevice.describeOffloads(rejected)) && e.getMessage().contains(tap.name()),
                        e.getMessage());
                assertEquals(TUN_F_CSUM | TUN_F_TSO4, tap.offloads());
                assertFeatures(ns, tap, true, true, true, false, false, "after rejected " + TapDevice.describeOffloads(rejected));
            }
        }
    }

    /**
     * What TUN_F_CSUM means on the wire: a UDP datagram from the namespace reaches the reader with
     * VIRTIO_NET_HDR_F_NEEDS_CSUM and csum_start/csum_offset pointing at the UDP checksum; without
     * it the kernel fills in the checksum and the header stays zero.
     */
    @Test
    void csumOffloadHandsTheUdpChecksumToTheReader() {
        int header = TapDevice.VNET_HEADER_V1_SIZE;
        byte[] guestIp = Frames.ipv4("10.77.9.2");
        byte[] guestMac = Frames.randomGuestMac();
        try (NetNamespace ns = NetNamespace.create(ScratchNames.namespace());
             TapDevice tap = TapDevice.open(ScratchNames.tap(), 1, header)) {
            tap.moveToNamespace(ns);
            tap.addAddress("10.77.9.1/24");
            tap.setUp();
            ns.ip("add a static neighbour for the guest", "neigh", "add", "10.77.9.2", "lladdr", Frames.mac(guestMac),
                    "dev", tap.name(), "nud", "permanent");
            for (int flags : new int[] {0, TUN_F_CSUM}) {
                tap.setOffloads(flags);
                ns.exec("bash", "-c", "printf vmm4j > /dev/udp/10.77.9.2/4789").orThrow("send a UDP datagram to the guest");
                byte[] got = FrameWaiter.await(tap, 0, f -> Frames.isIpv4To(f, 17, guestIp), 1000, "UDP datagram");
                byte[] frame = Frames.ethernetPart(got, got.length, header);
                int udp = Frames.ipv4PayloadOffset(frame);
                if (flags == 0) {
                    assertEquals(0, got[0], "virtio_net_hdr.flags without offloads");
                    assertTrue(Frames.u16(frame, udp + 6) != 0, "the kernel filled in the UDP checksum");
                } else {
                    // virtio_net.h: VIRTIO_NET_HDR_F_NEEDS_CSUM = 1; csum_start and csum_offset are little-endian at 6 and 8
                    assertEquals(1, got[0], "virtio_net_hdr.flags with TUN_F_CSUM");
                    assertEquals(0, got[1], "gso_type: a single datagram needs no segmentation");
                    assertEquals(udp, (got[6] & 0xFF) | (got[7] & 0xFF) << 8, "csum_start is the UDP header");
                    assertEquals(6, (got[8] & 0xFF) | (got[9] & 0xFF) << 8, "csum_offset is the UDP checksum field");
                }
            }
        }
    }

    private static void assertFeatures(NetNamespace ns, TapDevice tap, boolean csum, boolean tso, boolean tso4, boolean tso6,
                                       boolean ecn, String when) {
        Map<String, String> f = features(ns, tap);
        Map<String, String> expected = new LinkedHashMap<>();
        expected.put("tx-checksumming", onOff(csum));
        expected.put("tx-checksum-ip-generic", onOff(csum));
        expected.put("tcp-segmentation-offload", onOff(tso));
        expected.put("tx-tcp-segmentation", onOff(tso4));
        expected.put("tx-tcp6-segmentation", onOff(tso6));
        expected.put("tx-tcp-ecn-segmentation", onOff(ecn));
        Map<String, String> actual = new LinkedHashMap<>();
        expected.keySet().forEach(k -> actual.put(k, f.get(k)));
        assertEquals(expected, actual, "ethtool -k " + tap.name() + " " + when);
    }

    private static Map<String, String> features(NetNamespace ns, TapDevice tap) {
        String out = ns.exec("ethtool", "-k", tap.name()).orThrow("read the features of " + tap.name()).stdout();
        Map<String, String> features = new LinkedHashMap<>();
        Matcher m = FEATURE.matcher(out);
        while (m.find()) {
            features.put(m.group(1), m.group(2));
        }
        return features;
    }

    private static String onOff(boolean on) {
        return on ? "on" : "off";
    }
}
