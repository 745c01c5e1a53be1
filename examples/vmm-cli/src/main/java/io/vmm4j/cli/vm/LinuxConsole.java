package io.vmm4j.cli.vm;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * A Linux guest's serial console: every byte the guest's 16550 sends goes to the VMM's log as it
 * comes, and the console is kept line by line for the run summary: the last lines (for a failed
 * run), the first "Kernel panic" line, and each {@code vmm4j-result: {json}} line the project's
 * initramfs prints (scripts/linux-guest/init).
 */
final class LinuxConsole extends OutputStream {
    static final String PANIC = "Kernel panic - not syncing";
    static final String RESULT = "vmm4j-result: ";
    private static final int MAX_LINE = 4096;

    private final PrintStream log;
    private final int keep;
    private final ArrayDeque<String> tail = new ArrayDeque<>();
    private final List<Object> results = new ArrayList<>();
    private final ObjectMapper json = new ObjectMapper();
    private final StringBuilder line = new StringBuilder();
    private String panic;

    LinuxConsole(PrintStream log, int keep) {
        this.log = log;
        this.keep = keep;
    }

    @Override
    public synchronized void write(int b) {
        log.write(b);
        if (b == '\n') {
            endLine();
        } else if (b != '\r' && line.length() < MAX_LINE) {
            line.append((char) (b & 0xFF));
        }
    }

    @Override
    public synchronized void flush() {
        log.flush();
    }

    private void endLine() {
        // the console is bytes; ISO-8859-1 above keeps each one, and UTF-8 text reads back here
        String l = new String(line.toString().getBytes(StandardCharsets.ISO_8859_1), StandardCharsets.UTF_8);
        line.setLength(0);
        tail.addLast(l);
        if (tail.size() > keep) {
            tail.removeFirst();
        }
        if (panic == null && l.contains(PANIC)) {
            panic = l.substring(l.indexOf(PANIC));
        }
        int at = l.indexOf(RESULT);
        if (at >= 0) {
            String text = l.substring(at + RESULT.length()).strip();
            try {
                results.add(json.readValue(text, Object.class));
            } catch (JsonProcessingException e) {
                results.add(text); // kept as the guest printed it
            }
        }
    }

    /** The last lines, oldest first (a line still being written included). */
    synchronized List<String> tail() {
        List<String> lines = new ArrayList<>(tail);
        if (!line.isEmpty()) {
            lines.add(line.toString());
        }
        return lines;
    }

    /** The first kernel panic line, or null. */
    synchronized String panic() {
        return panic;
    }

    /** The parsed JSON of each result line, in order (the raw text where it was not JSON). */
    synchronized List<Object> results() {
        return List.copyOf(results);
    }
}
