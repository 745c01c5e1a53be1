package io.vmm4j.cli.config;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A VM described in a JSON file ({@code ./vmm run --config vm.json}). Every field is optional
 * (absent or null: the flag's default) and maps to one {@code ./vmm run} flag, which overrides it:
 *
 * <pre>
 * {
 *   "backend": "emulated",                       --backend
 *   "memoryMiB": 128,                            --memory
 *   "net": {
 *     "port": "tap", "tap": "vmm4j0", "bridge": null,   --port --tap --bridge
 *     "mac": "52:54:00:12:34:56", "mtu": 1500,         --mac --mtu
 *     "queues": 1, "queueSize": 256,                   --queues --queue-size
 *     "hostIp": "10.0.2.2/24", "socket": null          --host-ip --socket
 *     "socketListen": null, "reconnect": 0,            --socket-listen --reconnect
 *     "ring": "split", "pollUs": 0                     --ring --poll-us
 *   },
 *   "guest": {
 *     "ip": "10.0.2.15", "features": ["GUEST_CSUM"],   --guest-ip --guest-features
 *     "ping": {"target": "10.0.2.2", "count": 3, "size": 56, "intervalMs": 200},  --ping --count --ping-size --interval
 *     "udpPort": 0, "serveSeconds": 0,                 --udp-port --serve
 *     "workload": {"kind": "tx-flood", "frameSize": 64, "durationMs": 1000}  --workload --frame-size --duration-ms
 *   },
 *   "management": {"qmp": "/run/vm.qmp", "metrics": "127.0.0.1:9464", "pcap": "/tmp/vm.pcap"}, --qmp --metrics --pcap
 *   "vcpu": "kvm",                                --vcpu
 *   "linux": {"kernel": "/boot/vmlinuz", "initrd": "guest.cpio.gz", "append": "console=ttyS0 ...", "cpus": 1}
 *                                                 --kernel --initrd --append --cpus
 * }
 * </pre>
 */
public record VmConfig(String backend, Integer memoryMiB, Net net, Guest guest, Management management, String vcpu, Linux linux) {
    public record Net(String port, String tap, String bridge, String mac, Integer mtu, Integer queues, Integer queueSize,
                      String hostIp, String socket, String socketListen, Integer reconnect, String ring,
                      Integer pollUs) {
    }

    public record Guest(String ip, List<String> features, Ping ping, Integer udpPort, Integer serveSeconds, Workload workload) {
    }

    /** A flood of the C guest on KVM. */
    public record Workload(String kind, Integer frameSize, Integer durationMs) {
    }

    public record Ping(String target, Integer count, Integer size, Integer intervalMs) {
    }

    public record Management(String qmp, String metrics, String pcap) {
    }

    /** A Linux guest booted directly instead of ours. */
    public record Linux(String kernel, String initrd, String append, Integer cpus) {
    }

    /** The JSON path of the field each flag corresponds to, for messages about a value that came from the file. */
    public static final Map<String, String> FIELD_OF_FLAG = Map.ofEntries(
            Map.entry("--backend", "$.backend"), Map.entry("--memory", "$.memoryMiB"),
            Map.entry("--port", "$.net.port"), Map.entry("--tap", "$.net.tap"), Map.entry("--bridge", "$.net.bridge"),
            Map.entry("--mac", "$.net.mac"), Map.entry("--mtu", "$.net.mtu"), Map.entry("--queues", "$.net.queues"),
            Map.entry("--queue-size", "$.net.queueSize"), Map.entry("--host-ip", "$.net.hostIp"), Map.entry("--socket", "$.net.socket"),
            Map.entry("--socket-listen", "$.net.socketListen"), Map.entry("--reconnect", "$.net.reconnect"),
            Map.entry("--ring", "$.net.ring"), Map.entry("--poll-us", "$.net.pollUs"),
            Map.entry("--guest-ip", "$.guest.ip"), Map.entry("--guest-features", "$.guest.features"),
            Map.entry("--ping", "$.guest.ping.target"), Map.entry("--count", "$.guest.ping.count"),
            Map.entry("--ping-size", "$.guest.ping.size"), Map.entry("--interval", "$.guest.ping.intervalMs"),
            Map.entry("--udp-port", "$.guest.udpPort"), Map.entry("--serve", "$.guest.serveSeconds"),
            Map.entry("--workload", "$.guest.workload.kind"), Map.entry("--frame-size", "$.guest.workload.frameSize"),
            Map.entry("--duration-ms", "$.guest.workload.durationMs"),
            Map.entry("--qmp", "$.management.qmp"), Map.entry("--metrics", "$.management.metrics"),
            Map.entry("--pcap", "$.management.pcap"), Map.entry("--vcpu", "$.vcpu"), Map.entry("--kernel", "$.linux.kernel"),
            Map.entry("--initrd", "$.linux.initrd"), Map.entry("--append", "$.linux.append"), Map.entry("--cpus", "$.linux.cpus"));

    /**
     * The file's values keyed by the {@code ./vmm run} flag each one sets (only fields present),
     * typed as the flag's field: Integer, String, String[] or Path.
     */
    public Map<String, Object> asFlags() {
        Map<String, Object> flags = new LinkedHashMap<>();
        put(flags, "--backend", backend);
        put(flags, "--memory", memoryMiB);
        if (net != null) {
            put(flags, "--port", net.port());
            put(flags, "--tap", net.tap());
            put(flags, "--bridge", net.bridge());
            put(flags, "--mac", net.mac());
            put(flags, "--mtu", net.mtu());
            put(flags, "--queues", net.queues());
            put(flags, "--queue-size", net.queueSize());
            put(flags, "--host-ip", net.hostIp());
            put(flags, "--socket", net.socket());
            put(flags, "--socket-listen", net.socketListen());
            put(flags, "--reconnect", net.reconnect());
            put(flags, "--ring", net.ring());
            put(flags, "--poll-us", net.pollUs());
        }
        if (guest != null) {
            put(flags, "--guest-ip", guest.ip());
            if (guest.features() != null) {
                flags.put("--guest-features", guest.features().toArray(String[]::new));
            }
            if (guest.ping() != null) {
                put(flags, "--ping", guest.ping().target());
                put(flags, "--count", guest.ping().count());
                put(flags, "--ping-size", guest.ping().size());
                put(flags, "--interval", guest.ping().intervalMs());
            }
            put(flags, "--udp-port", guest.udpPort());
            put(flags, "--serve", guest.serveSeconds());
            if (guest.workload() != null) {
                put(flags, "--workload", guest.workload().kind());
                put(flags, "--frame-size", guest.workload().frameSize());
                put(flags, "--duration-ms", guest.workload().durationMs());
            }
        }
        if (management != null) {
            put(flags, "--qmp", management.qmp() == null ? null : Path.of(management.qmp()));
            put(flags, "--metrics", management.metrics());
            put(flags, "--pcap", management.pcap() == null ? null : Path.of(management.pcap()));
        }
        put(flags, "--vcpu", vcpu);
        if (linux != null) {
            put(flags, "--kernel", linux.kernel() == null ? null : Path.of(linux.kernel()));
            put(flags, "--initrd", linux.initrd() == null ? null : Path.of(linux.initrd()));
            put(flags, "--append", linux.append());
            put(flags, "--cpus", linux.cpus());
        }
        return flags;
    }

    private static void put(Map<String, Object> flags, String flag, Object value) {
        if (value != null) {
            flags.put(flag, value);
        }
    }
}
