package io.vmm4j.cli.config;

import io.vmm4j.cli.metrics.MetricsAddress;
import io.vmm4j.virtio.net.NetFeatures;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.TreeSet;

/**
 * What a VM setting may be, in one place for the config file and the flags. Each check returns
 * null when the value is fine, else a sentence with the bad value and the allowed ones; the caller
 * puts the JSON path or the flag in front.
 */
public final class VmRules {
    public static final List<String> BACKENDS = List.of("emulated", "emulated-sync", "vhost-net", "vhost-user");
    public static final List<String> PORTS = List.of("auto", "tap", "memory");
    public static final int MIN_MEMORY_MIB = 16;
    public static final int MAX_MEMORY_MIB = 4096;
    public static final int MAX_QUEUE_PAIRS = 16;
    /** The guest keeps 32 two-descriptor frames in flight per transmit queue; QEMU's virtio-net stops at 1024 too. */
    public static final int MIN_QUEUE_SIZE = 64;
    public static final int MAX_QUEUE_SIZE = 1024;
    public static final int MIN_MTU = 68;
    public static final int MAX_MTU = 65535;
    private static final int IFNAMSIZ = 16;

    private VmRules() {
    }

    public static String oneOf(String value, List<String> allowed) {
        return allowed.contains(value) ? null : quoted(value) + " is not allowed; allowed: " + String.join(", ", allowed);
    }

    public static String range(long value, long min, long max, String unit) {
        return value >= min && value <= max ? null
                : value + " is out of range; allowed: " + min + " to " + max + (unit.isEmpty() ? "" : " " + unit);
    }

    public static String atLeast(long value, long min) {
        return value >= min ? null : value + " is out of range; allowed: " + min + " or more";
    }

    public static String queueSize(int value) {
        if (value >= MIN_QUEUE_SIZE && value <= MAX_QUEUE_SIZE && Integer.bitCount(value) == 1) {
            return null;
        }
        StringBuilder sizes = new StringBuilder();
        for (int s = MIN_QUEUE_SIZE; s <= MAX_QUEUE_SIZE; s <<= 1) {
            sizes.append(sizes.isEmpty() ? "" : ", ").append(s);
        }
        return value + (Integer.bitCount(value) == 1 ? " is out of range" : " is not a power of two") + "; allowed: a power of two from "
                + MIN_QUEUE_SIZE + " to " + MAX_QUEUE_SIZE + " (" + sizes + ")";
    }

    public static String mac(String value) {
        String[] parts = value.split(":", -1);
        boolean ok = parts.length == 6;
        for (int i = 0; ok && i < 6; i++) {
            ok = parts[i].matches("[0-9a-fA-F]{2}");
        }
        if (!ok) {
            return quoted(value) + " is not a MAC address; allowed: six hex bytes separated by colons, like 52:54:00:12:34:56";
        }
        if ((Integer.parseInt(parts[0], 16) & 1) != 0) {
            return quoted(value) + " is a multicast address; allowed: a unicast MAC (even first byte), like 52:54:00:12:34:56";
        }
        return null;
    }

    public static String ipv4(String value) {
        return isIpv4(value) ? null : quoted(value) + " is not an IPv4 address; allowed: four numbers 0..255 like 10.0.2.15";
    }

    /** The host side's address with its prefix length, like 10.0.2.2/24. */
    public static String hostIp(String value) {
        int slash = value.indexOf('/');
        String address = slash < 0 ? value : value.substring(0, slash);
        boolean ok = isIpv4(address);
        if (ok && slash >= 0) {
            String prefix = value.substring(slash + 1);
            ok = prefix.matches("\\d{1,2}") && Integer.parseInt(prefix) >= 1 && Integer.parseInt(prefix) <= 30;
        }
        return ok ? null : quoted(value) + " is not an address with prefix; allowed: IPv4/1..30 like 10.0.2.2/24";
    }

    public static String interfaceName(String value) {
        int bytes = value.getBytes(StandardCharsets.UTF_8).length;
        boolean ok = bytes > 0 && bytes < IFNAMSIZ && !value.equals(".") && !value.equals("..")
                && value.chars().noneMatch(c -> c == '/' || c == ':' || Character.isWhitespace(c));
        return ok ? null : quoted(value) + " is not an interface name; allowed: 1 to " + (IFNAMSIZ - 1)
                + " bytes without '/', ':' or whitespace";
    }

    public static String feature(String value) {
        if (NetFeatures.NAMES.containsValue(value)) {
            return null;
        }
        return quoted(value) + " is not a virtio-net feature; allowed: " + String.join(", ", new TreeSet<>(NetFeatures.NAMES.values()));
    }

    public static String metricsAddress(String value) {
        try {
            MetricsAddress.parse(value);
            return null;
        } catch (IllegalArgumentException e) {
            return quoted(value) + " is not an address; allowed: ADDR:PORT like 127.0.0.1:9464, or a port alone for 127.0.0.1";
        }
    }

    public static String path(String value) {
        return value.isBlank() ? "an empty path is not allowed; allowed: a file path" : null;
    }

    private static boolean isIpv4(String s) {
        String[] parts = s.split("\\.", -1);
        if (parts.length != 4) {
            return false;
        }
        for (String p : parts) {
            if (!p.matches("\\d{1,3}") || Integer.parseInt(p) > 255) {
                return false;
            }
        }
        return true;
    }

    private static String quoted(String value) {
        return "'" + value + "'";
    }
}
