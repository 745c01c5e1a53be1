package io.vmm4j.cli.vm;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;

/**
 * A Linux guest's serial console: what the guest's 16550 sends goes to the VMM's log a whole line
 * at a time, so the VMM's own lines (printed by other threads) never land inside a console line;
 * a line without its newline yet (a prompt) follows {@link #PARTIAL_LINE_DELAY_MILLIS} after its
 * last byte. The console is kept line by line for the run summary: the last lines (for a failed
 * run), the first "Kernel panic" line, and each {@code vmm4j-result: {json}} line the project's
 * initramfs prints (scripts/linux-guest/init).
 */
final class LinuxConsole extends OutputStream {
    static final String PANIC = "Kernel panic - not syncing";
    static final String RESULT = "vmm4j-result: ";
    private static final int MAX_LINE = 4096;
    /** How long a line without its newline waits for the rest before it is logged as it is. */
    static final long PARTIAL_LINE_DELAY_MILLIS = 250;
    private static final Executor LATER = CompletableFuture.delayedExecutor(PARTIAL_LINE_DELAY_MILLIS, TimeUnit.MILLISECONDS);

    private final PrintStream log;
    private final int keep;
    private final ArrayDeque<String> tail = new ArrayDeque<>();
    private final List<Object> results = new ArrayList<>();
    private final ObjectMapper json = new ObjectMapper();
    private final StringBuilder line = new StringBuilder();
    /** The bytes of the current line not logged yet. */
    private final ByteArrayOutputStream unlogged = new ByteArrayOutputStream();
    private boolean partialFlushPending;
    private String panic;

    LinuxConsole(PrintStream log, int keep) {
        this.log = log;
        this.keep = keep;
    }

    @Override
    public synchronized void write(int b) {
        unlogged.write(b);
        if (b == '\n') {
            logUnlogged(); // one write: the log's lock keeps the line whole
            endLine();
            return;
        }
        if (b != '\r' && line.length() < MAX_LINE) {
            line.append((char) (b & 0xFF));
        }
        if (!partialFlushPending) {
            partialFlushPending = true;
            LATER.execute(this::flushPartialLine);
        }
    }

    /** Logs what the console has sent so far, a line without its newline included. */
    @Override
    public synchronized void flush() {
        logUnlogged();
        log.flush();
    }

    private synchronized void flushPartialLine() {
        partialFlushPending = false;
        logUnlogged();
    }

    private void logUnlogged() {
        if (unlogged.size() > 0) {
            log.write(unlogged.toByteArray(), 0, unlogged.size());
            unlogged.reset();
        }
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
