package io.vmm4j.cli.compare;

import io.vmm4j.virtio.driver.net.EthernetFrame;
import io.vmm4j.virtio.driver.net.Ipv4Address;
import io.vmm4j.virtio.driver.net.Ipv4Packet;
import io.vmm4j.virtio.driver.net.MacAddress;
import io.vmm4j.virtio.driver.net.UdpDatagram;

/** One Ethernet/IPv4/UDP frame with valid checksums, built with the guest stack's encoders, for the raw-tap ceiling. */
final class UdpFrame {
    private UdpFrame() {
    }

    static byte[] build(byte[] srcMac, byte[] dstMac, String srcIp, String dstIp, int port, int payload) {
        byte[] f = new byte[14 + 20 + 8 + payload];
        int src = Ipv4Address.parseValue(srcIp);
        int dst = Ipv4Address.parseValue(dstIp);
        EthernetFrame.writeHeader(f, 0, MacAddress.of(dstMac), MacAddress.of(srcMac), 0x0800);
        UdpDatagram.write(f, 34, src, dst, port, port, payload);
        Ipv4Packet.writeHeader(f, 14, 1, Ipv4Packet.PROTOCOL_UDP, src, dst, 8 + payload);
        return f;
    }
}
