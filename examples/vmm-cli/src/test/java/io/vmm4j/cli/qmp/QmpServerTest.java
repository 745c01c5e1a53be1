package io.vmm4j.cli.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static io.vmm4j.cli.qmp.QmpCommand.Parameter.optional;
import static io.vmm4j.cli.qmp.QmpCommand.Parameter.required;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The QMP protocol layer on a real UNIX socket with a stand-in command set: greeting,
 * negotiation, replies and ids, every class of bad input (the connection survives each), streams
 * that split or join commands, the parser reset by a control character, events to several
 * clients, where the socket may be created, and hostile clients: ones that hang up by the
 * thousand, end their input with replies still queued, never read, or send invalid UTF-8.
 */
class QmpServerTest {
    @TempDir
    Path dir;
    private QmpServer server;
    private Path socket;

    private static final List<QmpCommand> COMMANDS = List.of(
            QmpCommand.of("echo", List.of(required("text", QmpCommand.Type.STRING), optional("n", QmpCommand.Type.INTEGER)), a -> {
                ObjectNode r = JsonNodeFactory.instance.objectNode();
                r.put("text", a.string("text"));
                r.put("n", a.has("n") ? a.integer("n") : -1);
                return r;
            }),
            QmpCommand.of("query-things", a -> JsonNodeFactory.instance.arrayNode().add("a").add("b")),
            QmpCommand.of("no-device", a -> {
                throw new QmpException(QmpException.ErrorClass.DeviceNotFound, "Device 'x' not found");
            }),
            QmpCommand.of("crash", a -> {
                throw new IllegalStateException("the handler broke");
            }));

    @BeforeEach
    void start() {
        socket = dir.resolve("vm.qmp");
        server = QmpServer.start(socket, VmCommands.version(), COMMANDS);
    }

    @AfterEach
    void stop() {
        server.close();
    }

    private QmpTestClient negotiated() throws Exception {
        QmpTestClient c = QmpTestClient.connect(socket);
        c.next(); // greeting
        assertEquals("{}", c.execute("{\"execute\": \"qmp_capabilities\"}").get("return").toString());
        return c;
    }

    private static void assertError(JsonNode reply, String errorClass, String descPart) {
        assertTrue(reply.has("error"), "an error reply: " + reply);
        assertEquals(errorClass, reply.get("error").get("class").asText(), reply.toString());
        assertTrue(reply.get("error").get("desc").asText().contains(descPart), "desc names the problem: " + reply);
        assertFalse(reply.has("return"), reply.toString());
    }

