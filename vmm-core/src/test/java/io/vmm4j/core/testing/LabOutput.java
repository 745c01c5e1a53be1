package io.vmm4j.core.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.fail;

/** What the lab tests read from a guest's console and from the host's helper scripts. */
public final class LabOutput {
    private LabOutput() {
    }

    /** The first line containing {@code prefix}, from it on (kernel messages can precede it on a console line), or null. */
    public static String line(String text, String prefix) {
        return text.lines().filter(l -> l.contains(prefix)).map(l -> l.substring(l.indexOf(prefix))).findFirst().orElse(null);
    }

    /** Runs {@code cmd} on the host and returns its standard output; fails the test unless it exits 0 with some output. */
    public static String runOnHost(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0 || out.isEmpty()) {
            fail(String.join(" ", cmd) + " failed (exit " + (p.isAlive() ? "timeout" : p.exitValue()) + "): " + out);
        }
        return out;
    }

    /**
     * Everything {@code lab} prints (its console, stdout and stderr merged) until it ends, echoing the
     * lines {@code shown} picks to the test log as progress; fails the test, with the console so far,
     * if it runs longer than {@code seconds}.
     */
    public static String console(Process lab, int seconds, Predicate<String> shown) throws InterruptedException {
        StringBuilder console = new StringBuilder();
        Thread reader = Thread.ofPlatform().start(() -> {
            try (var lines = lab.inputReader(StandardCharsets.ISO_8859_1).lines()) {
                lines.forEach(line -> {
                    synchronized (console) {
                        console.append(line).append('\n');
                    }
                    if (shown.test(line)) {
                        System.out.println(line); // progress in the test log
                    }
                });
            }
        });
        if (!lab.waitFor(seconds, TimeUnit.SECONDS)) {
            lab.destroyForcibly();
            reader.join(5000);
            fail("the lab did not finish in " + seconds + " s; console:\n" + console);
        }
        reader.join(5000);
        synchronized (console) {
            return console.toString();
        }
    }
}
