package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** {@code ./vmm run ...} as a separate process (optionally inside a network namespace), as a user would start it. */
final class VmmProcess implements AutoCloseable {
    private final Process process;
    private final Path stdout;
    private final Path stderr;

    private VmmProcess(Process process, Path stdout, Path stderr) {
        this.process = process;
        this.stdout = stdout;
        this.stderr = stderr;
    }

    /** The JVM command that runs the CLI from this test's class path. */
    static List<String> javaCommand(String classpath) {
        return new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", classpath, "io.vmm4j.cli.Main"));
    }

    static VmmProcess start(List<String> prefix, String... args) throws IOException {
        List<String> cmd = new ArrayList<>(prefix);
        cmd.addAll(javaCommand(System.getProperty("java.class.path")));
        cmd.addAll(List.of(args));
        return startRaw(cmd);
    }

    static VmmProcess startRaw(List<String> cmd) throws IOException {
        Path out = Files.createTempFile("vmm-out", ".txt");
        Path err = Files.createTempFile("vmm-err", ".txt");
        Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        return new VmmProcess(p, out, err);
    }

    /** Waits for the process; returns its exit code (fails the test on timeout). */
    int waitFor(long seconds) throws InterruptedException {
        if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("vmm did not finish in " + seconds + " s\nstdout:\n" + stdout() + "\nstderr:\n" + stderr());
        }
        return process.exitValue();
    }

    /** Waits until stdout or stderr contains {@code text}. */
    void awaitOutput(String text, long seconds) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < deadline) {
            if (stdout().contains(text) || stderr().contains(text)) {
                return;
            }
            if (!process.isAlive()) {
                break;
            }
            Thread.sleep(50);
        }
        throw new AssertionError("vmm never printed '" + text + "'\nstdout:\n" + stdout() + "\nstderr:\n" + stderr());
    }

    /** The process id (with {@code ip netns exec}, the JVM's own: ip execs it). */
    long pid() {
        return process.pid();
    }

    boolean alive() {
        return process.isAlive();
    }

    /** The names of the process's threads as the kernel shows them (/proc/PID/task/TID/comm, at most 15 characters). */
    java.util.List<String> threadNames() throws IOException {
        java.util.List<String> names = new ArrayList<>();
        try (java.util.stream.Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(pid()), "task"))) {
            for (Path t : tasks.toList()) {
                try {
                    names.add(Files.readString(t.resolve("comm")).strip());
                } catch (IOException exited) {
                    // the thread ended while we looked
                }
            }
        }
        return names;
    }

    /** SIGKILL: no shutdown hooks, no goodbyes. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(5, TimeUnit.SECONDS);
    }

    /** SIGTERM; returns the exit code. */
    int terminate(long seconds) throws InterruptedException {
        process.destroy();
        return waitFor(seconds);
    }

    String stdout() {
        return read(stdout);
    }

    String stderr() {
        return read(stderr);
    }

    JsonNode json() throws IOException {
        return new ObjectMapper().readTree(stdout());
    }

    String describe() {
        return "stdout:\n" + stdout() + "\nstderr:\n" + stderr();
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (IOException e) {
            return "<unreadable: " + e.getMessage() + ">";
        }
    }

    @Override
    public void close() {
        process.destroyForcibly();
        try {
            process.waitFor(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