    @Test
    void socketIsOwnerOnlyAndGoneAfterClose() throws Exception {
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(socket)));
        try (var files = Files.list(dir)) {
            assertEquals(List.of(socket), files.toList(), "no staging directory left behind");
        }
        server.close();
        assertFalse(Files.exists(socket));
        server = QmpServer.start(socket, VmCommands.version(), COMMANDS); // for @AfterEach
    }

    @Test
    void greetingThenCapabilitiesThenCommandsWithIds() throws Exception {
        try (QmpTestClient c = QmpTestClient.connect(socket)) {
            String raw = c.nextLine(5000);
            JsonNode greeting = new com.fasterxml.jackson.databind.ObjectMapper().readTree(raw);
            JsonNode qmp = greeting.get("QMP");
            assertEquals(0, qmp.get("version").get("qemu").get("major").asInt());
            assertEquals("vmm4j 0.1.0", qmp.get("version").get("package").asText());
            assertTrue(qmp.get("capabilities").isArray() && qmp.get("capabilities").isEmpty(), raw);

            JsonNode early = c.execute("{\"execute\": \"query-things\", \"id\": 7}");
            assertError(early, "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
            assertEquals(7, early.get("id").asInt());

            assertError(c.execute("{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}}"), "GenericError",
                    "Capability oob not available");
            assertEquals("{}", c.execute("{\"execute\": \"qmp_capabilities\", \"id\": 1}").get("return").toString());
            assertError(c.execute("{\"execute\": \"qmp_capabilities\"}"), "CommandNotFound", "already complete");

            JsonNode r = c.execute("{\"execute\": \"query-things\", \"id\": {\"any\": [\"json\", 1]}}");
            assertEquals("[\"a\",\"b\"]", r.get("return").toString());
            assertEquals("{\"any\":[\"json\",1]}", r.get("id").toString(), "the id comes back as sent");
            JsonNode e = c.execute("{\"execute\": \"echo\", \"arguments\": {\"text\": \"hi\", \"n\": 3}, \"id\": \"x\"}");
            assertEquals("hi", e.get("return").get("text").asText());
            assertEquals(3, e.get("return").get("n").asInt());
            assertEquals("x", e.get("id").asText());
            assertNull(c.execute("{\"execute\": \"echo\", \"arguments\": {\"text\": \"no id\"}}").get("id"));
        }
    }

    @Test
    void badInputGetsQmpErrorsAndTheConnectionSurvives() throws Exception {
        try (QmpTestClient c = negotiated()) {
            assertError(c.execute("{ \"execute\": }"), "GenericError", "JSON parse error");
            assertError(c.execute("[1, 2]"), "GenericError", "QMP input must be a JSON object");
            assertError(c.execute("42"), "GenericError", "QMP input must be a JSON object");
            assertError(c.execute("nonsense"), "GenericError", "JSON parse error");
            assertError(c.execute("{\"arguments\": {}}"), "GenericError", "QMP input lacks member 'execute'");
            assertError(c.execute("{\"execute\": 5}"), "GenericError", "QMP input member 'execute' must be a string");
            assertError(c.execute("{\"execute\": \"echo\", \"arguments\": [1]}"), "GenericError",
                    "QMP input member 'arguments' must be an object");
            assertError(c.execute("{\"execute\": \"echo\", \"extra\": 1}"), "GenericError", "QMP input member 'extra' is unexpected");
            assertError(c.execute("{\"execute\": \"echo\", \"execute\": \"echo\"}"), "GenericError", "JSON parse error");
            JsonNode unknown = c.execute("{\"execute\": \"no-such-command\", \"id\": 9}");
            assertError(unknown, "CommandNotFound", "The command no-such-command has not been found");
            assertEquals(9, unknown.get("id").asInt());
            assertError(c.execute("{\"execute\": \"echo\"}"), "GenericError", "Parameter 'text' is missing");
            assertError(c.execute("{\"execute\": \"echo\", \"arguments\": {\"text\": 1}}"), "GenericError",
                    "Invalid parameter type for 'text', expected: string");
            assertError(c.execute("{\"execute\": \"echo\", \"arguments\": {\"text\": \"a\", \"n\": 1.5}}"), "GenericError",
                    "Invalid parameter type for 'n', expected: integer");
            assertError(c.execute("{\"execute\": \"echo\", \"arguments\": {\"text\": \"a\", \"colour\": \"red\"}}"), "GenericError",
                    "Parameter 'colour' is unexpected");
            assertError(c.execute("{\"execute\": \"no-device\", \"id\": 2}"), "DeviceNotFound", "Device 'x' not found");
            assertError(c.execute("{\"execute\": \"crash\"}"), "GenericError", "the handler broke");
            assertEquals("ok", c.execute("{\"execute\": \"echo\", \"arguments\": {\"text\": \"ok\"}}").get("return").get("text").asText(),
                    "still serving after every error above");
        }
    }

    @Test
    void commandsMaySplitAcrossWritesOrShareOne() throws Exception {
        try (QmpTestClient c = negotiated()) {
            c.sendRaw("{\"execute\": \"echo\", \"argu");
            Thread.sleep(50);
            c.sendRaw("ments\": {\"text\": \"a } ] { [ \\\" b\"}, \"id\": 1}");
            JsonNode r = c.reply();
            assertEquals("a } ] { [ \" b", r.get("return").get("text").asText(), "brackets and quotes inside strings do not split");
            c.sendRaw("{\"execute\":\"echo\",\"arguments\":{\"text\":\"one\"}}{\"execute\":\"echo\",\"arguments\":{\"text\":\"two\"}}\r\n");
            assertEquals("one", c.reply().get("return").get("text").asText());
            assertEquals("two", c.reply().get("return").get("text").asText());
            c.sendRaw("{\"execute\":\"echo\",\"arguments\":{\"text\":\"caf\u00e9 \u2603\"}}".getBytes(StandardCharsets.UTF_8));
            String line = c.nextLine(5000);
            assertTrue(line.contains("caf\\u00E9 \\u2603"), "output is ASCII, non-ASCII escaped: " + line);
        }
    }

    @Test
    void aControlCharacterDropsPartialInputAndResetsTheParser() throws Exception {
        try (QmpTestClient c = negotiated()) {
            c.sendRaw("{\"execute\": \"echo\", \"arguments\": {\"text\": ");
            c.sendRaw(new byte[] {0x1B}); // ESC: the qmp-spec's way to get the parser back
            assertError(c.reply(), "GenericError", "invalid character 0x1b");
            assertEquals("after", c.execute("{\"execute\": \"echo\", \"arguments\": {\"text\": \"after\"}}").get("return").get("text").asText());
            c.sendRaw(new byte[] {(byte) 0xFF});
            assertError(c.reply(), "GenericError", "invalid character 0xff");
        }
    }

    @Test
    void oversizedInputIsReportedOnceAndSkipped() throws Exception {
        try (QmpTestClient c = negotiated()) {
            c.sendRaw("{\"execute\": \"echo\", \"arguments\": {\"text\": \"" + "x".repeat(QmpServer.MAX_INPUT + 10));
            assertError(c.reply(), "GenericError", "longer than " + QmpServer.MAX_INPUT + " bytes");
            // the value is still open: the server refused it without waiting for its end, and drops the rest as it comes
            for (int i = 0; i < 8; i++) {
                c.sendRaw("x".repeat(1 << 20));
            }
            c.sendRaw("\"}}\n");
            JsonNode after = c.execute("{\"execute\": \"echo\", \"arguments\": {\"text\": \"small\"}}");
            assertEquals("small", after.get("return").get("text").asText(), "no second error: the rest was skipped");
            assertError(c.execute("[".repeat(100_000) + "]".repeat(100_000)), "GenericError", "JSON parse error");
            assertEquals("ok", c.execute("{\"execute\": \"echo\", \"arguments\": {\"text\": \"ok\"}}").get("return").get("text").asText(),
                    "deep nesting is refused, not a stack overflow");
        }
    }

    @Test
    void invalidUtf8IsRefusedAsQemuDoesAndTheSessionGoesOn() throws Exception {
        byte[][] invalid = {
                {(byte) 0xC3, '('},                       // a lead byte without its continuation
                {(byte) 0x80},                            // a continuation byte alone
                {(byte) 0xC0, (byte) 0xAF},               // an overlong '/'
                {(byte) 0xED, (byte) 0xA0, (byte) 0x80},  // a UTF-16 surrogate, U+D800
                {(byte) 0xF4, (byte) 0x90, (byte) 0x80, (byte) 0x80}, // above U+10FFFF
                {(byte) 0xE2, (byte) 0x82},               // cut short by the closing quote
        };
        try (QmpTestClient c = negotiated()) {
            for (byte[] bad : invalid) {
                ByteArrayOutputStream command = new ByteArrayOutputStream();
                command.writeBytes("{\"execute\": \"echo\", \"arguments\": {\"text\": \"a".getBytes(StandardCharsets.US_ASCII));
                command.writeBytes(bad);
                command.writeBytes("b\"}, \"id\": 5}\n".getBytes(StandardCharsets.US_ASCII));
                c.sendRaw(command.toByteArray());
                JsonNode reply = c.reply();
                assertError(reply, "GenericError", "JSON parse error, invalid UTF-8 sequence in string");
                assertNull(reply.get("id"), "like QEMU, no id: the request was never parsed");
            }
            c.sendRaw(new byte[] {'{', '"', 'e', 'x', 'e', 'c', 'u', 't', 'e', '"', (byte) 0x80, ':', '"', 'e', 'c', 'h', 'o', '"', '}', '\n'});
            assertError(c.reply(), "GenericError", "invalid UTF-8");
            assertEquals("caf\u00e9", c.execute("{\"execute\": \"echo\", \"arguments\": {\"text\": \"caf\u00e9\"}}").get("return").get("text").asText(),
                    "valid UTF-8 still works after the errors");
        }
    }

    @Test
    void eventsReachEveryNegotiatedClientOnly() throws Exception {
        try (QmpTestClient a = negotiated(); QmpTestClient b = negotiated(); QmpTestClient fresh = QmpTestClient.connect(socket)) {
            fresh.next(); // greeting, no negotiation
            waitForClients(3);
            ObjectNode data = JsonNodeFactory.instance.objectNode().put("name", "net0");
            server.emit("NIC_RX_FILTER_CHANGED", data);
            for (QmpTestClient c : List.of(a, b)) {
                JsonNode e = c.next();
                assertEquals("NIC_RX_FILTER_CHANGED", e.get("event").asText());
                assertEquals("net0", e.get("data").get("name").asText());
                long seconds = e.get("timestamp").get("seconds").asLong();
                long micros = e.get("timestamp").get("microseconds").asLong();
                assertTrue(Math.abs(seconds - System.currentTimeMillis() / 1000) < 60, e.toString());
                assertTrue(micros >= 0 && micros < 1_000_000, e.toString());
            }
            assertNull(fresh.nextLine(300), "no events before qmp_capabilities");
        }
    }

    @Test
    void backendDisconnectBecomesAnEvent() throws Exception {
        VmEvents events = new VmEvents();
        events.publishTo(server);
        try (QmpTestClient c = negotiated()) {
            waitForClients(1);
            events.connected("netdev0", "/run/vhost-user.sock");
            events.disconnected("netdev0", "the backend closed the socket");
            JsonNode up = c.awaitEvent("NETDEV_VHOST_USER_CONNECTED");
            assertEquals("netdev0", up.get("data").get("netdev-id").asText());
            JsonNode down = c.awaitEvent("NETDEV_VHOST_USER_DISCONNECTED");
            assertEquals("netdev0", down.get("data").get("netdev-id").asText());
        }
    }

    @Test
    void aClientDoneSendingGetsItsRepliesThenTheServerHangsUp() throws Exception {
        try (QmpTestClient c = QmpTestClient.connect(socket)) {
            c.next();
            c.sendRaw("{\"execute\": \"qmp_capabilities\"}\n{\"execute\": \"query-things\", \"id\": 1}\n");
            c.shutdownOutput(); // what socat does at the end of its input
            assertEquals("{}", c.reply().get("return").toString());
            assertEquals(1, c.reply().get("id").asInt());
            assertTrue(c.closedWithin(5000), "QEMU closes the connection when the client's input ends; so does this server");
            waitForClients(0);
        }
    }

    @Test
    void repliesStillQueuedWhenTheClientEndsItsInputAreDeliveredBeforeTheHangUp() throws Exception {
        String text = "y".repeat(600_000); // three replies of this are far more than the socket buffers hold
        try (QmpTestClient c = QmpTestClient.connectWithoutReading(socket)) {
            AtomicReference<Exception> writeFailure = new AtomicReference<>();
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    c.sendRaw("{\"execute\": \"qmp_capabilities\"}\n");
                    for (int id = 1; id <= 3; id++) {
                        c.sendRaw("{\"execute\": \"echo\", \"arguments\": {\"text\": \"" + text + "\"}, \"id\": " + id + "}\n");
                    }
                    c.shutdownOutput();
                } catch (IOException e) {
                    writeFailure.set(e);
                }
            });
            Thread.sleep(300); // the replies pile up in the server, unread
            c.startReading();
            assertTrue(c.next().has("QMP"));
            assertEquals("{}", c.reply().get("return").toString());
            for (int id = 1; id <= 3; id++) {
                JsonNode r = c.reply();
                assertEquals(id, r.get("id").asInt(), r.toString().substring(0, 100));
                assertEquals(text.length(), r.get("return").get("text").asText().length(), "reply " + id + " arrives whole");
            }
            assertTrue(c.closedWithin(5000), "then the server hangs up");
            writer.join(5000);
            assertNull(writeFailure.get());
            waitForClients(0);
        }
    }

    @Test
    void clientsThatHangUpLeaveNoFileDescriptorBehind() throws Exception {
        connectReadGreetingAndHangUp(50); // warm-up: classes loaded, buffers allocated
        waitForClients(0);
        long before = openFds();
        connectReadGreetingAndHangUp(2000);
        long deadline = System.currentTimeMillis() + 10_000;
        long after = openFds();
        while (after - before > 20 && System.currentTimeMillis() < deadline) {
            Thread.sleep(50);
            after = openFds();
        }
        assertTrue(after - before <= 20, "2000 clients came and went; open fds grew from " + before + " to " + after
                + " (" + server.clients() + " connections still open)");
        waitForClients(0);
    }

    @Test
    void aClientThatNeverReadsIsThrottledThenDisconnectedWhileOthersAreServed() throws Exception {
        PrintStream stderr = System.err;
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        try (QmpTestClient other = negotiated(); SocketChannel flood = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            flood.connect(UnixDomainSocketAddress.of(socket));
            writeFully(flood, "{\"execute\": \"qmp_capabilities\"}\n");
            flood.configureBlocking(false);
            waitForClients(2);

            // the other client goes on asking while the flood runs
            AtomicLong slowestReplyNanos = new AtomicLong();
            AtomicReference<Throwable> otherFailed = new AtomicReference<>();
            AtomicBoolean floodOver = new AtomicBoolean();
            Thread prober = Thread.ofPlatform().daemon().start(() -> {
                try {
                    while (!floodOver.get()) {
                        long t0 = System.nanoTime();
                        assertEquals("alive", other.execute("{\"execute\": \"echo\", \"arguments\": {\"text\": \"alive\"}}")
                                .get("return").get("text").asText());
                        slowestReplyNanos.accumulateAndGet(System.nanoTime() - t0, Math::max);
                        Thread.sleep(20);
                    }
                } catch (Throwable t) {
                    otherFailed.set(t);
                }
            });

            System.setErr(new PrintStream(new TeeStream(stderr, log), true));
            // "{}" is 2 bytes in and about 70 bytes of error out: pipelined and never read, the replies pile up
            ByteBuffer chunk = ByteBuffer.wrap("{}".repeat(32 * 1024).getBytes(StandardCharsets.US_ASCII));
            long written = 0;
            long stalledSince = 0;
            boolean throttled = false;
            boolean disconnected = false;
            while (written < (64L << 20) && server.peakQueuedOutputBytes() <= 4L * QmpServer.OUTPUT_LIMIT) {
                if (!chunk.hasRemaining()) {
                    chunk.rewind();
                }
                int n;
                try {
                    n = flood.write(chunk);
                } catch (IOException hungUp) {
                    disconnected = true;
                    break;
                }
                if (n > 0) {
                    written += n;
                    stalledSince = 0;
                } else if (stalledSince == 0) {
                    stalledSince = System.nanoTime();
                } else if (System.nanoTime() - stalledSince > 1_000_000_000L) {
                    throttled = true; // the server stopped reading it
                    break;
                } else {
                    Thread.sleep(1);
                }
            }
            assertTrue(throttled || disconnected, "the server neither stopped reading the never-reading client nor hung up: it took "
                    + written + " bytes of commands and queued up to " + server.peakQueuedOutputBytes() + " bytes of replies");

            // events still go to a throttled client; they push its queue over the limit and it is disconnected
            ObjectNode data = JsonNodeFactory.instance.objectNode().put("pad", "z".repeat(1000));
            for (int i = 0; i < 20_000 && server.clients() > 1; i++) {
                server.emit("X_TEST_FILLER", data);
                if (i % 100 == 0) {
                    Thread.sleep(5); // the other client keeps up
                }
            }
            waitForClients(1);
            System.setErr(stderr);
            long peak = server.peakQueuedOutputBytes();
            assertTrue(peak <= QmpServer.OUTPUT_LIMIT + (64 << 10), "queued output stayed within the limit: peak " + peak);
            String logged = log.toString(StandardCharsets.UTF_8);
            assertTrue(logged.lines().anyMatch(l -> l.contains("pid " + ProcessHandle.current().pid())
                    && l.contains(String.valueOf(QmpServer.OUTPUT_LIMIT)) && l.contains("disconnecting")), "a log line names the client and the limit: " + logged);

            flood.configureBlocking(true);
            ByteBuffer sink = ByteBuffer.allocate(64 << 10);
            long drained = 0;
            try {
                int n;
                while ((n = flood.read(sink.clear())) >= 0) {
                    drained += n;
                }
            } catch (IOException reset) {
                // the server hung up with commands of ours unread: a UNIX socket then reports ECONNRESET
            }
            assertTrue(drained < QmpServer.OUTPUT_LIMIT, "what reached the socket before the hang-up: " + drained);

            floodOver.set(true);
            prober.join(10_000);
            assertNull(otherFailed.get(), () -> "the other client was not served: " + otherFailed.get());
            assertTrue(slowestReplyNanos.get() < 3_000_000_000L, "the other client's slowest reply took " + slowestReplyNanos.get() / 1_000_000 + " ms");
            assertEquals("still", other.execute("{\"execute\": \"echo\", \"arguments\": {\"text\": \"still\"}}").get("return").get("text").asText());
        } finally {
            System.setErr(stderr);
        }
    }

    @Test
    void aStaleSocketIsReplacedButALiveOneOrAFileIsNot(@TempDir Path other) throws Exception {
        Path stale = other.resolve("stale.qmp");
        try (ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            s.bind(UnixDomainSocketAddress.of(stale));
        } // closed: the file stays, nobody answers
        assertTrue(Files.exists(stale));
        QmpServer.start(stale, VmCommands.version(), COMMANDS).close();

        IllegalArgumentException live = assertThrows(IllegalArgumentException.class,
                () -> QmpServer.start(socket, VmCommands.version(), COMMANDS));
        assertTrue(live.getMessage().contains(socket.toString()) && live.getMessage().contains("in use"), live.getMessage());

        Path file = Files.writeString(other.resolve("notes.txt"), "keep me");
        IllegalArgumentException notSocket = assertThrows(IllegalArgumentException.class,
                () -> QmpServer.start(file, VmCommands.version(), COMMANDS));
        assertTrue(notSocket.getMessage().contains("not a socket"), notSocket.getMessage());
        assertEquals("keep me", Files.readString(file));

        IllegalArgumentException noDir = assertThrows(IllegalArgumentException.class,
                () -> QmpServer.start(other.resolve("missing/vm.qmp"), VmCommands.version(), COMMANDS));
        assertTrue(noDir.getMessage().contains("does not exist"), noDir.getMessage());
    }

    private void connectReadGreetingAndHangUp(int times) throws IOException {
        for (int i = 0; i < times; i++) {
            try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                ch.connect(UnixDomainSocketAddress.of(socket));
                ByteBuffer b = ByteBuffer.allocate(4096);
                while (b.position() == 0 || b.get(b.position() - 1) != '\n') {
                    if (ch.read(b) < 0) {
                        throw new IOException("the server hung up before its greeting");
                    }
                }
            }
        }
    }

    private static long openFds() throws IOException {
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count();
        }
    }

    private static void writeFully(SocketChannel ch, String text) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(text.getBytes(StandardCharsets.US_ASCII));
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    /** Copies what is written to two streams: the log stays visible while the test reads it. */
    private static final class TeeStream extends java.io.OutputStream {
        private final java.io.OutputStream a;
        private final java.io.OutputStream b;

        TeeStream(java.io.OutputStream a, java.io.OutputStream b) {
            this.a = a;
            this.b = b;
        }

        @Override
        public synchronized void write(int c) throws IOException {
            a.write(c);
            b.write(c);
        }

        @Override
        public synchronized void write(byte[] buf, int off, int len) throws IOException {
            a.write(buf, off, len);
            b.write(buf, off, len);
        }
    }

    private void waitForClients(int n) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 5000;
        while (server.clients() != n && System.currentTimeMillis() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(n, server.clients());
    }
}
