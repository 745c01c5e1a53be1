package io.vmm4j.tap;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.concurrent.ThreadLocalRandom;

/** Ethernet, ARP, IPv4, ICMP and UDP frames built and taken apart byte by byte, for tests. */
final class Frames {
    static final int ETHERTYPE_IPV4 = 0x0800;
    static final int ETHERTYPE_ARP = 0x0806;
    static final int ETH_HEADER = 14;
    static final byte[] BROADCAST = {-1, -1, -1, -1, -1, -1};

    private Frames() {
    }

    /** A random locally administered unicast MAC (bit 1 of the first byte set, bit 0 clear). */
    static byte[] randomGuestMac() {
        byte[] mac = new byte[6];
        ThreadLocalRandom.current().nextBytes(mac);
        mac[0] = (byte) ((mac[0] & 0xFC) | 0x02);
        return mac;
    }

    static byte[] ipv4(String dotted) {
        String[] parts = dotted.split("\\.");
        byte[] ip = new byte[4];
        for (int i = 0; i < 4; i++) {
            ip[i] = (byte) Integer.parseInt(parts[i]);
        }
        return ip;
    }

    static String mac(byte[] mac) {
        return HexFormat.ofDelimiter(":").formatHex(mac);
    }

    /** {@code size} zero bytes of vnet header (no checksum or GSO request) in front of {@code frame}. */
    static byte[] withZeroHeader(int size, byte[] frame) {
        byte[] out = new byte[size + frame.length];
        System.arraycopy(frame, 0, out, size, frame.length);
        return out;
    }

    /** RFC 826 request: who has {@code targetIp}? tell {@code senderIp} at {@code senderMac}; broadcast. */
    static byte[] arpRequest(byte[] senderMac, byte[] senderIp, byte[] targetIp) {
        ByteBuffer b = ByteBuffer.allocate(ETH_HEADER + 28);
        b.put(BROADCAST).put(senderMac).putShort((short) ETHERTYPE_ARP);
        b.putShort((short) 1).putShort((short) ETHERTYPE_IPV4).put((byte) 6).put((byte) 4).putShort((short) 1);
        b.put(senderMac).put(senderIp).put(new byte[6]).put(targetIp);
        return b.array();
    }

    /** RFC 792 echo request in IPv4 in Ethernet, with valid IP and ICMP checksums. */
    static byte[] icmpEchoRequest(byte[] srcMac, byte[] dstMac, byte[] srcIp, byte[] dstIp, int id, int seq, byte[] payload) {
        byte[] icmp = new byte[8 + payload.length];
        ByteBuffer i = ByteBuffer.wrap(icmp);
        i.put((byte) 8).put((byte) 0).putShort((short) 0).putShort((short) id).putShort((short) seq).put(payload);
        i.putShort(2, (short) checksum(icmp, 0, icmp.length));
        return ethernet(dstMac, srcMac, ETHERTYPE_IPV4, ipv4Packet(srcIp, dstIp, 1, icmp));
    }

    static byte[] ethernet(byte[] dst, byte[] src, int ethertype, byte[] payload) {
        return ByteBuffer.allocate(ETH_HEADER + payload.length).put(dst).put(src).putShort((short) ethertype).put(payload).array();
    }

    static byte[] ipv4Packet(byte[] src, byte[] dst, int protocol, byte[] payload) {
        byte[] ip = new byte[20 + payload.length];
        ByteBuffer b = ByteBuffer.wrap(ip);
        b.put((byte) 0x45).put((byte) 0).putShort((short) ip.length).putShort((short) 0x1234).putShort((short) 0x4000)
                .put((byte) 64).put((byte) protocol).putShort((short) 0).put(src).put(dst).put(payload);
        b.putShort(10, (short) checksum(ip, 0, 20));
        return ip;
    }

    /** RFC 1071 Internet checksum; a correct header or message sums to 0. */
    static int checksum(byte[] data, int offset, int length) {
        long sum = 0;
        for (int i = 0; i + 1 < length; i += 2) {
            sum += ((data[offset + i] & 0xFF) << 8) | (data[offset + i + 1] & 0xFF);
        }
        if ((length & 1) != 0) {
            sum += (data[offset + length - 1] & 0xFF) << 8;
        }
        while ((sum >> 16) != 0) {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        return (int) (~sum & 0xFFFF);
    }

    static int u16(byte[] b, int offset) {
        return ((b[offset] & 0xFF) << 8) | (b[offset + 1] & 0xFF);
    }

    static byte[] slice(byte[] b, int offset, int length) {
        return Arrays.copyOfRange(b, offset, offset + length);
    }

    /** The Ethernet frame behind {@code headerSize} bytes of vnet header in the first {@code length} bytes of {@code buf}. */
    static byte[] ethernetPart(byte[] buf, int length, int headerSize) {
        return Arrays.copyOfRange(buf, headerSize, length);
    }

    static int ethertype(byte[] frame) {
        return frame.length < ETH_HEADER ? -1 : u16(frame, 12);
    }

    static boolean isArpReply(byte[] frame, byte[] senderIp, byte[] targetMac, byte[] targetIp) {
        return ethertype(frame) == ETHERTYPE_ARP && frame.length >= ETH_HEADER + 28 && u16(frame, ETH_HEADER + 6) == 2
                && Arrays.equals(slice(frame, ETH_HEADER + 14, 4), senderIp)
                && Arrays.equals(slice(frame, ETH_HEADER + 18, 6), targetMac)
                && Arrays.equals(slice(frame, ETH_HEADER + 24, 4), targetIp);
    }

    /** Whether {@code frame} is IPv4 with the given protocol and destination address. */
    static boolean isIpv4To(byte[] frame, int protocol, byte[] dstIp) {
        return ethertype(frame) == ETHERTYPE_IPV4 && frame.length >= ETH_HEADER + 20
                && (frame[ETH_HEADER + 9] & 0xFF) == protocol && Arrays.equals(slice(frame, ETH_HEADER + 16, 4), dstIp);
    }

    /** Offset of the IPv4 payload (after options) in an Ethernet frame. */
    static int ipv4PayloadOffset(byte[] frame) {
        return ETH_HEADER + (frame[ETH_HEADER] & 0x0F) * 4;
    }
}
