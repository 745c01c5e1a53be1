package io.vmm4j.cli.config;

import io.vmm4j.cli.metrics.MetricsAddress;
import io.vmm4j.cli.vm.DataPlane;
import io.vmm4j.cli.vm.OptionValue;
import io.vmm4j.cli.vm.SwitchPort;
import io.vmm4j.cli.vm.VmOptions;
import io.vmm4j.virtio.net.NetFeatures;

import java.util.List;
import java.util.TreeSet;

/**
 * What a VM setting may be, in one place for the config file and the flags. Each check returns
 * null when the value is fine, else a sentence with the bad value and the allowed ones; the caller
 * puts the JSON path or the flag in front.
 */
public final class VmRules {
    public static final List<String> BACKENDS = OptionValue.labels(DataPlane.class);
    public static final List<String> PORTS = OptionValue.labels(VmOptions.Port.class);
    public static final List<String> VCPUS = OptionValue.labels(VmOptions.Vcpu.class);
    /** The C guest's flood workloads (--workload). */
    public static final List<String> WORKLOADS = OptionValue.labels(io.vmm4j.cli.vm.FloodWorkload.Kind.class);
    /** The ring layouts the NIC may offer (--ring). */
    public static final List<String> RINGS = List.of("split", "packed");
    public static final int MIN_MEMORY_MIB = 16;
    public static final int MAX_MEMORY_MIB = 4096;
    public static final int MAX_QUEUE_PAIRS = 16;
    /** The guest keeps 32 two-descriptor frames in flight per transmit queue; QEMU's virtio-net stops at 1024 too. */
    public static final int MIN_QUEUE_SIZE = 64;
    public static final int MAX_QUEUE_SIZE = 1024;
    public static final int MIN_MTU = 68;
    public static final int MAX_MTU = 65535;
    /** The longest --poll-us window: one second of a spinning CPU after the last frame. */
    public static final int MAX_POLL_MICROS = 1_000_000;

    private VmRules() {
    }

    /** The longest --reconnect period: an hour (QEMU's reconnect-ms has no bound; a longer wait is better spelt as a restart). */
    public static final int MAX_RECONNECT_SECONDS = 3600;

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
        return NetRules.mac(value);
    }

    /** The guest's address or a ping target: a unicast IPv4 address. */
    public static String unicastIpv4(String value) {
        return NetRules.unicastIpv4(value);
    }

    /** The host side's address with its prefix length, like 10.0.2.2/24; without a prefix, /24. */
    public static String hostIp(String value) {
        return NetRules.hostWithPrefix(value, VmOptions.DEFAULT_HOST_PREFIX);
    }

    public static String interfaceName(String value) {
        return NetRules.interfaceName(value);
    }

    /** A --bridge value: NAME or linux:NAME (a Linux bridge), ovs:NAME (an Open vSwitch bridge). */
    public static String bridge(String value) {
        return SwitchPort.Spec.problem(value);
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
            return e.getMessage();
        }
    }

    public static String path(String value) {
        if (value.isBlank()) {
            return "an empty path is not allowed; allowed: a file path";
        }
        int nul = value.indexOf('\0');
        if (nul >= 0) {
            return quoted(value) + " contains a NUL character at index " + nul + ", which no Linux path can hold; allowed: a file path";
        }
        return null;
    }

    private static String quoted(String value) {
        return NetRules.quoted(value);
    }
}
