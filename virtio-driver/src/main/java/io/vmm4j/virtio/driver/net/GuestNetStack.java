package io.vmm4j.virtio.driver.net;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * A tiny guest network stack over Ethernet II: ARP (RFC 826), IPv4 (RFC 791) without fragmentation,
 * ICMP echo (RFC 792) and UDP (RFC 768). It answers ARP requests and pings for its address, pings
 * others, and sends and receives UDP. Every destination is on-link: there is no routing table.
 *
 * <p>Received frames are validated completely; a malformed or unwanted frame is dropped and counted
 * by {@link DropReason}, never thrown about. Outgoing frames are built in one reusable buffer of
 * 14 + MTU bytes and handed to a {@link FrameSink}; only a frame that must wait for ARP gets its own.
 *
 * <p>Not thread-safe: one thread (the vCPU thread) calls {@link #receive} and the send methods. The
 * sink may re-enter the stack from that same thread, as two stacks wired back to back do.
 */
public final class GuestNetStack {
    public static final int DEFAULT_MTU = 1500;
    /** RFC 791: every internet module must be able to forward a datagram of 68 octets without fragmenting. */
    public static final int MIN_MTU = 68;
    /** The IPv4 total length field has 16 bits. */
    public static final int MAX_MTU = Ipv4Packet.MAX_TOTAL_LENGTH;
    /** Frames waiting for ARP, all destinations together; beyond this the oldest is discarded. */
    public static final int ARP_QUEUE_LIMIT = 32;
    /** Pings awaiting a reply; beyond this the oldest is forgotten and its reply counts as unmatched. */
    public static final int PINGS_IN_FLIGHT = 64;
    /** Replies kept for {@link #pollPingReply} while no listener is set; beyond this the oldest is discarded. */
    public static final int PING_REPLY_QUEUE_LIMIT = 1024;
    /** RFC 1122 §2.3.2.1: at most one ARP request per second per destination. */
    public static final long ARP_REQUEST_INTERVAL_NANOS = 1_000_000_000L;

    private static final int IPV4_OFFSET = EthernetFrame.HEADER_LENGTH;
    private static final int TRANSPORT_OFFSET = IPV4_OFFSET + Ipv4Packet.MIN_HEADER_LENGTH;
    private static final int TRANSPORT_DATA_OFFSET = TRANSPORT_OFFSET + 8; // ICMP echo and UDP headers are both 8 bytes

    /** Receives every valid UDP datagram addressed to this stack's address or limited broadcast. */
    @FunctionalInterface
    public interface UdpListener {
        /** {@code payload} is a copy the listener owns. */
        void onDatagram(int sourceIp, int sourcePort, int destinationPort, byte[] payload);
    }

    /** A built IPv4 frame waiting for its destination's MAC; bytes 0..5 are written on resolution. */
    private record AwaitingArp(int destination, byte[] frame, int length, boolean ping, int pingKey,
                               int pingDataLength) {
    }

    private final MacAddress mac;
    private final int ip;
    private final int mtu;
    private final FrameSink tx;
    private final LongSupplier nanoClock;
    private final byte[] txBuffer;

    private final DropCounters drops = new DropCounters();
    private final ArpCache arpCache = new ArpCache();
    private final ArrayDeque<AwaitingArp> arpQueue = new ArrayDeque<>();

    // Pings in flight, by slot: in use, target, identifier << 16 | sequence, data length and send time.
    private final boolean[] flightActive = new boolean[PINGS_IN_FLIGHT];
    private final int[] flightTarget = new int[PINGS_IN_FLIGHT];
    private final int[] flightKey = new int[PINGS_IN_FLIGHT];
    private final int[] flightDataLength = new int[PINGS_IN_FLIGHT];
    private final long[] flightSentAt = new long[PINGS_IN_FLIGHT];
    private int nextFlightSlot;

    private final ArrayDeque<PingReply> pingReplies = new ArrayDeque<>();
    private Consumer<PingReply> pingReplyListener;
    private UdpListener udpListener;
    private int nextIdentification;

    private long framesIn;
    private long framesOut;
    private long arpRequestsSent;
    private long arpRequestsAnswered;
    private long arpRepliesReceived;
    private long echoRequestsSent;
    private long echoRequestsAnswered;
    private long echoRepliesReceived;
    private long udpDatagramsSent;
    private long udpDatagramsReceived;

    public GuestNetStack(MacAddress mac, int ipv4, FrameSink tx) {
        this(mac, ipv4, DEFAULT_MTU, tx);
    }

    public GuestNetStack(MacAddress mac, int ipv4, int mtu, FrameSink tx) {
        this(mac, ipv4, mtu, tx, System::nanoTime);
    }

    /** With the clock that timestamps pings and paces ARP requests, in nanoseconds (tests pass a manual one). */
    public GuestNetStack(MacAddress mac, int ipv4, int mtu, FrameSink tx, LongSupplier nanoClock) {
        this.mac = Objects.requireNonNull(mac, "mac");
        if (mac.isMulticast() || mac.equals(MacAddress.ZERO)) {
            throw new IllegalArgumentException("a station address must be unicast and non-zero: " + mac);
        }
        if (ipv4 == 0 || Ipv4Address.isMulticastOrReserved(ipv4)) {
            throw new IllegalArgumentException("not a unicast host address: " + Ipv4Address.format(ipv4));
        }
        if (mtu < MIN_MTU || mtu > MAX_MTU) {
            throw new IllegalArgumentException("MTU " + mtu + " outside " + MIN_MTU + ".." + MAX_MTU);
        }
        this.ip = ipv4;
        this.mtu = mtu;
        this.tx = Objects.requireNonNull(tx, "tx");
        this.nanoClock = Objects.requireNonNull(nanoClock, "nanoClock");
        this.txBuffer = new byte[EthernetFrame.HEADER_LENGTH + mtu];
    }

    public MacAddress mac() {
        return mac;
    }

    public int ipv4() {
        return ip;
    }

    public int mtu() {
        return mtu;
    }

    /** The largest ICMP echo data or UDP payload that fits the MTU: both headers are 20 + 8 bytes. */
    public int maxPayload() {
        return mtu - Ipv4Packet.MIN_HEADER_LENGTH - 8;
    }

    /** Replies to this stack's pings go here instead of to {@link #pollPingReply}; null to queue them again. */
    public void setPingReplyListener(Consumer<PingReply> listener) {
        this.pingReplyListener = listener;
    }

    /** The oldest queued ping reply, or null. */
    public PingReply pollPingReply() {
        return pingReplies.pollFirst();
    }

    public void setUdpListener(UdpListener listener) {
        this.udpListener = listener;
    }

    /** The cached MAC for {@code ipv4}, or null if unknown or still being resolved. */
    public MacAddress cachedMac(int ipv4) {
        long bits = arpCache.lookup(ipv4);
        return bits == ArpCache.UNRESOLVED ? null : new MacAddress(bits);
    }

    /** Frames built but waiting for an ARP reply. */
    public int framesAwaitingArp() {
        return arpQueue.size();
    }

    // ---------------------------------------------------------------- receive

    /**
     * Takes one received Ethernet frame (no virtio-net header). Anything malformed or not for this stack
     * is dropped and counted. Throws only if {@code offset} and {@code length} lie outside {@code frame}.
     */
    public void receive(byte[] frame, int offset, int length) {
        Objects.checkFromIndexSize(offset, length, frame.length);
        framesIn++;
        EthernetFrame ethernet = EthernetFrame.decode(frame, offset, length, drops);
        if (ethernet == null) {
            return;
        }
        if (length > EthernetFrame.HEADER_LENGTH + mtu) {
            drops.count(DropReason.ETHERNET_TOO_LONG);
            return;
        }
        if (!ethernet.destination().equals(mac) && !ethernet.destination().isBroadcast()) {
            drops.count(DropReason.ETHERNET_NOT_FOR_US);
            return;
        }
        if (ethernet.source().isMulticast() || ethernet.source().equals(mac)) {
            drops.count(DropReason.ETHERNET_BAD_SOURCE);
            return;
        }
        switch (ethernet.etherType()) {
            case EthernetFrame.TYPE_ARP -> receiveArp(frame, ethernet);
            case EthernetFrame.TYPE_IPV4 -> receiveIpv4(frame, ethernet);
            default -> drops.count(DropReason.ETHERTYPE_UNSUPPORTED);
        }
    }

    private void receiveArp(byte[] frame, EthernetFrame ethernet) {
        ArpPacket arp = ArpPacket.decode(frame, ethernet.payloadOffset(), ethernet.payloadLength(), drops);
        if (arp == null) {
            return;
        }
        // A sender claiming our MAC or our address is a loop or a conflict, nothing to learn or answer.
        if (arp.senderMac().isMulticast() || arp.senderMac().equals(mac) || arp.senderIp() == ip) {
            drops.count(DropReason.ARP_BAD_SENDER);
            return;
        }
        // RFC 5227: a probe's sender address 0.0.0.0 maps nothing, so only real unicast senders are learnt.
        boolean learnable = arp.senderIp() != 0 && !Ipv4Address.isMulticastOrReserved(arp.senderIp());
        long senderMac = arp.senderMac().bits();
        // RFC 826: if the sender is already in the table, update it, whoever the packet is for (merge_flag).
        boolean merged = learnable && arpCache.refresh(arp.senderIp(), senderMac);
        if (arp.targetIp() != ip) {
            drops.count(DropReason.ARP_NOT_FOR_US);
            if (merged) {
                flushArpQueue(arp.senderIp(), senderMac);
            }
            return;
        }
        // RFC 826: being the target, add the sender if the merge did not.
        if (learnable && !merged) {
            arpCache.put(arp.senderIp(), senderMac);
        }
        if (arp.operation() == ArpPacket.REQUEST) {
            // RFC 826: swap sender and target, put in our addresses, set the opcode to reply, send to the asker.
            arpRequestsAnswered++;
            sendArp(arp.senderMac(), ArpPacket.replyTo(arp, mac));
        } else {
            arpRepliesReceived++;
        }
        if (learnable) {
            flushArpQueue(arp.senderIp(), senderMac);
        }
    }

    private void receiveIpv4(byte[] frame, EthernetFrame ethernet) {
        Ipv4Packet packet = Ipv4Packet.decode(frame, ethernet.payloadOffset(), ethernet.payloadLength(), drops);
        if (packet == null) {
            return;
        }
        // RFC 1122 §3.2.1.3: a datagram whose source is broadcast or multicast must be discarded.
        if (Ipv4Address.isMulticastOrReserved(packet.source())) {
            drops.count(DropReason.IPV4_BAD_SOURCE);
            return;
        }
        boolean broadcast = packet.destination() == Ipv4Address.LIMITED_BROADCAST;
        if (packet.destination() != ip && !broadcast) {
            drops.count(DropReason.IPV4_NOT_FOR_US);
            return;
        }
        switch (packet.protocol()) {
            case Ipv4Packet.PROTOCOL_ICMP -> receiveIcmp(frame, ethernet, packet, broadcast);
            case Ipv4Packet.PROTOCOL_UDP -> receiveUdp(frame, packet);
            default -> drops.count(DropReason.IPV4_PROTOCOL_UNSUPPORTED);
        }
    }

    private void receiveIcmp(byte[] frame, EthernetFrame ethernet, Ipv4Packet packet, boolean broadcast) {
        IcmpMessage icmp = IcmpMessage.decode(frame, packet.payloadOffset(), packet.payloadLength(), drops);
        if (icmp == null) {
            return;
        }
        switch (icmp.type()) {
            case IcmpMessage.TYPE_ECHO_REQUEST -> {
                // RFC 1122 §3.2.2.6: an echo request to a broadcast address may be silently discarded.
                if (broadcast) {
                    drops.count(DropReason.ICMP_ECHO_TO_BROADCAST);
                } else {
                    answerEcho(frame, ethernet.source(), packet.source(), icmp);
                }
            }
            case IcmpMessage.TYPE_ECHO_REPLY -> receiveEchoReply(frame, packet.source(), icmp);
            default -> drops.count(DropReason.ICMP_TYPE_UNSUPPORTED);
        }
    }

    private void answerEcho(byte[] frame, MacAddress asker, int askerIp, IcmpMessage request) {
        // RFC 792: the reply returns identifier, sequence number and data unchanged, with type 0.
        // The data fits: the request's frame was at most 14 + MTU with at least a 20-byte IPv4 header.
        System.arraycopy(frame, request.dataOffset(), txBuffer, TRANSPORT_DATA_OFFSET, request.dataLength());
        int icmpLength = IcmpMessage.writeEcho(txBuffer, TRANSPORT_OFFSET, IcmpMessage.TYPE_ECHO_REPLY,
                request.identifier(), request.sequence(), request.dataLength());
        // The reply goes back to the frame's source MAC, the asker's next hop, without an ARP lookup.
        int length = writeIpv4Frame(txBuffer, asker.bits(), askerIp, Ipv4Packet.PROTOCOL_ICMP, icmpLength);
        echoRequestsAnswered++;
        transmit(txBuffer, length);
    }

    private void receiveEchoReply(byte[] frame, int sourceIp, IcmpMessage reply) {
        long now = nanoClock.getAsLong();
        int key = reply.identifier() << 16 | reply.sequence();
        int slot = -1;
        for (int i = 0; i < PINGS_IN_FLIGHT; i++) {
            if (flightActive[i] && flightKey[i] == key && flightTarget[i] == sourceIp) {
                slot = i;
                break;
            }
        }
        if (slot < 0) {
            drops.count(DropReason.ICMP_ECHO_REPLY_UNMATCHED);
            return;
        }
        if (!isPingData(frame, reply.dataOffset(), reply.dataLength(), flightDataLength[slot])) {
            drops.count(DropReason.ICMP_ECHO_REPLY_DATA_MISMATCH);
            return;
        }
        flightActive[slot] = false;
        echoRepliesReceived++;
        PingReply ping = new PingReply(sourceIp, reply.identifier(), reply.sequence(), reply.dataLength(),
                now - flightSentAt[slot]);
        if (pingReplyListener != null) {
            pingReplyListener.accept(ping);
            return;
        }
        if (pingReplies.size() == PING_REPLY_QUEUE_LIMIT) {
            pingReplies.pollFirst();
            drops.count(DropReason.PING_REPLY_OVERFLOW);
        }
        pingReplies.addLast(ping);
    }

    private void receiveUdp(byte[] frame, Ipv4Packet packet) {
        UdpDatagram udp = UdpDatagram.decode(frame, packet.payloadOffset(), packet.payloadLength(), packet.source(),
                packet.destination(), drops);
        if (udp == null) {
            return;
        }
        UdpListener listener = udpListener;
        if (listener == null) {
            drops.count(DropReason.UDP_NO_LISTENER);
            return;
        }
        udpDatagramsReceived++;
        byte[] payload = Arrays.copyOfRange(frame, udp.payloadOffset(), udp.payloadOffset() + udp.payloadLength());
        listener.onDatagram(packet.source(), udp.sourcePort(), udp.destinationPort(), payload);
    }

    // ---------------------------------------------------------------- send

    /**
     * Sends an ICMP echo request (RFC 792) to {@code targetIp} with {@code payloadSize} bytes of data
     * 0x00, 0x01, ... (mod 256), which the reply must return. If the target's MAC is unknown the request
     * waits for ARP; it is timestamped when it is actually sent. The reply arrives as a {@link PingReply}.
     */
    public void sendPing(int targetIp, int identifier, int sequence, int payloadSize) {
        requireUnicastDestination(targetIp);
        requireUnsignedShort("identifier", identifier);
        requireUnsignedShort("sequence", sequence);
        if (payloadSize < 0 || payloadSize > maxPayload()) {
            throw new IllegalArgumentException("ping payload " + payloadSize + " outside 0.." + maxPayload()
                    + " for MTU " + mtu);
        }
        long targetMac = arpCache.lookup(targetIp);
        byte[] buffer = targetMac == ArpCache.UNRESOLVED ? new byte[TRANSPORT_DATA_OFFSET + payloadSize] : txBuffer;
        for (int i = 0; i < payloadSize; i++) {
            buffer[TRANSPORT_DATA_OFFSET + i] = (byte) i;
        }
        int icmpLength = IcmpMessage.writeEcho(buffer, TRANSPORT_OFFSET, IcmpMessage.TYPE_ECHO_REQUEST, identifier,
                sequence, payloadSize);
        int length = writeIpv4Frame(buffer, targetMac, targetIp, Ipv4Packet.PROTOCOL_ICMP, icmpLength);
        int key = identifier << 16 | sequence;
        if (targetMac == ArpCache.UNRESOLVED) {
            awaitArp(new AwaitingArp(targetIp, buffer, length, true, key, payloadSize));
        } else {
            sendBuilt(targetIp, buffer, length, true, key, payloadSize);
        }
    }

    /** Sends a UDP datagram (RFC 768, checksummed) to a unicast address or 255.255.255.255. */
    public void sendUdp(int destinationIp, int sourcePort, int destinationPort, byte[] payload) {
        sendUdp(destinationIp, sourcePort, destinationPort, payload, 0, payload.length);
    }

    /** Sends {@code length} bytes of {@code payload} from {@code offset} as one UDP datagram; no fragmentation. */
    public void sendUdp(int destinationIp, int sourcePort, int destinationPort, byte[] payload, int offset,
                        int length) {
        if (destinationIp != Ipv4Address.LIMITED_BROADCAST) {
            requireUnicastDestination(destinationIp);
        }
        requireUnsignedShort("source port", sourcePort);
        requireUnsignedShort("destination port", destinationPort);
        Objects.checkFromIndexSize(offset, length, payload.length);
        if (length > maxPayload()) {
            throw new IllegalArgumentException("UDP payload " + length + " exceeds " + maxPayload() + " for MTU "
                    + mtu + " (this stack does not fragment)");
        }
        long destinationMac = destinationIp == Ipv4Address.LIMITED_BROADCAST
                ? MacAddress.BROADCAST.bits() : arpCache.lookup(destinationIp);
        byte[] buffer = destinationMac == ArpCache.UNRESOLVED ? new byte[TRANSPORT_DATA_OFFSET + length] : txBuffer;
        System.arraycopy(payload, offset, buffer, TRANSPORT_DATA_OFFSET, length);
        int udpLength = UdpDatagram.write(buffer, TRANSPORT_OFFSET, ip, destinationIp, sourcePort, destinationPort,
                length);
        int frameLength = writeIpv4Frame(buffer, destinationMac, destinationIp, Ipv4Packet.PROTOCOL_UDP, udpLength);
        if (destinationMac == ArpCache.UNRESOLVED) {
            awaitArp(new AwaitingArp(destinationIp, buffer, frameLength, false, 0, 0));
        } else {
            sendBuilt(destinationIp, buffer, frameLength, false, 0, 0);
        }
    }

    /** Writes the IPv4 and Ethernet headers in front of a transport message at {@link #TRANSPORT_OFFSET}. */
    private int writeIpv4Frame(byte[] buffer, long destinationMac, int destinationIp, int protocol,
                               int transportLength) {
        Ipv4Packet.writeHeader(buffer, IPV4_OFFSET, nextIdentification++ & 0xFFFF, protocol, ip, destinationIp,
                transportLength);
        // An unresolved destination gets zeros, overwritten when ARP answers.
        MacAddress.writeBits(destinationMac == ArpCache.UNRESOLVED ? 0 : destinationMac, buffer, 0);
        mac.writeTo(buffer, 6);
        EthernetFrame.writeShort(buffer, 12, EthernetFrame.TYPE_IPV4);
        return TRANSPORT_OFFSET + transportLength;
    }

    private void sendBuilt(int destinationIp, byte[] frame, int length, boolean ping, int pingKey,
                           int pingDataLength) {
        if (!ping) {
            udpDatagramsSent++;
        } else {
            // Registered before sending: over a back-to-back wire the reply arrives inside tx.send().
            int slot = nextFlightSlot;
            nextFlightSlot = (nextFlightSlot + 1) % PINGS_IN_FLIGHT;
            flightActive[slot] = true;
            flightTarget[slot] = destinationIp;
            flightKey[slot] = pingKey;
            flightDataLength[slot] = pingDataLength;
            flightSentAt[slot] = nanoClock.getAsLong();
            echoRequestsSent++;
        }
        transmit(frame, length);
    }

    private void awaitArp(AwaitingArp waiting) {
        if (arpQueue.size() == ARP_QUEUE_LIMIT) {
            arpQueue.pollFirst();
            drops.count(DropReason.ARP_QUEUE_OVERFLOW);
        }
        // Queued before the request goes out: the reply may arrive inside tx.send().
        arpQueue.addLast(waiting);
        if (arpCache.requestDue(waiting.destination(), nanoClock.getAsLong(), ARP_REQUEST_INTERVAL_NANOS)) {
            arpRequestsSent++;
            sendArp(MacAddress.BROADCAST, ArpPacket.request(mac, ip, waiting.destination()));
        }
    }

    private void flushArpQueue(int resolvedIp, long resolvedMac) {
        if (arpQueue.isEmpty()) {
            return;
        }
        // Taken out first: sending may re-enter receive() and with it this queue.
        List<AwaitingArp> ready = new ArrayList<>();
        for (Iterator<AwaitingArp> it = arpQueue.iterator(); it.hasNext(); ) {
            AwaitingArp waiting = it.next();
            if (waiting.destination() == resolvedIp) {
                it.remove();
                ready.add(waiting);
            }
        }
        for (AwaitingArp waiting : ready) {
            MacAddress.writeBits(resolvedMac, waiting.frame(), 0);
            sendBuilt(waiting.destination(), waiting.frame(), waiting.length(), waiting.ping(), waiting.pingKey(),
                    waiting.pingDataLength());
        }
    }

    private void sendArp(MacAddress destination, ArpPacket arp) {
        EthernetFrame.writeHeader(txBuffer, 0, destination, mac, EthernetFrame.TYPE_ARP);
        int length = EthernetFrame.HEADER_LENGTH + arp.writeTo(txBuffer, EthernetFrame.HEADER_LENGTH);
        transmit(txBuffer, length);
    }

    private void transmit(byte[] frame, int length) {
        framesOut++;
        tx.send(frame, 0, length);
    }

    private static boolean isPingData(byte[] frame, int offset, int length, int expectedLength) {
        if (length != expectedLength) {
            return false;
        }
        for (int i = 0; i < length; i++) {
            if (frame[offset + i] != (byte) i) {
                return false;
            }
        }
        return true;
    }

    private void requireUnicastDestination(int destination) {
        if (destination == 0 || Ipv4Address.isMulticastOrReserved(destination) || destination == ip) {
            throw new IllegalArgumentException("not a unicast destination other than this stack: "
                    + Ipv4Address.format(destination));
        }
    }

    private static void requireUnsignedShort(String what, int value) {
        if (value < 0 || value > 0xFFFF) {
            throw new IllegalArgumentException(what + " " + value + " outside 0..65535");
        }
    }

    // ---------------------------------------------------------------- counters

    public long framesIn() {
        return framesIn;
    }

    public long framesOut() {
        return framesOut;
    }

    public long arpRequestsSent() {
        return arpRequestsSent;
    }

    public long arpRequestsAnswered() {
        return arpRequestsAnswered;
    }

    public long arpRepliesReceived() {
        return arpRepliesReceived;
    }

    public long echoRequestsSent() {
        return echoRequestsSent;
    }

    public long echoRequestsAnswered() {
        return echoRequestsAnswered;
    }

    public long echoRepliesReceived() {
        return echoRepliesReceived;
    }

    public long udpDatagramsSent() {
        return udpDatagramsSent;
    }

    public long udpDatagramsReceived() {
        return udpDatagramsReceived;
    }

    /** All drops, whatever the reason. */
    public long dropped() {
        return drops.total();
    }

    public long dropped(DropReason reason) {
        return drops.get(reason);
    }

    /** The non-zero drop counts. */
    public Map<DropReason, Long> dropReasons() {
        return drops.nonZero();
    }

    @Override
    public String toString() {
        return "GuestNetStack " + mac + " " + Ipv4Address.format(ip) + " mtu " + mtu + ": in " + framesIn + " out "
                + framesOut + ", arp answered " + arpRequestsAnswered + ", echo answered " + echoRequestsAnswered
                + ", echo replies " + echoRepliesReceived + ", udp in " + udpDatagramsReceived + " out "
                + udpDatagramsSent + ", " + drops;
    }
}
