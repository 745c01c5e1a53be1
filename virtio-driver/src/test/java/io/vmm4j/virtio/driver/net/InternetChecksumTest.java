package io.vmm4j.virtio.driver.net;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class InternetChecksumTest {
    @Test
    void rfc1071WorkedExample() {
        // RFC 1071 §3: words 0001 f203 f4f5 f6f7 sum to ddf2 (with end-around carry), so the checksum is 220d.
        byte[] data = Hex.bytes("0001 f203 f4f5 f6f7");
        assertEquals(0x220d, InternetChecksum.of(data, 0, data.length));
        assertEquals(0x220d, ReferenceChecksum.of(data));
    }

    @Test
    void knownIpv4Header() {
        // A widely published header: 192.168.0.1 > 192.168.0.199, UDP, total length 0x73, checksum b861.
        byte[] header = Hex.bytes("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7");
        assertEquals(0xb861, InternetChecksum.of(header, 0, header.length));
        header[10] = (byte) 0xb8;
        header[11] = 0x61;
        assertTrue(InternetChecksum.verifies(header, 0, header.length));
        header[19] ^= 1;
        assertFalse(InternetChecksum.verifies(header, 0, header.length));
    }

    @Test
    void oddLengthPadsTheLastByteOnTheRight() {
        // RFC 1071 §4.1: 0102 + 0300 = 0402, complemented fbfd (not 0102 + 0003).
        byte[] data = {1, 2, 3};
        assertEquals(0xfbfd, InternetChecksum.of(data, 0, 3));
    }

    @Test
    void carriesFoldTwice() {
        // ffff + ffff + 0001 = 1ffff; one fold gives 10000, the second 0001; complemented fffe.
        byte[] data = Hex.bytes("ffff ffff 0001");
        assertEquals(0xfffe, InternetChecksum.of(data, 0, data.length));
    }

    @Test
    void offsetIsHonoured() {
        byte[] data = Hex.bytes("eeee 0001 f203 f4f5 f6f7 eeee");
        assertEquals(0x220d, InternetChecksum.of(data, 2, 8));
    }

    @Test
    void agreesWithTheReferenceOnRandomDataAndChainsAtEvenSplits() {
        Random random = new Random(1071);
        for (int round = 0; round < 500; round++) {
            byte[] data = new byte[random.nextInt(1, 2000)];
            random.nextBytes(data);
            int expected = ReferenceChecksum.of(data);
            assertEquals(expected, InternetChecksum.of(data, 0, data.length), "length " + data.length);
            int split = random.nextInt(data.length / 2 + 1) * 2;
            long partial = InternetChecksum.add(0, data, 0, split);
            assertEquals(expected, InternetChecksum.finish(InternetChecksum.add(partial, data, split, data.length - split)));
        }
    }

    @Test
    void pseudoHeaderSumsAddressesProtocolAndLength() {
        byte[] pseudo = Hex.bytes("0a000002 0a000001 0011 0123");
        assertEquals(ReferenceChecksum.of(pseudo),
                InternetChecksum.finish(InternetChecksum.pseudoHeader(0x0a000002, 0x0a000001, 17, 0x123)));
    }
}
