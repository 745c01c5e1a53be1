package io.vmm4j.guest;

import io.vmm4j.core.linux.ChildProcess;
import io.vmm4j.core.linux.LibC;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.locks.LockSupport;

/**
 * tapflood, the host side's raw-tap ceiling (src/main/c/host/tapflood.c, compiled by the Maven
 * build with gcc like the guest): a C program that writes frames into a tap or reads them out of
 * it, one syscall per frame as the data planes do, or sends UDP datagrams into the host stack, for
 * a given time, and says how many. It runs as a child process that inherits the tap's queue fd,
 * so it measures exactly the tap the caller opened (it refuses one without IFF_TAP, IFF_NO_PI and
 * IFF_VNET_HDR, or with another vnet header size). No Java loop is in the measurement.
 */
public final class TapFlood {
    static final String RESOURCE = "tapflood";
    /** The fd number the child finds the tap at. */
    private static final int CHILD_TAP_FD = 3;
    private static Path executable;

    private TapFlood() {
    }

    /** What one run counted: frames (or datagrams), their bytes (without the vnet header), failed calls, and how long it ran. */
    public record Result(long frames, long bytes, long errors, double seconds) {
        public double framesPerSecond() {
            return seconds > 0 ? frames / seconds : 0;
        }

        static Result parse(String output) {
            for (String line : output.lines().toList().reversed()) {
                if (line.startsWith("frames=")) {
                    long[] v = new long[3];
                    double seconds = 0;
                    for (String field : line.trim().split(" ")) {
                        String[] kv = field.split("=", 2);
                        switch (kv[0]) {
                            case "frames" -> v[0] = Long.parseLong(kv[1]);
                            case "bytes" -> v[1] = Long.parseLong(kv[1]);
                            case "errors" -> v[2] = Long.parseLong(kv[1]);
                            case "seconds" -> seconds = Double.parseDouble(kv[1]);
                            default -> {
                            }
                        }
                    }
                    return new Result(v[0], v[1], v[2], seconds);
                }
            }
            throw new IllegalStateException("tapflood printed no result line: " + output.strip());
        }
    }

    /** Whether this build has the helper (it had gcc). */
    public static boolean built() {
        return TapFlood.class.getResource(RESOURCE) != null;
    }

    /** Writes {@code frame} (after a zero vnet header: no offloads) to the tap, one write() per frame, for {@code seconds}. */
    public static Run write(int tapFd, int vnetHeaderSize, double seconds, byte[] frame) {
        return write(tapFd, vnetHeaderSize, seconds, frame, -1);
    }

    /** As {@link #write(int, int, double, byte[])}, pinned to CPU {@code cpu} ({@code taskset -c}; -1: not pinned). */
    public static Run write(int tapFd, int vnetHeaderSize, double seconds, byte[] frame, int cpu) {
        List<String> args = new ArrayList<>(cpu < 0 ? List.of() : List.of("taskset", "-c", Integer.toString(cpu)));
        args.addAll(List.of("write", Integer.toString(CHILD_TAP_FD), Integer.toString(vnetHeaderSize), secondsArg(seconds),
                HexFormat.of().formatHex(frame)));
        return start(args, tapFd);
    }

    /** Reads frames from the tap, one read() per frame, for {@code seconds}. */
    public static Run read(int tapFd, int vnetHeaderSize, double seconds) {
        return start(List.of("read", Integer.toString(CHILD_TAP_FD), Integer.toString(vnetHeaderSize), secondsArg(seconds)), tapFd);
    }

    /**
     * Sends UDP datagrams of {@code payload} bytes from {@code source} (an address of this host) to {@code destination:port}
     * for {@code seconds} or until {@code max} are sent (sendmmsg, 64 per call).
     */
    public static Run send(String source, String destination, int port, int payload, double seconds, long max) {
        if (port < 1 || port > 65535 || payload < 0 || payload > 65507) {
            throw new IllegalArgumentException("tapflood send: port " + port + " must be 1..65535 and payload " + payload
                    + " 0..65507 bytes (a UDP datagram in IPv4)");
        }
        List<String> args = new ArrayList<>(List.of("send", source, destination, Integer.toString(port), Integer.toString(payload),
                secondsArg(seconds)));
        if (max > 0) {
            args.add(Long.toString(max));
        }
        return start(args, -1);
    }

