package io.vmm4j.examples.linux;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** The host's own view of the guest's link, from host tools. */
final class HostTools {
    /**
     * The tap's transmit offloads, as {@code ethtool -k} shows them: on a tap these follow
     * TUNSETOFFLOAD (tun.c set_offload), so they say what the host kernel may hand the guest
     * unchecksummed or unsegmented, which must match the GUEST_* features Linux's driver acked.
     */
    static final List<String> TAP_FEATURES = List.of("tx-checksumming", "tx-checksum-ip-generic", "scatter-gather",
            "tcp-segmentation-offload", "tx-tcp-segmentation", "tx-tcp-ecn-segmentation", "tx-tcp6-segmentation", "tx-udp-segmentation");

    private HostTools() {
    }

    /** The {@link #TAP_FEATURES} lines of {@code ethtool -k NAME}, or one line saying why there are none. */
    static List<String> ethtoolFeatures(String name) {
        try {
            Process p = new ProcessBuilder("ethtool", "-k", name).redirectErrorStream(true)
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
                p.destroyForcibly();
                return List.of("(ethtool -k " + name + " failed: " + out.strip() + ")");
            }
            return out.lines().map(String::strip).filter(l -> TAP_FEATURES.contains(l.split(":")[0])).toList();
        } catch (IOException e) {
            return List.of("(no ethtool on this host: " + e.getMessage() + "; apt-get install ethtool)");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return List.of("(interrupted)");
        }
    }
}
