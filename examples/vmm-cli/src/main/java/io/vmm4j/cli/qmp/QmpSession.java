package io.vmm4j.cli.qmp;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundBuffer;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.unix.PeerCredentials;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One client connection: greeting, capabilities negotiation, then commands, each answered in
 * order with {@code return} or {@code error} (carrying the request's {@code id}). Asynchronous
 * events reach the client only once it negotiated capabilities. No command or error closes the
 * connection. It ends when the client's input ends (as in QEMU; what is queued for the client is
 * sent first), when the client lets more than {@link QmpServer#OUTPUT_LIMIT} of output pile up
 * unread, or when the server closes. While more than {@link QmpServer#PAUSE_READING_AT} is queued
 * the client's commands are not read, so pipelining without reading throttles the client.
 */
final class QmpSession extends SimpleChannelInboundHandler<QmpFrameDecoder.Input> {
    private static final Logger LOG = LoggerFactory.getLogger(QmpSession.class);
    static final String CAPABILITIES = "qmp_capabilities";

    private final QmpServer server;
    private volatile Channel channel;
    private volatile boolean negotiated;
    /** "client 3 (pid 1234, uid 0)": for log lines. */
    private volatile String name = "client";
    /** Set once the client is being disconnected for its backlog: nothing more is queued for it. */
    private final AtomicBoolean overLimit = new AtomicBoolean();

    QmpSession(QmpServer server) {
        this.server = server;
    }

    boolean negotiated() {
        return negotiated;
    }

    Channel channel() {
        return channel;
    }

    @Override
    public String toString() {
        return name;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        channel = ctx.channel();
        name = describe(ctx.channel(), server.nextClientNumber());
        ObjectNode qmp = JsonNodeFactory.instance.objectNode();
        qmp.set("version", server.version());
        qmp.putArray("capabilities"); // no oob: commands run in order
        ObjectNode greeting = JsonNodeFactory.instance.objectNode();
        greeting.set("QMP", qmp);
        send(greeting);
        server.sessionOpened(this);
    }

    private static String describe(Channel channel, int number) {
        if (channel instanceof EpollDomainSocketChannel unix) {
            try {
                PeerCredentials peer = unix.peerCredentials(); // SO_PEERCRED, unix(7)
                return "client " + number + " (pid " + peer.pid() + ", uid " + peer.uid() + ")";
            } catch (IOException | RuntimeException e) {
                LOG.debug("no peer credentials for QMP client {}: {}", number, e.toString());
            }
        }
        return "client " + number;
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        server.sessionClosed(this);
    }

    /** Back-pressure: a client that does not take its output is not read from, so its pipelined commands wait in its own socket. */
    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
        boolean writable = ctx.channel().isWritable();
        LOG.debug("QMP {}: {} bytes of output queued, {} reading its commands", this, queuedBytes(ctx.channel()),
                writable ? "resumed" : "paused");
        ctx.channel().config().setAutoRead(writable);
        ctx.fireChannelWritabilityChanged();
    }

    /**
     * The client's input ended (it closed or shut down its side): QEMU disconnects then (chardev
     * char-socket.c, tcp_chr_read at end of stream), and so does this server, but only once what is
     * queued for the client has been written, so a script's last replies are not lost. Every
     * complete command before the end was answered already: ByteToMessageDecoder passes the event
     * on after decoding what was left.
     */
    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object event) throws Exception {
        if (event instanceof ChannelInputShutdownEvent) {
            LOG.debug("QMP {} ended its input; closing once {} bytes still queued are written", this, queuedBytes(ctx.channel()));
            ctx.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
        }
        super.userEventTriggered(ctx, event);
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, QmpFrameDecoder.Input input) {
        if (input.error() != null) {
            sendError(null, QmpException.ErrorClass.GenericError, input.error());
            return;
        }
        JsonNode request;
        try {
            request = server.mapper().readTree(input.json());
        } catch (JsonProcessingException e) {
            sendError(null, QmpException.ErrorClass.GenericError, "JSON parse error, " + e.getOriginalMessage());
            return;
        }
        if (request == null || !request.isObject()) {
            sendError(null, QmpException.ErrorClass.GenericError, "QMP input must be a JSON object");
            return;
        }
        JsonNode id = request.get("id");
        try {
            JsonNode result = dispatch((ObjectNode) request);
            ObjectNode reply = JsonNodeFactory.instance.objectNode();
            reply.set("return", result == null ? JsonNodeFactory.instance.objectNode() : result);
            if (id != null) {
                reply.set("id", id);
            }
            send(reply);
        } catch (QmpException e) {
            sendError(id, e.errorClass(), e.getMessage());
        } catch (RuntimeException e) {
            LOG.warn("QMP command failed: {}", request, e);
            sendError(id, QmpException.ErrorClass.GenericError, e.getMessage() == null ? e.toString() : e.getMessage());
        }
    }

    private JsonNode dispatch(ObjectNode request) {
        String name = null;
        ObjectNode arguments = null;
        Iterator<Map.Entry<String, JsonNode>> it = request.properties().iterator();
        while (it.hasNext()) {
            Map.Entry<String, JsonNode> member = it.next();
            switch (member.getKey()) {
                case "execute" -> {
                    if (!member.getValue().isTextual()) {
                        throw QmpException.generic("QMP input member 'execute' must be a string");
                    }
                    name = member.getValue().asText();
                }
                case "arguments" -> {
                    if (!member.getValue().isObject()) {
                        throw QmpException.generic("QMP input member 'arguments' must be an object");
                    }
                    arguments = (ObjectNode) member.getValue();
                }
                case "id" -> {
                }
                default -> throw QmpException.generic("QMP input member '" + member.getKey() + "' is unexpected");
            }
        }
        if (name == null) {
            throw QmpException.generic("QMP input lacks member 'execute'");
        }
        if (!negotiated) {
            if (!name.equals(CAPABILITIES)) {
                throw new QmpException(QmpException.ErrorClass.CommandNotFound,
                        "Expecting capabilities negotiation with 'qmp_capabilities'");
            }
            negotiate(arguments);
            return null;
        }
        if (name.equals(CAPABILITIES)) {
            throw new QmpException(QmpException.ErrorClass.CommandNotFound, "Capabilities negotiation is already complete, command ignored");
        }
        QmpCommand command = server.command(name);
        if (command == null) {
            throw new QmpException(QmpException.ErrorClass.CommandNotFound, "The command " + name + " has not been found");
        }
        return command.handler().execute(QmpArguments.check(command, arguments));
    }

    private static final QmpCommand CAPABILITIES_COMMAND = QmpCommand.of(CAPABILITIES,
            java.util.List.of(QmpCommand.Parameter.optional("enable", QmpCommand.Type.STRING_LIST)), a -> null);

    private void negotiate(ObjectNode arguments) {
        QmpArguments args = QmpArguments.check(CAPABILITIES_COMMAND, arguments);
        for (String capability : args.strings("enable")) {
            if (capability.equals("oob")) {
                throw QmpException.generic("Capability oob not available");
            }
            throw QmpException.generic("Parameter 'enable' does not accept value '" + capability + "' (this server offers no capabilities)");
        }
        negotiated = true;
    }

    /**
     * Queues {@code message} for the client; callable from any thread. A client with more than
     * {@link QmpServer#OUTPUT_LIMIT} queued is disconnected: replies and events both count.
     */
    void send(JsonNode message) {
        Channel c = channel;
        if (c == null || overLimit.get()) {
            return;
        }
        String text;
        try {
            text = server.mapper().writeValueAsString(message) + "\r\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot serialise a QMP message", e);
        }
        c.writeAndFlush(Unpooled.wrappedBuffer(text.getBytes(StandardCharsets.US_ASCII)));
        long queued = queuedBytes(c);
        server.outputQueued(queued);
        if (queued > QmpServer.OUTPUT_LIMIT && overLimit.compareAndSet(false, true)) {
            LOG.warn("QMP {} left {} bytes of replies and events unread, over the limit of {} bytes; disconnecting it "
                    + "(a QMP client must read what the server sends)", this, queued, QmpServer.OUTPUT_LIMIT);
            c.close();
        }
    }

    /** Output written for the client and not yet taken by its socket (including writes submitted from other threads). */
    private static long queuedBytes(Channel c) {
        ChannelOutboundBuffer queue = c.unsafe().outboundBuffer();
        return queue == null ? 0 : queue.totalPendingWriteBytes();
    }

    private void sendError(JsonNode id, QmpException.ErrorClass errorClass, String desc) {
        ObjectNode error = JsonNodeFactory.instance.objectNode();
        error.put("class", errorClass.name());
        error.put("desc", desc);
        ObjectNode reply = JsonNodeFactory.instance.objectNode();
        reply.set("error", error);
        if (id != null) {
            reply.set("id", id);
        }
        send(reply);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        LOG.debug("QMP connection failed, closing it", cause);
        ctx.close();
    }
}
