package io.vmm4j.cli.qmp;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelConfig;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.util.concurrent.DefaultThreadFactory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The control socket: a UNIX stream socket (mode 0600, so only its owner may connect) speaking
 * the shape of QEMU's QMP (docs/interop/qmp-spec.rst): a greeting, {@code qmp_capabilities} first,
 * then {@code {"execute", "arguments", "id"}} answered by {@code {"return", "id"}} or
 * {@code {"error": {"class", "desc"}, "id"}}, and asynchronous events with a timestamp. Several
 * clients may be connected; every command runs on the server's one event-loop thread, so commands
 * never run concurrently.
 *
 * <p>Built on Netty's native epoll transport: the server owns its sockets, so Netty's channel
 * model fits (unlike the data plane's raw kernel fds, which vmm4j's own epoll loop serves).
 */
public final class QmpServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(QmpServer.class);
    /** The longest JSON value a client may send. */
    static final int MAX_INPUT = 1 << 20;
    /**
     * Output (replies and events) queued for one client above which the server stops reading that
     * client's commands, so a client that pipelines without reading is throttled; reading resumes
     * once the queue is below {@link #RESUME_READING_AT}.
     */
    static final int PAUSE_READING_AT = 1 << 20;
    static final int RESUME_READING_AT = 256 << 10;
    /** A client that lets more than this much output pile up unread is disconnected. */
    static final int OUTPUT_LIMIT = 4 << 20;
    /** How long the server waits before accepting again after accept failed (EMFILE: out of file descriptors). */
    static final int ACCEPT_RETRY_MILLIS = 1000;
    /** sun_path holds 108 bytes including the terminating NUL. */
    private static final int MAX_SOCKET_PATH = 107;

    private final Path path;
    private final ObjectNode version;
    private final Map<String, QmpCommand> commands = new LinkedHashMap<>();
    private final Set<QmpSession> sessions = ConcurrentHashMap.newKeySet();
    private final AtomicLong peakQueuedOutput = new AtomicLong();
    private final AtomicInteger clientNumbers = new AtomicInteger();
    private final ObjectMapper mapper = JsonMapper.builder()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(JsonWriteFeature.ESCAPE_NON_ASCII) // the server "sends its output encoded in ASCII"
            .build();
    private EventLoopGroup group;
    private Channel serverChannel;
    /** Removes the socket when the JVM is stopped by a signal before {@link #close()} runs. */
    private final Thread removeOnExit = Thread.ofPlatform().unstarted(this::removeSocket);

    private QmpServer(Path path, ObjectNode version, Collection<QmpCommand> commands) {
        this.path = path;
        this.version = version;
        for (QmpCommand c : commands) {
            if (this.commands.put(c.name(), c) != null || c.name().equals(QmpSession.CAPABILITIES)) {
                throw new IllegalArgumentException("QMP command " + c.name() + " defined twice");
            }
        }
    }

    /**
     * Listens on {@code path}. A stale socket there (nobody answering) is replaced; a live one, or
     * a file that is not a socket, is an error naming the path.
     *
     * @param version the greeting's version object, the same query-version returns
     */
    public static QmpServer start(Path path, ObjectNode version, Collection<QmpCommand> commands) {
        QmpServer server = new QmpServer(path.toAbsolutePath(), version, commands);
        try {
            server.listen();
        } catch (RuntimeException e) {
            server.close();
            throw e;
        }
        return server;
    }

    private void listen() {
        if (!Epoll.isAvailable()) {
            throw new IllegalStateException("--qmp needs Netty's native epoll transport, which failed to load: "
                    + Epoll.unavailabilityCause());
        }
        checkPath();
        Path dir = path.getParent();
        Path staging;
        try {
            // bind in a private directory, tighten the mode, then move into place: never connectable with a looser mode
            staging = Files.createTempDirectory(dir, ".vmm4j-qmp-", PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        } catch (IOException e) {
            throw new UncheckedIOException("--qmp " + path + ": cannot create a file in " + dir + ": " + e.getMessage()
                    + " (choose a writable directory)", e);
        }
        Path bound = staging.resolve("s");
        if (bound.toString().getBytes(StandardCharsets.UTF_8).length > MAX_SOCKET_PATH) {
            deleteQuietly(staging);
            throw new IllegalArgumentException("--qmp " + path + ": the directory's path is too long for a UNIX socket (sun_path holds "
                    + MAX_SOCKET_PATH + " bytes); choose a shorter path such as /run/vmm4j.qmp");
        }
        group = new MultiThreadIoEventLoopGroup(1, new DefaultThreadFactory("qmp", true), EpollIoHandler.newFactory());
        try {
            serverChannel = new ServerBootstrap()
                    .group(group)
                    .channel(EpollServerDomainSocketChannel.class)
                    .handler(new AcceptFailures())
                    // the channel turns unwritable at PAUSE_READING_AT, and QmpSession then stops reading the client
                    .childOption(ChannelOption.WRITE_BUFFER_WATER_MARK, new WriteBufferWaterMark(RESUME_READING_AT, PAUSE_READING_AT))
                    // the end of a client's input reaches QmpSession, which sends what is queued before closing
                    // (without half-closure Netty would close at once and drop replies not yet in the socket)
                    .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                    .childHandler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            ch.pipeline().addLast(new QmpFrameDecoder(MAX_INPUT), new QmpSession(QmpServer.this));
                        }
                    })
                    .bind(new DomainSocketAddress(bound.toString())).syncUninterruptibly().channel();
            Files.setPosixFilePermissions(bound, PosixFilePermissions.fromString("rw-------"));
            Files.move(bound, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException("--qmp " + path + ": cannot put the socket in place: " + e.getMessage(), e);
        } finally {
            deleteQuietly(staging);
        }
        Runtime.getRuntime().addShutdownHook(removeOnExit);
        LOG.debug("QMP listening on {}", path);
    }

    private void removeSocket() {
        try {
            Files.deleteIfExists(path);
        } catch (IOException e) {
            LOG.warn("could not remove QMP socket {}: {}", path, e.getMessage());
        }
    }

    private void checkPath() {
        Path dir = path.getParent();
        if (dir == null || !Files.isDirectory(dir)) {
            throw new IllegalArgumentException("--qmp " + path + ": directory " + dir + " does not exist; create it or choose another path");
        }
        if (path.toString().getBytes(StandardCharsets.UTF_8).length > MAX_SOCKET_PATH) {
            throw new IllegalArgumentException("--qmp " + path + " is longer than a UNIX socket path may be (" + MAX_SOCKET_PATH
                    + " bytes); choose a shorter path such as /run/vmm4j.qmp");
        }
        if (!Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        if (Files.isRegularFile(path, LinkOption.NOFOLLOW_LINKS) || Files.isDirectory(path, LinkOption.NOFOLLOW_LINKS)
                || Files.isSymbolicLink(path)) {
            throw new IllegalArgumentException("--qmp " + path + " exists and is not a socket; remove it or choose another path");
        }
        try (SocketChannel probe = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            probe.connect(UnixDomainSocketAddress.of(path));
            throw new IllegalArgumentException("--qmp " + path + " is in use: a server answers there (another vmm4j or QEMU?); "
                    + "stop it or choose another path");
        } catch (IOException stale) {
            LOG.debug("replacing stale socket {} ({})", path, stale.getMessage());
        }
    }

    private static void deleteQuietly(Path dir) {
        try (var files = Files.list(dir)) {
            for (Path p : files.toList()) {
                Files.deleteIfExists(p);
            }
            Files.deleteIfExists(dir);
        } catch (IOException ignored) {
            // a temporary directory left behind is harmless
        }
    }

    public Path path() {
        return path;
    }

    /** Clients connected now. */
    public int clients() {
        return sessions.size();
    }

    /** The most output ever queued for one client (written, not yet taken by the client). */
    long peakQueuedOutputBytes() {
        return peakQueuedOutput.get();
    }

    int nextClientNumber() {
        return clientNumbers.incrementAndGet();
    }

    void outputQueued(long bytes) {
        peakQueuedOutput.accumulateAndGet(bytes, Math::max);
    }

    ObjectNode version() {
        return version;
    }

    ObjectMapper mapper() {
        return mapper;
    }

    QmpCommand command(String name) {
        return commands.get(name);
    }

    void sessionOpened(QmpSession session) {
        sessions.add(session);
        LOG.debug("QMP {} connected ({} now)", session, sessions.size());
    }

    void sessionClosed(QmpSession session) {
        sessions.remove(session);
        LOG.debug("QMP {} left ({} now)", session, sessions.size());
    }

    /**
     * Failures of {@code accept} on the listening socket, typically EMFILE when the process is at
     * its file descriptor limit. The connection waits in the listen backlog, so accepting again at
     * once fails again: this pauses accepting for {@link #ACCEPT_RETRY_MILLIS} and logs the first
     * failure of a run, not every attempt (Netty's own acceptor also pauses a second, but lets the
     * exception reach the pipeline's end, which logs it with a stack trace each time).
     */
    private final class AcceptFailures extends ChannelInboundHandlerAdapter {
        private int failures; // event-loop thread only
        private long firstFailureNanos;

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object child) {
            if (failures > 0) {
                LOG.info("QMP {}: accepting clients again after {} failed attempts in {} s", path, failures,
                        (System.nanoTime() - firstFailureNanos) / 1_000_000_000L);
                failures = 0;
            }
            ctx.fireChannelRead(child);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (!(cause instanceof IOException)) {
                ctx.fireExceptionCaught(cause);
                return;
            }
            if (failures++ == 0) {
                firstFailureNanos = System.nanoTime();
                LOG.warn("QMP {}: cannot accept a client: {} ({} clients connected); retrying every {} ms, the client waits meanwhile. "
                                + "Out of file descriptors (EMFILE)? Raise the limit (ulimit -n, now {}) or close other connections",
                        path, cause.getMessage(), sessions.size(), ACCEPT_RETRY_MILLIS, fileLimit());
            }
            ChannelConfig config = ctx.channel().config();
            if (config.isAutoRead()) {
                config.setAutoRead(false);
                ctx.executor().schedule(() -> config.setAutoRead(true), ACCEPT_RETRY_MILLIS, TimeUnit.MILLISECONDS);
            }
        }

        private static String fileLimit() {
            return ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.UnixOperatingSystemMXBean unix
                    ? String.valueOf(unix.getMaxFileDescriptorCount()) : "unknown";
        }
    }

    /**
     * Sends event {@code name} with {@code data} (null: none) to every client past capabilities
     * negotiation, stamped now. Callable from any thread.
     */
    public void emit(String name, ObjectNode data) {
        Instant now = Instant.now();
        ObjectNode event = JsonNodeFactory.instance.objectNode();
        event.put("event", name);
        if (data != null) {
            event.set("data", data);
        }
        ObjectNode timestamp = event.putObject("timestamp");
        timestamp.put("seconds", now.getEpochSecond());
        timestamp.put("microseconds", now.getNano() / 1000);
        for (QmpSession s : sessions) {
            if (!s.negotiated()) {
                continue;
            }
            s.send(event); // a client over OUTPUT_LIMIT is disconnected there
        }
    }

    /** Stops listening, closes every connection (after what was queued for it) and removes the socket. */
    @Override
    public void close() {
        if (serverChannel != null) {
            serverChannel.close().syncUninterruptibly();
        }
        for (QmpSession s : sessions) {
            Channel c = s.channel();
            if (c != null) {
                c.close();
            }
        }
        if (group != null) {
            group.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
        }
        if (serverChannel != null) {
            removeSocket();
            try {
                Runtime.getRuntime().removeShutdownHook(removeOnExit);
            } catch (IllegalStateException | IllegalArgumentException exiting) {
                // the JVM is already exiting (the hook runs or ran), or the hook was never added
            }
        }
    }
}
