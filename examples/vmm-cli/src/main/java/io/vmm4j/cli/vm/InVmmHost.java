package io.vmm4j.cli.vm;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.tap.PacketPort;
import io.vmm4j.virtio.driver.net.GuestNetStack;
import io.vmm4j.virtio.driver.net.Ipv4Address;
import io.vmm4j.virtio.driver.net.MacAddress;

/**
 * The "host" at the other end of an in-memory port, for machines where a tap is impossible: a
 * small IPv4 stack inside the VMM (or the vhost-user back-end daemon) that answers ARP and pings
 * and echoes UDP.
 */
public final class InVmmHost implements AutoCloseable {
    private final PacketPort port;
    private final GuestNetStack stack;
    private final EventLoop loop = new EventLoop("in-vmm-host");
    private final byte[] rx = new byte[65536 + 64];
    private final byte[] tx = new byte[65536 + 64];
    private final int header;

    /** Answers at {@code hostAddress} (dotted IPv4) on every queue of {@code port}. */
    public InVmmHost(PacketPort port, String hostAddress) {
        this.port = port;
        this.header = port.vnetHeaderSize();
        this.stack = new GuestNetStack(MacAddress.parse("52:54:00:00:00:01"), Ipv4Address.parseValue(hostAddress), 65535 - 28,
                (frame, off, len) -> {
                    java.util.Arrays.fill(tx, 0, header, (byte) 0);
                    System.arraycopy(frame, off, tx, header, len);
                    port.send(0, java.util.Arrays.copyOf(tx, header + len));
                });
        stack.setUdpListener((srcIp, srcPort, dstPort, payload) -> stack.sendUdp(srcIp, dstPort, srcPort, payload));
        for (int q = 0; q < port.queueCount(); q++) {
            int queue = q;
            loop.register(port.fd(q), LibC.EPOLLIN, ready -> {
                int n;
                while ((n = port.receive(queue, rx)) > header) {
                    stack.receive(rx, header, n - header);
                }
            });
        }
    }

    @Override
    public void close() {
        loop.close();
    }
}
