package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * A QMP session through {@code socat - UNIX-CONNECT:PATH}, the generic client a user would type
 * at: JSON lines go to its stdin, the server's lines come back on its stdout.
 */
final class SocatQmpClient extends io.vmm4j.cli.qmp.QmpConversation {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Process socat;
    private final OutputStream stdin;
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    /** Every line exchanged, for failure messages. */
    final List<String> transcript = new ArrayList<>();

    private SocatQmpClient(Process socat) {
        this.socat = socat;
        this.stdin = socat.getOutputStream();
        Thread.ofVirtual().start(() -> {
            try (BufferedReader out = new BufferedReader(new InputStreamReader(socat.getInputStream(), StandardCharsets.US_ASCII))) {
                String line;
                while ((line = out.readLine()) != null) {
                    lines.add(line);
                }
            } catch (IOException ignored) {
                // socat went away
            }
        });
    }

    static SocatQmpClient connect(Path socket) throws IOException {
        return new SocatQmpClient(new ProcessBuilder("socat", "-", "UNIX-CONNECT:" + socket).redirectError(ProcessBuilder.Redirect.DISCARD)
                .start());
    }

    @Override
    public void send(String json) throws IOException {
        synchronized (transcript) {
            transcript.add("-> " + json);
        }
        stdin.write((json + "\n").getBytes(StandardCharsets.UTF_8));
        stdin.flush();
    }

    /** The next line from the server, parsed. */
    @Override
    public JsonNode next() throws Exception {
        String line = lines.poll(10, TimeUnit.SECONDS);
        assertNotNull(line, "socat printed nothing within 10 s; transcript:\n" + transcript());
        synchronized (transcript) {
            transcript.add("<- " + line);
        }
        return JSON.readTree(line);
    }




    String transcript() {
        synchronized (transcript) {
            return String.join("\n", transcript);
        }
    }

    @Override
    public void close() {
        socat.destroy();
        try {
            socat.waitFor(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
