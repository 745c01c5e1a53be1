package io.vmm4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vmm4j.cli.config.VmRules;
import io.vmm4j.cli.vm.InVmmHost;
import io.vmm4j.cli.vm.SwitchPort;
import io.vmm4j.core.linux.SocketPathException;
import io.vmm4j.core.linux.UnixListener;
import io.vmm4j.tap.DiscardPort;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.tap.PacketPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.user.VhostUserNetDaemon;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
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
                    + "does not exist), to an in-memory port answered by a small IPv4 host inside this process (--port memory), or to "
                    + "a discard port (--port discard) that counts and drops what the guest sends and fills every receive buffer "
                    + "the guest posts with one fixed UDP frame of --frame-size bytes: the engine measured without a kernel path, "
                    + "like DPDK testpmd's rxonly/txonly.",
            "Every message is checked; a bad one is refused (REPLY_ACK) or ends that connection, never the daemon. "
                    + "A connection that sends nothing within --first-message-timeout, a message that does not arrive whole within "
                    + "2 s of its first byte, and a front-end that leaves a reply unread for 2 s end that connection too. "
                    + "The acked features are logged. SIGTERM stops it (and writes --stats-json)."},
        footer = {"", "Examples:",
                "  ./vmm vhost-user-backend --socket /tmp/vu.sock --tap vu0 &",
                "  ./vmm run --backend vhost-user --socket /tmp/vu.sock --count 5",
                "",
                "  ./vmm vhost-user-backend --socket /tmp/vu.sock --tap vu0 --bridge ovs:br0   the tap as a port of OVS bridge br0",
                "",
                "  ./vmm vhost-user-backend --socket /tmp/vu.sock --port memory --stats-json /tmp/vu-stats.json",
                "",
                "  ./vmm vhost-user-backend --socket /tmp/vu.sock --port discard --stats-json /tmp/vu-stats.json   a sink and source",
                "",
                "With QEMU as the front-end (guest RAM must be shared memory; vectors=0 avoids a QEMU 7.2 TCG MSI-X crash):",
                "  qemu-system-x86_64 ... -object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem \\",
                "    -chardev socket,id=vu,path=/tmp/vu.sock -netdev vhost-user,id=n0,chardev=vu \\",
                "    -device virtio-net-pci,netdev=n0,vectors=0"})
public final class VhostUserBackendCommand implements Callable<Integer> {
    @Option(names = "--socket", required = true, description = "UNIX socket to listen on. A stale socket (nobody listening) is "
            + "replaced; a live one, or a file that is not a socket, is refused and left alone. On exit only this daemon's own "
            + "socket is removed.")
    Path socket;

    @Option(names = "--client", description = "Connect to a front-end listening at --socket (./vmm run --socket-listen PATH, "
            + "QEMU's server=on) instead of listening: retry every second until it is there, and connect again after it goes "
            + "(DPDK's vhost client=1).")
    boolean client;

    @Option(names = "--no-inflight", description = "Do not offer VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD: a front-end then keeps no "
            + "record of what this daemon has in flight, and a restart resumes from the used index (what was in flight is lost).")
    boolean noInflight;

    @Option(names = "--tap", description = "Tap to move frames to; created (with --host-ip, link up) if it does not exist.")
    String tap;

    @Option(names = "--bridge", paramLabel = "[linux:|ovs:]NAME", description = "With --tap: make the tap a port of this existing "
            + "switch instead of giving it --host-ip: NAME or linux:NAME, a Linux bridge; ovs:NAME, an Open vSwitch bridge "
            + "(ovs-vsctl add-port at start, del-port at exit).")
    String bridge;

    @Option(names = "--port", description = "memory: an in-memory port whose peer is an IPv4 host inside this process (no root "
            + "needed). discard: TX frames are counted and dropped, RX buffers are filled on demand with a broadcast UDP frame "
            + "(10.0.2.2:9 -> 255.255.255.255:9); nothing is answered.")
    String port;

    @Option(names = "--frame-size", defaultValue = "" + DiscardPort.DEFAULT_FRAME_SIZE, description = "With --port discard: bytes of "
            + "each frame it makes, Ethernet header included, FCS not (" + DiscardPort.MIN_FRAME_SIZE + ".." + DiscardPort.MAX_FRAME_SIZE
            + "). Default: ${DEFAULT-VALUE}, testpmd txonly's default.")
    int frameSize;

    @Option(names = "--poll-us", paramLabel = "MICROS", defaultValue = "0", description = "Busy-poll: after the last frame each "
            + "queue pair's thread keeps polling its rings (and port) for this long before it sleeps, with the front-end's kicks "
            + "off meanwhile — a CPU spent for fewer kicks, wake-ups and syscalls per packet, like vhost-net's busyloop_timeout "
            + "and a DPDK PMD's loop. 0 to " + VmRules.MAX_POLL_MICROS + "; default ${DEFAULT-VALUE}: sleep at once, the front-end kicks.")
    int pollMicros;

