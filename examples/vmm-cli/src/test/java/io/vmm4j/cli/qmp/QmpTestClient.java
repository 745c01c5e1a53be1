package io.vmm4j.cli.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A bare QMP client over a JDK UNIX socket: raw bytes out, one JSON message per CRLF-terminated line in. */
public final class QmpTestClient extends QmpConversation {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final SocketChannel channel;
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    private final BufferedReader in;
    private boolean reading;

    QmpTestClient(Path socket) throws IOException {
        channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        channel.connect(UnixDomainSocketAddress.of(socket));
        in = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.US_ASCII));
    }

    /** Starts taking what the server sends (a client made by {@link #connectWithoutReading} reads nothing until then). */
    synchronized void startReading() {
        if (reading) {
            return;
        }
        reading = true;
        Thread.ofVirtual().start(() -> {
            try {
                String line;
                while ((line = in.readLine()) != null) {
                    lines.add(line);
                }
            } catch (IOException ignored) {
                // closed
            }
            lines.add("<EOF>");
        });
    }

    /** Connects and checks the greeting; returns it. */
    public static QmpTestClient connect(Path socket) throws Exception {
        QmpTestClient c = new QmpTestClient(socket);
        c.startReading();
        return c;
    }

    /** Connects but leaves everything the server sends unread (in the socket and the server) until {@link #startReading}. */
    static QmpTestClient connectWithoutReading(Path socket) throws IOException {
        return new QmpTestClient(socket);
    }

    void sendRaw(String text) throws IOException {
        sendRaw(text.getBytes(StandardCharsets.UTF_8));
    }

    void sendRaw(byte[] bytes) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        while (b.hasRemaining()) {
            channel.write(b);
        }
    }

    @Override
    public void send(String json) throws IOException {
        sendRaw(json + "\n");
    }

    void shutdownOutput() throws IOException {
        channel.shutdownOutput();
    }

    /** The next line the server sent, raw (with no CRLF), or null on timeout. */
    public String nextLine(long millis) throws InterruptedException {
        return lines.poll(millis, TimeUnit.MILLISECONDS);
    }

    /** The next message, event or not. */
    @Override
    public JsonNode next() throws Exception {
        String line = lines.poll(5, TimeUnit.SECONDS);
        assertNotNull(line, "no message from the server within 5 s");
        assertTrue(!line.equals("<EOF>"), "the server closed the connection");
        return JSON.readTree(line);
    }

    /** Whether the server closed the connection within {@code millis}. */
    boolean closedWithin(long millis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        String line;
        while ((line = lines.poll(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())), TimeUnit.MILLISECONDS)) != null) {
            if (line.equals("<EOF>")) {
                return true;
            }
        }
        return false;
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
