package io.vmm4j.vhost.user;

import io.vmm4j.core.linux.UnixSocket;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A front-end that sends whatever a test tells it to, framing errors included, and reports what came back. */
final class RawFrontend implements AutoCloseable {
    final VhostUserChannel channel;

    RawFrontend(Path socket) {
        channel = new VhostUserChannel(UnixSocket.connect(socket), "the daemon under test");
    }

    /** Sends {@code request} with NEED_REPLY set or not. */
    void send(VhostUserRequest request, boolean needReply, byte[] payload, int... fds) {
        channel.send(VhostUserMessage.request(request, needReply, payload, fds));
    }

    VhostUserMessage reply() {
        VhostUserMessage m = channel.receive(3_000, 3_000);
        assertNotNull(m, "the daemon closed the connection instead of replying");
        return m;
    }

    long get(VhostUserRequest request) {
        send(request, false, new byte[0]);
        VhostUserMessage m = reply();
        assertEquals(request.code(), m.request());
        return m.u64();
    }

    /** Sends with NEED_REPLY and returns the REPLY_ACK status. */
    long ack(VhostUserRequest request, byte[] payload, int... fds) {
        send(request, true, payload, fds);
        VhostUserMessage m = reply();
        assertEquals(request.code(), m.request(), "reply to " + request);
        assertTrue(m.isReply());
        return m.u64();
    }

    /** GET_FEATURES, protocol features with REPLY_ACK, SET_OWNER and SET_FEATURES(VERSION_1 + PROTOCOL_FEATURES), as QEMU starts. */
    RawFrontend negotiate() {
        return negotiate(0);
    }

    /** As {@link #negotiate()}, acking {@code moreFeatures} too (bits the daemon offers, such as RING_PACKED). */
    RawFrontend negotiate(long moreFeatures) {
        return negotiate(moreFeatures, ~0L);
    }

    /** As {@link #negotiate()}, but sets only the protocol features in {@code protocolMask} of those offered. */
    RawFrontend negotiateProtocol(long protocolMask) {
        return negotiate(0, protocolMask);
    }

    private RawFrontend negotiate(long moreFeatures, long protocolMask) {
        long features = get(VhostUserRequest.GET_FEATURES);
        long protocol = get(VhostUserRequest.GET_PROTOCOL_FEATURES) & protocolMask;
        send(VhostUserRequest.SET_PROTOCOL_FEATURES, false, VhostUserMessage.u64(protocol));
        if (VhostUserProtocol.has(protocol, VhostUserProtocol.PROTOCOL_F_MQ)) {
            assertEquals(2, get(VhostUserRequest.GET_QUEUE_NUM));
        }
        assertEquals(0, ack(VhostUserRequest.SET_OWNER, new byte[0]));
        long acked = features & (VhostUserProtocol.bit(VhostUserProtocol.F_PROTOCOL_FEATURES) | (1L << 32) | moreFeatures);
        assertEquals(0, ack(VhostUserRequest.SET_FEATURES, VhostUserMessage.u64(acked)));
        return this;
    }

    /** The daemon answered {@code request} with a non-zero REPLY_ACK and the connection still works. */
    void expectRefused(VhostUserRequest request, byte[] payload, int... fds) {
        assertNotEquals(0, ack(request, payload, fds), request + " should have been refused");
        assertNotEquals(0, get(VhostUserRequest.GET_FEATURES), "the connection lives on after a refusal");
    }

    /** The daemon closed the connection (end of stream, or a reset because it left our bytes unread). */
    void expectClosed() {
        try {
            VhostUserMessage m = channel.receive(3_000, 3_000);
            assertEquals(null, m, "expected the daemon to close the connection, got " + m);
        } catch (VhostUserException e) {
            assertTrue(e.getMessage().contains("ECONNRESET"), "expected end of stream or a reset: " + e.getMessage());
        }
    }

    @Override
    public void close() {
        channel.close();
    }
}
