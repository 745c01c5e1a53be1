package io.vmm4j.cli.vm;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * {@code --guest linux}: the lab's cached Debian kernel and the project's initramfs, as
 * scripts/linux-guest/build-initramfs gives them ({@code --print-kernel}, and its output path;
 * the first use fetches and builds them into /var/cache/vmm4j-lab, later ones are cached).
 */
public final class LinuxGuestImage {
    static final String BUILDER = "scripts/linux-guest/build-initramfs";
    /** The first build fetches packages and the lab's kernel: minutes on a slow link. */
    private static final long BUILD_SECONDS = 900;

    /** The kernel and initramfs to boot. */
    public record Image(Path kernel, Path initrd) {
    }

    private LinuxGuestImage() {
    }

    /** Runs the builder (its progress on stderr) and returns what it printed; a failure is one line naming --guest linux. */
    public static Image locate() {
        Path builder = builder();
        Path kernel = Path.of(run(builder, "--print-kernel"));
        Path initrd = Path.of(run(builder, null));
        return new Image(kernel, initrd);
    }

    /** The builder in the source tree this VMM runs from (its classes or jar are under it), or in the working directory's. */
    static Path builder() {
        for (Path start : List.of(codeLocation(), Path.of("").toAbsolutePath())) {
            for (Path dir = start; dir != null; dir = dir.getParent()) {
                Path b = dir.resolve(BUILDER);
                if (Files.isExecutable(b)) {
                    return b;
                }
            }
        }
        throw new IllegalArgumentException("--guest linux: " + BUILDER + " not found above " + codeLocation() + " or the working "
                + "directory; run from the vmm4j source tree, or give --kernel and --initrd");
    }

    private static Path codeLocation() {
        try {
            return Path.of(LinuxGuestImage.class.getProtectionDomain().getCodeSource().getLocation().toURI()).toAbsolutePath();
        } catch (URISyntaxException | RuntimeException e) {
            return Path.of("").toAbsolutePath();
        }
    }

    private static String run(Path builder, String arg) {
        List<String> cmd = arg == null ? List.of(builder.toString()) : List.of(builder.toString(), arg);
        try {
            Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            p.getOutputStream().close();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            if (!p.waitFor(BUILD_SECONDS, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IllegalArgumentException("--guest linux: " + String.join(" ", cmd) + " did not finish in " + BUILD_SECONDS + " s");
            }
            String last = out.lines().reduce((a, b) -> b).orElse("");
            if (p.exitValue() != 0 || last.isEmpty() || !Files.isRegularFile(Path.of(last))) {
                throw new IllegalArgumentException("--guest linux: " + String.join(" ", cmd) + " failed (exit " + p.exitValue()
                        + "; its messages are above): it printed '" + last + "'");
            }
            return last;
        } catch (IOException e) {
            throw new IllegalArgumentException("--guest linux: cannot run " + builder + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalArgumentException("--guest linux: interrupted while " + builder + " ran");
        }
    }
}
