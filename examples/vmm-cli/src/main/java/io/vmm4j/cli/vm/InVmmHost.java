package io.vmm4j.cli.vm;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.tap.PacketPort;
import io.vmm4j.virtio.driver.net.DropReason;
import io.vmm4j.virtio.driver.net.GuestNetStack;
import io.vmm4j.virtio.driver.net.Ipv4Address;
import io.vmm4j.virtio.driver.net.MacAddress;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * The "host" at the other end of an in-memory port, for machines where a tap is impossible: a
 * small IPv4 stack inside the VMM (or the vhost-user back-end daemon) that answers ARP and pings
 * and echoes UDP.
 *
 * <p>Its frames come from the guest, so nothing in them may throw out of the loop: what the host
 * cannot answer (UDP from 0.0.0.0 or from the host's own address) is counted and dropped, and said
 * in at most one log line a minute, however fast a guest sends it.
 */
public final class InVmmHost implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(InVmmHost.class);
    /** At most one line per interval about dropped frames: a guest decides how many there are. */
    static final long DROP_LOG_INTERVAL_NANOS = 60_000_000_000L;

    /**
     * What the host counted. {@code udpUnanswerable}: echo requests from a source the echo cannot go back
     * to; {@code framesFailed}: frames the stack failed on in any other way; {@code stackDrops}: frames the
     * stack itself discarded, by reason.
     */
    public record Stats(String address, long framesIn, long framesOut, long pingsAnswered, long udpEchoed, long udpUnanswerable,
                        long framesFailed, Map<String, Long> stackDrops) {
    }

    private final PacketPort port;
    private final GuestNetStack stack;
    private final EventLoop loop = new EventLoop("in-vmm-host");
    private final byte[] rx = new byte[65536 + 64];
    private final byte[] tx = new byte[65536 + 64];
    private final int header;
    private final Consumer<String> log;
    // counted on the loop thread
    private long udpEchoed;
    private long udpUnanswerable;
    private long framesFailed;
    private long dropsNotLogged;
    private long lastDropLine;
    private boolean dropLogged;

    /** Answers at {@code hostAddress} (dotted IPv4) on every queue of {@code port}; dropped frames are logged as warnings. */
    public InVmmHost(PacketPort port, String hostAddress) {
        this(port, hostAddress, LOG::warn);
    }

    /** @param log where the (rate-limited) line about dropped frames goes */
    public InVmmHost(PacketPort port, String hostAddress, Consumer<String> log) {
        this.port = port;
        this.header = port.vnetHeaderSize();
        this.log = log;
        this.stack = new GuestNetStack(MacAddress.parse("52:54:00:00:00:01"), Ipv4Address.parseValue(hostAddress), 65535 - 28,
                (frame, off, len) -> {
                    java.util.Arrays.fill(tx, 0, header, (byte) 0);
                    System.arraycopy(frame, off, tx, header, len);
                    port.send(0, java.util.Arrays.copyOf(tx, header + len));
                });
        stack.setUdpListener(this::echo);
        for (int q = 0; q < port.queueCount(); q++) {
            int queue = q;
            loop.register(port.fd(q), LibC.EPOLLIN, ready -> {
                int n;
                while ((n = port.receive(queue, rx)) > header) {
                    try {
                        stack.receive(rx, header, n - header);
                    } catch (RuntimeException e) {
                        framesFailed++;
                        dropped("a frame the host's stack failed on (" + e.getMessage() + ")");
                    }
                }
            });
        }
    }

    private void echo(int sourceIp, int sourcePort, int destinationPort, byte[] payload) {
        // RFC 1122 §3.2.1.3: 0.0.0.0 is only ever a source ("this host"), so there is nobody to echo to; nor to ourselves
        if (sourceIp == 0 || sourceIp == stack.ipv4() || Ipv4Address.isMulticastOrReserved(sourceIp)) {
            udpUnanswerable++;
            dropped("a UDP datagram from " + Ipv4Address.format(sourceIp) + " port " + sourcePort + ", which no echo can go back to");
            return;
        }
        stack.sendUdp(sourceIp, destinationPort, sourcePort, payload);
        udpEchoed++;
    }

    private void dropped(String latest) {
        dropsNotLogged++;
        long now = System.nanoTime();
        if (!dropLogged || now - lastDropLine >= DROP_LOG_INTERVAL_NANOS) {
            log.accept(String.format("in-memory host %s: dropped %d frame(s) it cannot answer, the latest %s (counted in its stats; "
                    + "this line comes at most once a minute)", Ipv4Address.format(stack.ipv4()), dropsNotLogged, latest));
            dropLogged = true;
            lastDropLine = now;
            dropsNotLogged = 0;
        }
    }

    /** The counters, read on the host's own thread. */
    public Stats stats() {
        AtomicReference<Stats> snapshot = new AtomicReference<>();
        loop.executeAndWait(() -> {
            Map<String, Long> drops = new LinkedHashMap<>();
            for (Map.Entry<DropReason, Long> e : stack.dropReasons().entrySet()) {
                drops.put(e.getKey().name(), e.getValue());
            }
            snapshot.set(new Stats(Ipv4Address.format(stack.ipv4()), stack.framesIn(), stack.framesOut(), stack.echoRequestsAnswered(),
                    udpEchoed, udpUnanswerable, framesFailed, drops));
        });
        return snapshot.get();
    }

    @Override
    public void close() {
        loop.close();
    }
}
