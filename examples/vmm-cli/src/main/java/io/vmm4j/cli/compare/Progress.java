package io.vmm4j.cli.compare;

import java.io.PrintStream;

/** A one-line progress bar on a terminal stream: {@code [#####.....] 5/10 emulated: transmit 64 B}. */
public final class Progress {
    private final PrintStream out;
    private final int total;
    private final long start = System.nanoTime();
    private int done;

    public Progress(PrintStream out, int total) {
        this.out = out;
        this.total = Math.max(total, 1);
    }

    public synchronized void step(String what) {
        int width = 24;
        int filled = Math.min(width, done * width / total);
        out.printf("\r[%s%s] %2d/%d %4.0fs  %-40s", "#".repeat(filled), ".".repeat(width - filled), done, total,
                (System.nanoTime() - start) / 1e9, what);
        out.flush();
        done++;
    }

    public synchronized void finish() {
        out.printf("\r[%s] %d/%d %4.0fs  %-40s%n", "#".repeat(24), total, total, (System.nanoTime() - start) / 1e9, "done");
    }
}
