package io.vmm4j.virtio.driver.net;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import java.util.random.RandomGenerator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AddressTest {
    @Test
    void macParsesPrintsAndRoundTripsThroughBytes() {
        MacAddress mac = MacAddress.parse("52:54:00:12:34:56");
        assertEquals(0x5254_0012_3456L, mac.bits());
        assertEquals("52:54:00:12:34:56", mac.toString());
        assertEquals(mac, MacAddress.parse("52:54:00:12:34:56"));
        assertEquals("52:54:00:ab:cd:ef", MacAddress.parse("52:54:00:AB:cd:EF").toString());
        assertArrayEquals(Hex.bytes("525400123456"), mac.octets());
        assertEquals(mac, MacAddress.of(Hex.bytes("525400123456")));
        byte[] buffer = new byte[10];
        mac.writeTo(buffer, 2);
        assertEquals(mac, MacAddress.readFrom(buffer, 2));
        assertEquals("00:00:00:00:00:00", MacAddress.ZERO.toString());
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "52:54:00:12:34", "52-54-00-12-34-56", "52:54:00:12:34:5g", "52:54:00:12:34:567",
            "52:54:00:12:3456:", "5:254:00:12:34:56", " 52:54:00:12:34:5"})
    void macRejectsMalformedText(String text) {
        assertThrows(IllegalArgumentException.class, () -> MacAddress.parse(text));
    }

    @Test
    void macRejectsWrongOctetCountsAndWideBits() {
        assertThrows(IllegalArgumentException.class, () -> MacAddress.of(new byte[5]));
        assertThrows(IllegalArgumentException.class, () -> new MacAddress(1L << 48));
        assertThrows(IllegalArgumentException.class, () -> new MacAddress(-1));
    }

    @Test
    void macGroupBits() {
        assertTrue(MacAddress.BROADCAST.isBroadcast());
        assertTrue(MacAddress.BROADCAST.isMulticast());
        assertEquals("ff:ff:ff:ff:ff:ff", MacAddress.BROADCAST.toString());
        MacAddress ipv4Multicast = MacAddress.parse("01:00:5e:00:00:01");
        assertTrue(ipv4Multicast.isMulticast());
        assertFalse(ipv4Multicast.isBroadcast());
        assertFalse(MacAddress.parse("52:54:00:12:34:56").isMulticast());
        assertTrue(MacAddress.parse("52:54:00:12:34:56").isLocallyAdministered());
        assertFalse(MacAddress.parse("00:1b:21:00:00:01").isLocallyAdministered());
    }

    @Test
    void randomMacsAreLocallyAdministeredUnicastAndVary() {
        Random random = new Random(802);
        Set<MacAddress> seen = new HashSet<>();
        for (int i = 0; i < 1000; i++) {
            MacAddress mac = MacAddress.randomLocallyAdministered(random);
            assertTrue(mac.isLocallyAdministered(), mac::toString);
            assertFalse(mac.isMulticast(), mac::toString);
            seen.add(mac);
        }
        assertEquals(1000, seen.size());
        assertTrue(MacAddress.randomLocallyAdministered().isLocallyAdministered());
    }

    @Test
    void randomMacForcesOnlyTheTwoLowBitsOfTheFirstOctet() {
        assertEquals("fe:ff:ff:ff:ff:ff", MacAddress.randomLocallyAdministered(constant(-1L)).toString());
        assertEquals("02:00:00:00:00:00", MacAddress.randomLocallyAdministered(constant(0L)).toString());
    }

    private static RandomGenerator constant(long value) {
        return () -> value;
    }

    @Test
    void ipv4ParsesAndPrints() {
        assertEquals(0x0a000001, Ipv4Address.parseValue("10.0.0.1"));
        assertEquals(0xc0a800c7, Ipv4Address.parseValue("192.168.0.199"));
        assertEquals(Ipv4Address.LIMITED_BROADCAST, Ipv4Address.parseValue("255.255.255.255"));
        assertEquals(0, Ipv4Address.parseValue("0.0.0.0"));
        assertEquals("192.168.0.199", Ipv4Address.format(0xc0a800c7));
        assertEquals("255.255.255.255", new Ipv4Address(-1).toString());
        assertEquals("10.0.0.1", Ipv4Address.parse("10.0.0.1").toString());
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "10.0.0", "10.0.0.1.2", "10..0.1", "10.0.0.1.", ".10.0.0.1", "256.0.0.1", "10.0.0.a",
            "1000.0.0.1", "10.0.0.-1", "010.0.0.1", " 10.0.0.1"})
    void ipv4RejectsMalformedText(String text) {
        assertThrows(IllegalArgumentException.class, () -> Ipv4Address.parse(text));
    }

    @Test
    void ipv4AddressClasses() {
        assertTrue(Ipv4Address.isMulticastOrReserved(Ipv4Address.parseValue("224.0.0.1")));
        assertTrue(Ipv4Address.isMulticastOrReserved(Ipv4Address.parseValue("240.0.0.1")));
        assertTrue(Ipv4Address.isMulticastOrReserved(Ipv4Address.LIMITED_BROADCAST));
        assertFalse(Ipv4Address.isMulticastOrReserved(Ipv4Address.parseValue("223.255.255.255")));
        assertFalse(Ipv4Address.isMulticastOrReserved(Ipv4Address.parseValue("10.0.0.1")));
    }
}