    @Mixin
    LinkOptions link;

    @Option(names = "--stats-json", description = "Write the counters (per queue, per front-end, of the in-memory host) and acked "
            + "features to this file at start, after each front-end and on exit.")
    Path statsJson;

    @Option(names = "--first-message-timeout", defaultValue = "" + VhostUserNetDaemon.DEFAULT_FIRST_MESSAGE_TIMEOUT_MILLIS,
            description = "Milliseconds a new connection may take to send its first message before it is closed, so that a "
                    + "silent peer cannot keep the next front-end waiting (QEMU and DPDK send GET_FEATURES at once). "
                    + "Default: ${DEFAULT-VALUE}.")
    int firstMessageTimeoutMs;

    @Override
    public Integer call() throws Exception {
        PrintStream log = System.out;
        if ((tap == null) == (port == null)) {
            throw new IllegalArgumentException("give exactly one of --tap NAME (a tap, created if missing), --port memory or --port discard");
        }
        if (port != null && !port.equals("memory") && !port.equals("discard")) {
            throw new IllegalArgumentException("--port takes 'memory' or 'discard', not '" + port + "'; for a tap use --tap NAME");
        }
        boolean discard = "discard".equals(port);
        if (frameSize != DiscardPort.DEFAULT_FRAME_SIZE && !discard) {
            throw new IllegalArgumentException("--frame-size " + frameSize + " applies only to --port discard");
        }
        if (discard && (frameSize < DiscardPort.MIN_FRAME_SIZE || frameSize > DiscardPort.MAX_FRAME_SIZE)) {
            throw new IllegalArgumentException("--frame-size must be " + DiscardPort.MIN_FRAME_SIZE + ".." + DiscardPort.MAX_FRAME_SIZE
                    + " bytes (an Ethernet frame without its FCS), was " + frameSize);
        }
        if (bridge != null) {
            if (tap == null) {
                throw new IllegalArgumentException("--bridge " + bridge + " needs --tap NAME: only a tap can join a switch");
            }
            String problem = VmRules.bridge(bridge);
            if (problem != null) {
                throw new IllegalArgumentException("--bridge " + problem);
            }
        }
        int queues = link.queues();
        if (queues < 1 || queues > 16) {
            throw new IllegalArgumentException("--queues must be 1..16, was " + queues);
        }
        checkHostIp();
        if (firstMessageTimeoutMs < 1 || firstMessageTimeoutMs > 600_000) {
            throw new IllegalArgumentException("--first-message-timeout must be 1..600000 ms, was " + firstMessageTimeoutMs);
        }
        String pollProblem = VmRules.range(pollMicros, 0, VmRules.MAX_POLL_MICROS, "µs");
        if (pollProblem != null) {
            throw new IllegalArgumentException("--poll-us " + pollProblem + " (0: no busy-poll)");
        }
        if (statsJson != null) {
            checkStatsPath();
        }
        // the socket first: a path that is refused must not cost a tap (or bring an existing one up)
        UnixListener listener = null;
        if (!client) {
            try {
                listener = UnixListener.bind(socket);
            } catch (SocketPathException e) {
                throw new IllegalArgumentException("--socket " + e.getMessage(), e);
            }
        }
        List<AutoCloseable> resources = new ArrayList<>();
        VhostUserNetDaemon daemon;
        InVmmHost host = null;
        DiscardPort discardPort = null;
        try {
            PacketPort packets;
            boolean createdTap = false;
            if (tap != null) {
                createdTap = !Files.exists(Path.of("/sys/class/net", tap));
                TapDevice device = TapDevice.open(tap, queues, TapDevice.VNET_HEADER_V1_SIZE);
                resources.add(device);
                if (bridge == null && createdTap) {
                    device.addAddress(link.hostCidr());
                    log.printf("vhost-user-backend: tap %s created, host side %s%n", device.name(), link.hostCidr());
                }
                device.setUp();
                if (bridge != null) {
                    // once up (a down tap answers OVS's userspace datapath with ENETDOWN); after the tap in the resources,
                    // so closed first: an OVS port's row goes before its tap
                    resources.add(SwitchPort.attach("--bridge", bridge, device.name(), log, "vhost-user-backend"));
                }
                packets = device;
            } else if (discard) {
                discardPort = new DiscardPort("discard", queues, TapDevice.VNET_HEADER_V1_SIZE, frameSize);
                resources.add(discardPort);
                log.printf("vhost-user-backend: discard port: TX counted and dropped, RX filled with %d-byte UDP frames%n", frameSize);
                packets = discardPort;
            } else {
                MemoryPort[] pair = MemoryPort.pair(queues, TapDevice.VNET_HEADER_V1_SIZE);
                resources.add(pair[0]);
                resources.add(pair[1]);
                host = new InVmmHost(pair[1], link.hostAddress(), line -> log.println("vhost-user-backend: " + line));
                resources.add(host);
                log.printf("vhost-user-backend: in-memory port, host at %s inside this process%n", link.hostAddress());
                packets = pair[0];
            }
            VhostUserNetDaemon.Options daemonOptions = new VhostUserNetDaemon.Options(queues, createdTap,
                    VhostUserNetDaemon.DEFAULT_MESSAGE_TIMEOUT_MILLIS, firstMessageTimeoutMs, !noInflight);
            daemon = client ? VhostUserNetDaemon.client(socket, packets, daemonOptions, log)
                    : new VhostUserNetDaemon(listener, packets, daemonOptions, log);
            if (pollMicros > 0) {
                daemon.setBusyPoll(java.util.concurrent.TimeUnit.MICROSECONDS.toNanos(pollMicros));
                log.printf("vhost-user-backend: busy-poll: each queue pair polls for %d µs after its last frame before it sleeps%n",
                        pollMicros);
            }
            if (statsJson != null) {
                try {
                    writeStatsFile(daemon, host, discardPort);
                } catch (IOException e) {
                    daemon.close();
                    throw new IllegalArgumentException("--stats-json " + statsJson + ": cannot write it: " + e.getMessage(), e);
                }
            }
        } catch (RuntimeException e) {
            if (listener != null) {
                listener.close();
            }
            closeAll(resources, log);
            throw e;
        }
        InVmmHost inMemoryHost = host;
        DiscardPort sink = discardPort;
        if (statsJson != null) {
            daemon.onSessionEnd(s -> writeStats(daemon, inMemoryHost, sink, log));
        }
        Thread stop = Thread.ofPlatform().unstarted(() -> {
            daemon.close(3_000);
            writeStats(daemon, inMemoryHost, sink, log);
            if (sink != null) {
                DiscardPort.Stats d = sink.stats();
                log.printf("vhost-user-backend: discard port: %d frame(s) (%d bytes) dropped, %d frame(s) (%d bytes) made%n",
                        d.txFrames(), d.txBytes(), d.rxFrames(), d.rxBytes());
            }
            log.printf("vhost-user-backend: stopped after %d front-end(s)%n", daemon.frontends());
            closeAll(resources, log);
        });
        Runtime.getRuntime().addShutdownHook(stop);
        daemon.serve(); // returns once the shutdown hook has closed the daemon
        return 0;
    }

