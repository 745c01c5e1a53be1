package io.vmm4j.cli.vm;

import io.vmm4j.cli.doctor.HostProbe;
import io.vmm4j.tap.DiscardPort;
import io.vmm4j.tap.LinkCounters;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.tap.PacketPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.tap.TapException;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The NIC's host side as {@code --port}, {@code --tap} and {@code --bridge} ask: a tap (with
 * {@code auto}, when the VMM has CAP_NET_ADMIN), an in-memory port whose peer is {@link InVmmHost},
 * or none at all with vhost-user, whose back-end daemon owns the port.
 */
final class NetPort implements AutoCloseable {
    private static final int CAP_NET_ADMIN = 12;

    private final PacketPort port;
    private final String kind;
    private final String name;
    private final OwnedResources owned;

    private NetPort(PacketPort port, String kind, String name, OwnedResources owned) {
        this.port = port;
        this.kind = kind;
        this.name = name;
        this.owned = owned;
    }

    /** Opens the port {@code options} ask for; a port the data plane cannot use is refused by the data plane. */
    static NetPort open(VmOptions options, PrintStream log) {
        if (!options.dataPlane().vmmOwnsPort()) {
            if (options.port() != VmOptions.Port.AUTO || options.tap() != null || options.bridge() != null) {
                throw new ToyVm.VmException("with --backend vhost-user the back-end daemon owns the port: give --tap or --port memory to "
                        + "./vmm vhost-user-backend, not to ./vmm run");
            }
            return new NetPort(null, "vhost-user back-end", options.socket(), new OwnedResources(log));
        }
        OwnedResources owned = new OwnedResources(log);
        try {
            return switch (choose(options, log)) {
                case MEMORY -> openMemory(options, owned);
                case DISCARD -> openDiscard(options, log, owned);
                case TAP, AUTO -> openTap(options, log, owned);
            };
        } catch (RuntimeException e) {
            owned.close();
            throw e;
        }
    }

    /** auto: a tap with CAP_NET_ADMIN, else the in-memory port (said in one line). */
    private static VmOptions.Port choose(VmOptions options, PrintStream log) {
        if (options.port() != VmOptions.Port.AUTO) {
            return options.port();
        }
        if (HostProbe.hasEffectiveCapability(CAP_NET_ADMIN)) {
            return VmOptions.Port.TAP;
        }
        log.println("vmm4j: no CAP_NET_ADMIN, so no tap: using the in-memory port, with the host as a stack inside the VMM at "
                + options.hostAddress() + " (run as root for a real tap)");
        return VmOptions.Port.MEMORY;
    }

    private static NetPort openMemory(VmOptions options, OwnedResources owned) {
        MemoryPort[] pair = MemoryPort.pair(options.pairs(), TapDevice.VNET_HEADER_V1_SIZE);
        owned.add(pair[0]);
        owned.add(pair[1]);
        owned.add(new InVmmHost(pair[1], options.hostAddress()));
        return new NetPort(pair[0], "in-memory port", pair[0].name(), owned);
    }

    /** A sink and source with no kernel path (the engine measured alone); it answers nothing, so nobody answers the guest's pings. */
    private static NetPort openDiscard(VmOptions options, PrintStream log, OwnedResources owned) {
        DiscardPort discard = new DiscardPort("discard", options.pairs(), TapDevice.VNET_HEADER_V1_SIZE, DiscardPort.DEFAULT_FRAME_SIZE);
        owned.add(discard);
        log.printf("vmm4j: discard port: the guest's frames are counted and dropped, its receive buffers filled with %d-byte UDP"
                + " frames; nothing answers%n", discard.frameSize());
        return new NetPort(discard, "discard port", discard.name(), owned);
    }

    /** An existing tap is used as is; a new one gets the host address, unless it joins a bridge (Linux or Open vSwitch). */
    private static NetPort openTap(VmOptions options, PrintStream log, OwnedResources owned) {
        String name = options.tap() == null ? "" : options.tap();
        boolean existed = !name.isEmpty() && Files.exists(Path.of("/sys/class/net", name));
        TapDevice tap = TapDevice.open(name, options.pairs(), TapDevice.VNET_HEADER_V1_SIZE);
        owned.add(tap);
        if (options.bridge() == null && !existed) {
            tap.addAddress(options.hostIp());
            log.printf("vmm4j: tap %s created, host side %s%n", tap.name(), options.hostIp());
        }
        if (options.mtu() != 1500) { // a tap starts with Ethernet's 1500
            tap.setMtu(options.mtu());
        }
        tap.setUp();
        if (options.bridge() != null) {
            // once up (OVS's userspace datapath reads a port at once, and a down tap answers ENETDOWN); after the tap in the
            // resources, so closed first: an OVS port's row goes before its tap
            owned.add(SwitchPort.attach("--bridge", options.bridge(), tap.name(), log, "vmm4j"));
        }
        return new NetPort(tap, "tap", tap.name(), owned);
    }

    /** The port frames go through, or null when a vhost-user back-end owns it. */
    PacketPort port() {
        return port;
    }

    /** The discard port's counters, or null for another port. */
    DiscardPort.Stats discardStats() {
        return port instanceof DiscardPort d ? d.stats() : null;
    }

    /** A tap's counters as the kernel keeps them now, or null for another port (or a tap that is gone). */
    LinkCounters linkCounters() {
        if (!(port instanceof TapDevice tap)) {
            return null;
        }
        try {
            return LinkCounters.read(tap.name());
        } catch (TapException e) {
            return null; // a summary is still a summary without them
        }
    }

    /** What kind of port it is: "tap", "in-memory port", "discard port" or "vhost-user back-end". */
    String kind() {
        return kind;
    }

    /** The port's name, or the back-end's socket. */
    String name() {
        return name;
    }

    @Override
    public void close() {
        owned.close();
    }
}
