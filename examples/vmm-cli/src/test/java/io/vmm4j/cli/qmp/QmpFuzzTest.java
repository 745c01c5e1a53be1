package io.vmm4j.cli.qmp;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vmm4j.cli.capture.PacketCapture;
import io.vmm4j.cli.vm.ToyVm;
import io.vmm4j.cli.vm.VmOptions;
import org.junit.jupiter.api.AfterAll;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static io.vmm4j.cli.qmp.QmpCommand.Parameter.optional;
import static io.vmm4j.cli.qmp.QmpCommand.Parameter.required;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Fuzz target: the QMP line decoder and command dispatch of a real {@link QmpServer} over its Unix
 * socket, serving the toy VM's own {@link VmCommands} (an in-process VM on the in-memory port,
 * booted and stopped, as ManagementInProcessTest runs it) plus a typed test command and one whose
 * handler throws. {@code x-vmm4j-pcap} is left out: it writes files at client-chosen paths.
 * Each input is one client: optionally the capabilities handshake, then a stream of pieces
 * (raw bytes, control characters, invalid UTF-8, unbalanced brackets, and well-formed
 * {@code execute} objects with fuzzed names, arguments of every JSON type and ids), sent in
 * fuzzed chunks, then end of input. Invariants: the server answers with whole lines, each one JSON
 * object that is a greeting, a {@code return}, an {@code error} or an {@code event} (a bad command
 * is a clear error, a handler's exception an error too); the session ends once the client's input
 * ends (no hang) with bounded output; the server serves the next client and leaves no client and
 * no descriptor behind.
 */
class QmpFuzzTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long MAX_OUTPUT = 1 << 20;
    private static final List<QmpCommand> TEST_COMMANDS = List.of(
            QmpCommand.of("echo", List.of(required("text", QmpCommand.Type.STRING), optional("n", QmpCommand.Type.INTEGER)), a -> {
                ObjectNode r = JsonNodeFactory.instance.objectNode();
                r.put("text", a.string("text"));
                r.put("n", a.has("n") ? a.integer("n") : -1);
                return r;
            }),
            QmpCommand.of("crash", a -> {
                throw new IllegalStateException("the handler broke");
            }));
    private static final String[] NAMES = {"qmp_capabilities", "echo", "crash", "query-version", "query-status", "query-commands",
            "query-pci", "query-rx-filter", "set_link", "system_reset", "quit", "x-vmm4j-query-virtio", "x-vmm4j-query-backend",
            "x-vmm4j-pcap", "nope", ""};
    private static final String[] VALUES = {"1", "-1", "9223372036854775808", "1.5", "\"s\"", "true", "null", "[]", "{}", "\"\\u0000\"",
            "\"\\ud800\"", "{\"text\":\"x\"}", "{\"text\":1}", "{\"text\":\"x\",\"n\":\"1\"}", "{\"text\":\"x\",\"extra\":1}",
            "{\"name\":\"net0\",\"up\":false}", "{\"name\":\"net0\",\"up\":true}", "{\"name\":\"net1\",\"up\":1}",
            "{\"name\":\"net0\"}", "{\"action\":\"stop\"}"};

    private static Path dir;
    private static ToyVm vm;
    private static QmpServer server;

    private static QmpServer server() throws Exception {
        if (server == null) {
            dir = Files.createTempDirectory("qmp-fuzz");
            vm = new ToyVm(VmOptions.builder().port(VmOptions.Port.MEMORY).count(0).intervalMs(50).build(),
                    new PrintStream(OutputStream.nullOutputStream()));
            VmEvents events = new VmEvents();
            events.attach(vm);
            vm.run(); // boots the NIC, no pings, then stops: every query has a VM to describe
            List<QmpCommand> commands = new ArrayList<>(TEST_COMMANDS);
            new VmCommands(vm, new PacketCapture(() -> vm.net().backend()), events).all().stream()
                    .filter(c -> !c.name().equals("x-vmm4j-pcap"))
                    .forEach(commands::add);
            server = QmpServer.start(dir.resolve("qmp.sock"), VmCommands.version(), commands);
            events.publishTo(server);
            // one client first: what the server and the JDK open once, on their first connection, is not a leak
            converse(server.path(), new byte[0], 1);
            while (server.clients() > 0) {
                Thread.sleep(1);
            }
        }
        return server;
    }

    @AfterAll
    static void stop() throws IOException {
        if (server != null) {
            server.close();
            vm.close();
            Files.deleteIfExists(dir.resolve("qmp.sock"));
            Files.deleteIfExists(dir);
            server = null;
        }
    }

    @FuzzTest(maxDuration = "20s")
    void lines(FuzzedDataProvider data) throws Exception {
        QmpServer s = server();
        long fdsBefore = openFds();
        ByteArrayOutputStream input = new ByteArrayOutputStream();
        int chunk = data.consumeInt(1, 4096);
        if (data.consumeBoolean()) {
            input.writeBytes("{\"execute\":\"qmp_capabilities\"}".getBytes(StandardCharsets.UTF_8));
        }
        while (data.remainingBytes() > 0 && input.size() < 64 * 1024) {
            switch (data.consumeInt(0, 3)) {
                case 0 -> input.writeBytes(data.consumeBytes(data.consumeInt(0, 64)));
                case 1 -> input.writeBytes(data.consumeAsciiString(data.consumeInt(0, 64)).getBytes(StandardCharsets.US_ASCII));
                default -> {
                    StringBuilder c = new StringBuilder("{\"execute\":\"").append(data.pickValue(NAMES)).append('"');
                    if (data.consumeBoolean()) {
                        c.append(",\"arguments\":").append(data.consumeBoolean() ? data.pickValue(VALUES) : data.consumeAsciiString(16));
                    }
                    if (data.consumeBoolean()) {
                        c.append(",\"id\":").append(data.pickValue(VALUES));
                    }
                    c.append(data.consumeBoolean() ? "}" : "}\n");
                    input.writeBytes(c.toString().getBytes(StandardCharsets.UTF_8));
                }
            }
        }
        String output = converse(s.path(), input.toByteArray(), chunk);
        String[] lines = output.split("\r?\n", -1);
        assertEquals("", lines[lines.length - 1], "the output ends with a whole line");
        for (int i = 0; i < lines.length - 1; i++) {
            JsonNode reply = JSON.readTree(lines[i]);
            assertTrue(reply.isObject() && (reply.has("QMP") || reply.has("return") || reply.has("error") || reply.has("event")),
                    "not a QMP message: " + lines[i]);
            if (reply.has("error")) {
                assertTrue(reply.get("error").path("desc").isTextual(), "an error says what is wrong: " + lines[i]);
            }
        }
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (s.clients() > 0) {
            assertTrue(System.nanoTime() < deadline, "the session did not end after the client went");
            Thread.sleep(1);
        }
        // at most as many as before (the JVM may close one of its own meanwhile): the session left no descriptor open
        long fdsAfter = openFds();
        assertTrue(fdsAfter <= fdsBefore, (fdsAfter - fdsBefore) + " descriptor(s) left open after the session ended");
    }

    private static long openFds() throws IOException {
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count();
        }
    }

    /** Sends the input in fuzzed chunks, ends it, and reads everything until the server closes (bounded in time and size). */
    private static String converse(Path socket, byte[] input, int chunk) throws IOException, InterruptedException {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(socket));
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            Thread reader = Thread.ofPlatform().daemon().start(() -> {
                ByteBuffer buf = ByteBuffer.allocate(8192);
                try {
                    while (ch.read(buf) >= 0 && out.size() < MAX_OUTPUT * 2) {
                        synchronized (out) {
                            out.write(buf.array(), 0, buf.position());
                        }
                        buf.clear();
                    }
                } catch (IOException ignored) {
                    // the server reset the connection: end of its output
                }
            });
            for (int off = 0; off < input.length; off += chunk) {
                ch.write(ByteBuffer.wrap(input, off, Math.min(chunk, input.length - off)));
            }
            ch.shutdownOutput();
            reader.join(10_000);
            if (reader.isAlive()) {
                fail("the server did not close the session within 10 s of the client's end of input");
            }
            synchronized (out) {
                assertTrue(out.size() <= MAX_OUTPUT, "more than 1 MiB of replies to at most 64 KiB of input");
                return out.toString(StandardCharsets.UTF_8);
            }
        }
    }
}
