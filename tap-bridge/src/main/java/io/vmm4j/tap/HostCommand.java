package io.vmm4j.tap;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * Runs host commands for the control path: iproute2's {@code ip} (and whatever a test runs in a
 * namespace). Each command gets a deadline; output is collected in full on both streams.
 */
final class HostCommand {
    /** Control-path commands finish in milliseconds; a hung one is a fault to report, not to wait for. */
    static final long TIMEOUT_SECONDS = 10;

    private static volatile Path ipPath;

    private HostCommand() {
    }

    /** Runs {@code command} (its first element is looked up on PATH by the OS) and returns how it ended. */
    static CommandResult run(List<String> command) {
        ProcessBuilder builder = new ProcessBuilder(command).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        // Fixed, untranslated output: callers parse ethtool and ip output.
        builder.environment().put("LC_ALL", "C");
        Process process;
        try {
            process = builder.start();
        } catch (IOException e) {
            throw new TapException("could not start `" + String.join(" ", command) + "`: " + e.getMessage()
                    + "; install it or put it on PATH", 0, e);
        }
        CompletableFuture<String> stdout = drain(process.getInputStream());
        CompletableFuture<String> stderr = drain(process.getErrorStream());
        try {
            if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor();
                throw new TapException("`" + String.join(" ", command) + "` did not finish within " + TIMEOUT_SECONDS
                        + " s and was killed; stderr so far: " + stderr.getNow("").strip());
            }
            return new CommandResult(command, process.exitValue(), stdout.get(), stderr.get());
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new TapException("interrupted while running `" + String.join(" ", command) + "`", 0, e);
        } catch (ExecutionException e) {
            throw new TapException("could not read the output of `" + String.join(" ", command) + "`: " + e.getCause(), 0, e.getCause());
        }
    }

    private static CompletableFuture<String> drain(InputStream stream) {
        CompletableFuture<String> text = new CompletableFuture<>();
        Thread.ofVirtual().name("host-command-output").start(() -> {
            try (stream) {
                text.complete(new String(stream.readAllBytes(), StandardCharsets.UTF_8));
            } catch (IOException e) {
                text.completeExceptionally(new UncheckedIOException(e));
            }
        });
        return text;
    }

    /**
     * {@code ip [-n netns] args...}: the iproute2 command line for one operation, run in
     * {@code netns} when it is not null (ip -n enters the namespace itself, see ip(8)).
     */
    static List<String> ip(String netns, String... args) {
        List<String> command = new ArrayList<>();
        command.add(ipExecutable().toString());
        if (netns != null) {
            command.add("-n");
            command.add(netns);
        }
        command.addAll(List.of(args));
        return command;
    }

    /** Runs {@code ip [-n netns] args...} and throws, naming {@code doing}, if it fails. */
    static CommandResult runIp(String doing, String netns, String... args) {
        return run(ip(netns, args)).orThrow(doing);
    }

    /** The ip binary: PATH first, then the sbin directories a non-login root shell may lack. */
    static Path ipExecutable() {
        Path found = ipPath;
        if (found == null) {
            Set<String> dirs = new LinkedHashSet<>(List.of(System.getenv().getOrDefault("PATH", "").split(":")));
            dirs.addAll(List.of("/usr/sbin", "/sbin", "/usr/bin", "/bin"));
            for (String dir : dirs) {
                if (dir.isEmpty()) {
                    continue;
                }
                Path candidate = Path.of(dir, "ip");
                if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
                    found = candidate;
                    break;
                }
            }
            if (found == null) {
                throw new TapException("iproute2's ip command was not found on PATH or in /usr/sbin, /sbin: "
                        + "install it (apt-get install iproute2)");
            }
            ipPath = found;
        }
        return found;
    }
}
