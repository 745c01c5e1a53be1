package io.vmm4j.cli.compare;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * The VMM's log while a Linux guest runs, which carries the guest's console a line at a time
 * (LinuxConsole): calls a handler once when a line starts with a cue (e.g. "vmm4j-guest: count:
 * ready", scripts/linux-guest/init); keeps each {@code vmm4j-result: {json}} line's JSON by workload,
 * and the last lines. Handlers run on the writing thread (often a vCPU's): they must be quick.
 */
final class ConsoleCues extends OutputStream {
    static final String RESULT = "vmm4j-result: ";
    private static final int MAX_LINE = 4096;
    private static final int TAIL = 30;

    private record Cue(String prefix, Consumer<String> handler) {
    }

    private final OutputStream copy;
    private final ObjectMapper json = new ObjectMapper();
    private final StringBuilder line = new StringBuilder();
    private final List<Cue> cues = new ArrayList<>();
    private final List<JsonNode> results = new ArrayList<>();
    private final ArrayDeque<String> tail = new ArrayDeque<>();

    /** @param copy where every byte also goes (a log file), or null */
    ConsoleCues(OutputStream copy) {
        this.copy = copy;
    }

    /** Calls {@code handler} with the line the first time a line starts with {@code prefix}. */
    synchronized void once(String prefix, Consumer<String> handler) {
        cues.add(new Cue(prefix, handler));
    }

    @Override
    public synchronized void write(int b) throws IOException {
        if (copy != null) {
            copy.write(b);
        }
        if (b == '\n') {
            endLine();
        } else if (b != '\r' && line.length() < MAX_LINE) {
            line.append((char) (b & 0xFF));
        }
    }

    @Override
    public synchronized void flush() throws IOException {
        if (copy != null) {
            copy.flush();
        }
    }

    private void endLine() {
        String l = new String(line.toString().getBytes(StandardCharsets.ISO_8859_1), StandardCharsets.UTF_8);
        line.setLength(0);
        tail.addLast(l);
        if (tail.size() > TAIL) {
            tail.removeFirst();
        }
        int at = l.indexOf(RESULT);
        if (at >= 0) {
            try {
                results.add(json.readTree(l.substring(at + RESULT.length()).strip()));
            } catch (IOException e) {
                results.add(json.createObjectNode().put("error", "not JSON: " + l.substring(at + RESULT.length()).strip()));
            }
        }
        for (int i = 0; i < cues.size(); i++) {
            Cue c = cues.get(i);
            if (l.startsWith(c.prefix())) {
                cues.remove(i);
                c.handler().accept(l);
                break;
            }
        }
    }

    /** The first result line of {@code workload}, or null. */
    synchronized JsonNode result(String workload) {
        for (JsonNode r : results) {
            if (workload.equals(r.path("workload").asText())) {
                return r;
            }
        }
        return null;
    }

    synchronized List<String> tail() {
        return List.copyOf(tail);
    }
}
