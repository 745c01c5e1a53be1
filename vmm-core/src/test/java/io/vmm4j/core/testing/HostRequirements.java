package io.vmm4j.core.testing;

import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Gates for tests that need privileges or host tools. On a developer machine a missing
 * capability skips the test with the reason; under {@code CI=true} it fails it, so CI can never
 * go green by skipping what it was meant to prove.
 */
public final class HostRequirements {
    private HostRequirements() {
    }

    public static boolean inCi() {
        return "true".equalsIgnoreCase(System.getenv("CI"));
    }

    /** Skips (or, under CI=true, fails) unless {@code present}; {@code what} says what is missing and how to get it. */
    public static void require(boolean present, String what) {
        if (present) {
            return;
        }
        if (inCi()) {
            Assertions.fail("missing capability under CI=true (a failure, not a skip): " + what);
        }
        Assumptions.abort("skipped, host lacks: " + what);
    }

    /**
     * A test that boots a lab VM (QEMU) runs under CI or with VMM4J_LAB=1, as root; otherwise it is
     * skipped saying how long it takes ({@code duration}) and how to run it.
     */
    public static void requireLab(String duration, String rootFor) {
        boolean wanted = inCi() || "1".equals(System.getenv("VMM4J_LAB"));
        Assumptions.assumeTrue(wanted, "the lab VM takes " + duration + ": set VMM4J_LAB=1 to run it (CI always does)");
        requireRoot(rootFor);
    }

    public static boolean isRoot() {
        return "root".equals(System.getProperty("user.name"));
    }

    public static void requireRoot(String why) {
        require(isRoot(), "root privileges (" + why + ")");
    }

    /** An executable on PATH, e.g. {@code gcc}; returns its path. */
    public static Path requireCommand(String name, String debianPackage) {
        Path found = findCommand(name);
        require(found != null, name + " on PATH (apt-get install " + debianPackage + ")");
        return found;
    }

    public static Path findCommand(String name) {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
            Path p = Path.of(dir.isEmpty() ? "." : dir, name);
            if (Files.isRegularFile(p) && Files.isExecutable(p)) {
                return p;
            }
        }
        return null;
    }

    /** /dev/kvm that this process can open (KVM tests). */
    public static void requireKvm() {
        boolean usable;
        String why;
        try {
            io.vmm4j.core.kvm.Kvm.open().close();
            usable = true;
            why = "";
        } catch (RuntimeException e) {
            usable = false;
            why = e.getMessage();
        }
        require(usable, "a usable /dev/kvm (" + why + ")");
    }

    public static void requireFile(String path, String hint) {
        require(Files.exists(Path.of(path)), path + " (" + hint + ")");
    }

    /** Root and /dev/net/tun: what making a tap needs; {@code why} says what the test makes. */
    public static void requireTaps(String why) {
        requireRoot(why);
        requireFile("/dev/net/tun", "modprobe tun");
    }

    /**
     * {@link #requireTaps} and iproute2's {@code ip}: what a test needs that makes taps and
     * configures links, addresses or network namespaces around them.
     */
    public static void requireTapsAndNamespaces(String why) {
        requireTaps(why);
        requireCommand("ip", "iproute2");
    }
}