    private void checkHostIp() {
        String problem = VmRules.hostIp(link.hostIp());
        if (problem != null) {
            throw new IllegalArgumentException("--host-ip " + problem);
        }
    }

    /** The file is written after each front-end and on exit: a path that cannot take it is refused now, not at the end. */
    private void checkStatsPath() {
        if (Files.isDirectory(statsJson)) {
            throw new IllegalArgumentException("--stats-json " + statsJson + " is a directory; give a file path such as "
                    + statsJson.resolve("vu-stats.json"));
        }
        Path dir = statsJson.toAbsolutePath().getParent();
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("--stats-json " + statsJson + ": directory " + dir + " does not exist; create it or "
                    + "choose another path");
        }
        if (!Files.isWritable(dir)) {
            throw new IllegalArgumentException("--stats-json " + statsJson + ": directory " + dir + " is not writable; choose "
                    + "another path");
        }
    }

    private static void closeAll(List<AutoCloseable> resources, PrintStream log) {
        for (int i = resources.size() - 1; i >= 0; i--) {
            try {
                resources.get(i).close();
            } catch (Exception e) {
                log.println("vhost-user-backend: closing " + resources.get(i) + " failed: " + e.getMessage());
            }
        }
    }

    private synchronized void writeStats(VhostUserNetDaemon daemon, InVmmHost host, DiscardPort discard, PrintStream log) {
        if (statsJson == null) {
            return;
        }
        try {
            writeStatsFile(daemon, host, discard);
        } catch (IOException e) {
            log.println("vhost-user-backend: writing " + statsJson + " failed: " + e.getMessage());
        }
    }

    /** The daemon's counters, the in-memory host's under "inMemoryHost", the discard port's under "discardPort", replaced atomically. */
    private synchronized void writeStatsFile(VhostUserNetDaemon daemon, InVmmHost host, DiscardPort discard) throws IOException {
        ObjectMapper mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = mapper.valueToTree(daemon.stats());
        if (host != null) {
            root.set("inMemoryHost", mapper.valueToTree(host.stats()));
        }
        if (discard != null) {
            root.set("discardPort", mapper.valueToTree(discard.stats()));
        }
        Path tmp = statsJson.resolveSibling(statsJson.getFileName() + ".tmp");
        mapper.writeValue(tmp.toFile(), root);
        Files.move(tmp, statsJson, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