    private static String secondsArg(double seconds) {
        if (!(seconds > 0 && seconds <= 3600)) {
            throw new IllegalArgumentException("tapflood runs for (0, 3600] seconds, not " + seconds);
        }
        return String.format(Locale.ROOT, "%.6f", seconds);
    }

    private static synchronized Path executable() {
        if (executable == null) {
            try (InputStream in = TapFlood.class.getResourceAsStream(RESOURCE)) {
                if (in == null) {
                    throw new IllegalStateException("the tap ceiling helper (tapflood) was not built (this build had no gcc): "
                            + "apt-get install gcc, then rebuild (./vmm build)");
                }
                Path file = Files.createTempFile("vmm4j-tapflood", "", PosixFilePermissions.asFileAttribute(
                        PosixFilePermissions.fromString("rwx------")));
                file.toFile().deleteOnExit();
                Files.write(file, in.readAllBytes());
                executable = file;
            } catch (IOException e) {
                throw new UncheckedIOException("cannot unpack the tap ceiling helper: " + e.getMessage(), e);
            }
        }
        return executable;
    }

    /** Runs the helper with {@code args}; a leading {@code taskset -c N} runs it through taskset, pinned. */
    private static Run start(List<String> args, int tapFd) {
        List<String> command = new ArrayList<>();
        if (!args.isEmpty() && args.getFirst().equals("taskset")) {
            command.add("/usr/bin/taskset");
            command.addAll(args.subList(1, 3));
            args = args.subList(3, args.size());
        }
        command.add(executable().toString());
        command.addAll(args);
        Path output;
        try {
            output = Files.createTempFile("vmm4j-tapflood", ".out");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the helper's output file: " + e.getMessage(), e);
        }
        int out = LibC.open(output.toString(), LibC.O_WRONLY | LibC.O_CLOEXEC);
        try {
            Map<Integer, Integer> inherit = tapFd < 0 ? Map.of(1, out, 2, out) : Map.of(1, out, 2, out, CHILD_TAP_FD, tapFd);
            for (int fd : inherit.values()) {
                if (fd <= CHILD_TAP_FD) {
                    throw new IllegalStateException("fd " + fd + " would be overwritten in the child before it is copied");
                }
            }
            return new Run(ChildProcess.spawn(command, Map.of("PATH", "/usr/bin:/bin"), inherit), output, String.join(" ", args));
        } finally {
            LibC.close(out);
        }
    }

    /** A running helper: {@link #await} its result; closing kills it if it still runs. */
    public static final class Run implements AutoCloseable {
        private final ChildProcess child;
        private final Path output;
        private final String what;

        private Run(ChildProcess child, Path output, String what) {
            this.child = child;
            this.output = output;
            this.what = what;
        }

        /** Waits for the helper to finish (killing it after {@code timeout}); its result, or an exception with what it printed. */
        public Result await(Duration timeout) {
            long deadline = System.nanoTime() + timeout.toNanos();
            Integer code;
            while ((code = child.exitCodeIfDone()) == null && System.nanoTime() < deadline) {
                LockSupport.parkNanos(5_000_000);
            }
            String printed = printed();
            if (code == null) {
                close();
                throw new IllegalStateException("tapflood " + what.split(" ")[0] + " did not finish within " + timeout.toSeconds() + " s");
            }
            if (code != 0) {
                throw new IllegalStateException("tapflood " + what.split(" ")[0] + " failed (exit " + code + "): " + printed.strip());
            }
            return Result.parse(printed);
        }

        private String printed() {
            try {
                return Files.readString(output);
            } catch (IOException e) {
                return "<unreadable: " + e.getMessage() + ">";
            }
        }

        @Override
        public void close() {
            child.close();
            try {
                Files.deleteIfExists(output);
            } catch (IOException ignored) {
                // a temporary file
            }
        }
    }
}
