package io.vmm4j.examples.linux;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * The guest's serial console: passes it on to {@code sink} a whole line at a time (one write, so the
 * VMM's own lines on another stream never land inside a guest line) and keeps the last lines, so the
 * harness can say whether a line appeared (the banner, a panic) and show the tail on failure.
 */
final class ConsoleRecorder extends OutputStream {
    private final OutputStream sink;
    private final int keep;
    private final ArrayDeque<String> lines = new ArrayDeque<>();
    private final List<String> seen = new ArrayList<>();
    private final StringBuilder line = new StringBuilder();
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();
    private final List<String> watched;
    private final List<Trigger> triggers = new CopyOnWriteArrayList<>();

    private record Trigger(String text, Consumer<String> action) {
    }

    /** @param watched substrings whose first line is remembered for {@link #firstLineWith} */
    ConsoleRecorder(OutputStream sink, int keep, List<String> watched) {
        this.sink = sink;
        this.keep = keep;
        this.watched = List.copyOf(watched);
    }

    @Override
    public synchronized void write(int b) throws IOException {
        pending.write(b);
        if (b == '\n') {
            passOn();
            endLine();
        } else if (b != '\r') {
            line.append((char) (b & 0xFF));
            if (line.length() > 4096) {
                passOn();
                endLine();
            }
        }
    }

    private void passOn() throws IOException {
        pending.writeTo(sink);
        pending.reset();
        sink.flush();
    }

    private void endLine() {
        String l = line.toString();
        line.setLength(0);
        lines.addLast(l);
        if (lines.size() > keep) {
            lines.removeFirst();
        }
        for (String w : watched) {
            if (l.contains(w)) {
                seen.add(l);
            }
        }
        for (Trigger t : triggers) {
            if (l.contains(t.text())) {
                triggers.remove(t);
                t.action().accept(l);
            }
        }
    }

    /**
     * Runs {@code action} with the first complete console line that contains {@code text}, once.
     * It runs on the thread that writes the console (a vCPU's), so it must hand real work off.
     */
    void onceOnLine(String text, Consumer<String> action) {
        triggers.add(new Trigger(text, action));
    }

    @Override
    public synchronized void flush() {
        try {
            passOn(); // a prompt without its newline yet
        } catch (IOException e) {
            throw new UncheckedIOException("the console's sink failed", e);
        }
    }

    /** The first console line containing {@code text} (one of the watched substrings), or null. */
    synchronized String firstLineWith(String text) {
        for (String l : seen) {
            if (l.contains(text)) {
                return l;
            }
        }
        return line.toString().contains(text) ? line.toString() : null;
    }

    /** The last lines, the unfinished one included. */
    synchronized List<String> tail() {
        List<String> t = new ArrayList<>(lines);
        if (!line.isEmpty()) {
            t.add(line.toString());
        }
        return t;
    }

    static String text(byte[] b) {
        return new String(b, StandardCharsets.ISO_8859_1);
    }
}
