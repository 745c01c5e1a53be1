package io.vmm4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.vmm4j.cli.vm.InVmmHost;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.tap.PacketPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.user.VhostUserNetDaemon;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "vhost-user-backend", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
            "Run a vhost-user virtio-net back-end: a process of its own that serves the rings of a VMM's NIC over a UNIX socket "
                    + "(./vmm run --backend vhost-user, or QEMU's -netdev vhost-user). The VMM keeps the control plane; this process "
                    + "maps the guest memory it is sent, waits on the kick eventfds and signals the call eventfds.",
            "It listens on --socket, serves one front-end at a time and outlives each: when a front-end goes, its per-queue "
                    + "counters are printed and the next one is accepted. Frames go to a tap (--tap, created with --host-ip if it "
                    + "does not exist) or to an in-memory port answered by a small IPv4 host inside this process (--port memory).",
            "Every message is checked; a bad one is refused (REPLY_ACK) or ends that connection, never the daemon. "
                    + "The acked features are logged. SIGTERM stops it (and writes --stats-json)."},
        footer = {"", "Examples:",
                "  ./vmm vhost-user-backend --socket /tmp/vu.sock --tap vu0 &",
                "  ./vmm run --backend vhost-user --socket /tmp/vu.sock --count 5",
                "",
                "  ./vmm vhost-user-backend --socket /tmp/vu.sock --port memory --stats-json /tmp/vu-stats.json",
                "",
                "With QEMU as the front-end (guest RAM must be shared memory; vectors=0 avoids a QEMU 7.2 TCG MSI-X crash):",
                "  qemu-system-x86_64 ... -object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem \\",
                "    -chardev socket,id=vu,path=/tmp/vu.sock -netdev vhost-user,id=n0,chardev=vu \\",
                "    -device virtio-net-pci,netdev=n0,vectors=0"})
public final class VhostUserBackendCommand implements Callable<Integer> {
    @Option(names = "--socket", required = true, description = "UNIX socket to listen on (a stale socket file is replaced).")
    Path socket;

    @Option(names = "--tap", description = "Tap to move frames to; created (with --host-ip, link up) if it does not exist.")
    String tap;

    @Option(names = "--port", description = "memory: an in-memory port whose peer is an IPv4 host inside this process (no root needed).")
    String port;

    @Option(names = "--queues", defaultValue = "1", description = "Queue pairs served (and tap queues). Default: ${DEFAULT-VALUE}.")
    int queues;

    @Option(names = "--host-ip", defaultValue = "10.0.2.2/24",
            description = "Address/prefix of a tap this command creates, or of the in-memory host. Default: ${DEFAULT-VALUE}.")
    String hostIp;

    @Option(names = "--stats-json", description = "Write the counters (per queue, per front-end) and acked features to this file "
            + "after each front-end and on exit.")
    Path statsJson;

    @Override
    public Integer call() throws Exception {
        PrintStream log = System.out;
        if ((tap == null) == (port == null)) {
            throw new IllegalArgumentException("give exactly one of --tap NAME (a tap, created if missing) or --port memory");
        }
        if (port != null && !port.equals("memory")) {
            throw new IllegalArgumentException("--port takes only 'memory', not '" + port + "'; for a tap use --tap NAME");
        }
        if (queues < 1 || queues > 16) {
            throw new IllegalArgumentException("--queues must be 1..16, was " + queues);
        }
        if (!hostIp.matches("\\d+\\.\\d+\\.\\d+\\.\\d+(/\\d+)?")) {
            throw new IllegalArgumentException("--host-ip must look like 10.0.2.2/24, was '" + hostIp + "'");
        }
        List<AutoCloseable> resources = new ArrayList<>();
        PacketPort packets;
        boolean createdTap = false;
        if (tap != null) {
            createdTap = !Files.exists(Path.of("/sys/class/net", tap));
            TapDevice device = TapDevice.open(tap, queues, TapDevice.VNET_HEADER_V1_SIZE);
            resources.add(device);
            if (createdTap) {
                device.addAddress(hostIp);
                log.printf("vhost-user-backend: tap %s created, host side %s%n", device.name(), hostIp);
            }
            device.setUp();
            packets = device;
        } else {
            MemoryPort[] pair = MemoryPort.pair(queues, TapDevice.VNET_HEADER_V1_SIZE);
            resources.add(pair[0]);
            resources.add(pair[1]);
            String address = hostIp.contains("/") ? hostIp.substring(0, hostIp.indexOf('/')) : hostIp;
            resources.add(new InVmmHost(pair[1], address));
            log.printf("vhost-user-backend: in-memory port, host at %s inside this process%n", address);
            packets = pair[0];
        }
        VhostUserNetDaemon daemon = new VhostUserNetDaemon(socket, packets,
                new VhostUserNetDaemon.Options(queues, createdTap, VhostUserNetDaemon.DEFAULT_MESSAGE_TIMEOUT_MILLIS), log);
        if (statsJson != null) {
            daemon.onSessionEnd(s -> writeStats(daemon, log));
        }
        Thread stop = Thread.ofPlatform().unstarted(() -> {
            daemon.close(3_000);
            writeStats(daemon, log);
            log.printf("vhost-user-backend: stopped after %d front-end(s)%n", daemon.frontends());
            for (int i = resources.size() - 1; i >= 0; i--) {
                try {
                    resources.get(i).close();
                } catch (Exception e) {
                    log.println("vhost-user-backend: closing " + resources.get(i) + " failed: " + e.getMessage());
                }
            }
        });
        Runtime.getRuntime().addShutdownHook(stop);
        daemon.serve(); // returns once the shutdown hook has closed the daemon
        return 0;
    }

    private synchronized void writeStats(VhostUserNetDaemon daemon, PrintStream log) {
        if (statsJson == null) {
            return;
        }
        try {
            Path tmp = statsJson.resolveSibling(statsJson.getFileName() + ".tmp");
            new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(tmp.toFile(), daemon.stats());
            Files.move(tmp, statsJson, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            log.println("vhost-user-backend: writing " + statsJson + " failed: " + e.getMessage());
        }
    }
}
