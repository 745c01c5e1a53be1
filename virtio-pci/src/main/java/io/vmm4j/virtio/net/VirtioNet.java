package io.vmm4j.virtio.net;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.log.LogThrottle;
import io.vmm4j.virtio.ActivationContext;
import io.vmm4j.virtio.QueueBinding;
import io.vmm4j.virtio.VirtioDevice;
import io.vmm4j.virtio.VirtioDeviceHost;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.queue.ChainHandler;
import io.vmm4j.virtio.queue.DescriptorChain;
import io.vmm4j.virtio.queue.RingLayout;
import io.vmm4j.virtio.queue.Virtqueue;
import io.vmm4j.virtio.queue.VirtqueueException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The virtio-net device model (virtio 1.2 §5.1): configuration space, features, and the control
 * queue — the control plane, which stays in the VMM whatever the data plane is. The data queues
 * go to a {@link NetBackend} at DRIVER_OK.
 */
public final class VirtioNet implements VirtioDevice {
    private static final Logger LOG = LoggerFactory.getLogger(VirtioNet.class);
    private final LogThrottle malformedControlLog = new LogThrottle(10_000_000_000L, 5);

    public static final int DEVICE_TYPE = 1;
    public static final int CONTROL_QUEUE_SIZE = 64;
    /** §5.1.4: mac[6], status le16, max_virtqueue_pairs le16, mtu le16. */
    public static final int CONFIG_SIZE = 12;
    public static final int CONFIG_MAC = 0;
    public static final int CONFIG_STATUS = 6;
    public static final int CONFIG_MAX_PAIRS = 8;
    public static final int CONFIG_MTU = 10;
    public static final int STATUS_LINK_UP = 1;

    // §5.1.6.5: control classes, commands, acks
    public static final int CTRL_OK = 0;
    public static final int CTRL_ERR = 1;
    public static final int CLASS_RX = 0;
    public static final int RX_PROMISC = 0;
    public static final int RX_ALLMULTI = 1;
    public static final int CLASS_MAC = 1;
    public static final int MAC_TABLE_SET = 0;
    public static final int MAC_ADDR_SET = 1;
    public static final int CLASS_MQ = 4;
    public static final int MQ_VQ_PAIRS_SET = 0;
    public static final int CLASS_GUEST_OFFLOADS = 5;
    public static final int GUEST_OFFLOADS_SET = 0;
    /** The largest control command we read: class, command, two full MAC tables of 64 entries. */
    private static final int MAX_CONTROL_COMMAND = 2 + 2 * (4 + 64 * 6);

    /** Every feature the device model implements; the offer is this ∩ the backend's. */
    public static final long DEVICE_FEATURES = bits(NetFeatures.CSUM, NetFeatures.GUEST_CSUM, NetFeatures.CTRL_GUEST_OFFLOADS,
            NetFeatures.MTU, NetFeatures.MAC, NetFeatures.GUEST_TSO4, NetFeatures.GUEST_TSO6, NetFeatures.GUEST_ECN,
            NetFeatures.GUEST_UFO, NetFeatures.HOST_TSO4, NetFeatures.HOST_TSO6, NetFeatures.HOST_ECN, NetFeatures.MRG_RXBUF,
            NetFeatures.STATUS, NetFeatures.CTRL_VQ, NetFeatures.CTRL_RX, NetFeatures.MQ, VirtioFeatures.EVENT_IDX,
            VirtioFeatures.INDIRECT_DESC, VirtioFeatures.VERSION_1);

    /** What the driver set through the control queue; read by management (query-rx-filter). */
    public record RxFilter(boolean promiscuous, boolean allMulticast, List<String> unicast, List<String> multicast) {
    }

    /** Told about control-plane changes the driver makes. */
    public interface Listener {
        default void rxFilterChanged(RxFilter filter) {
        }

        default void activePairsChanged(int pairs) {
        }

        default void guestOffloadsChanged(long offloads) {
        }
    }

    private final NetConfig config;
    private final EventLoop controlLoop;
    private final List<NetQueueCounters> counters = new ArrayList<>();
    private final List<Listener> listeners = new CopyOnWriteArrayList<>();
    private final byte[] command = new byte[MAX_CONTROL_COMMAND];
    private volatile NetBackend backend;
    private volatile boolean linkUp = true;
    private volatile RxFilter rxFilter = new RxFilter(false, false, List.of(), List.of());
    private VirtioDeviceHost host;
    private volatile Active active;

    private record Active(ActivationContext context, NetActivation net, Virtqueue control, DescriptorChain chain,
                          QueueBinding controlBinding) {
    }

    private volatile int activePairs = 1;
    private final List<String> switchLog = new CopyOnWriteArrayList<>();

    /** Every backend switch so far: from, to, and the ring positions handed over. */
    public List<String> switchLog() {
        return List.copyOf(switchLog);
    }

    public VirtioNet(NetConfig config, NetBackend backend, EventLoop controlLoop) {
        if (config.maxQueuePairs() > backend.maxQueuePairs()) {
            throw new IllegalArgumentException(config.maxQueuePairs() + " queue pairs asked, but the " + backend.name()
                    + " backend serves at most " + backend.maxQueuePairs());
        }
        this.config = config;
        this.backend = backend;
        this.controlLoop = controlLoop;
        for (int q = 0; q < 2 * config.maxQueuePairs(); q++) {
            counters.add(new NetQueueCounters(q, q % 2 == 0 ? "rx" : "tx"));
        }
    }

    private static long bits(int... features) {
        long v = 0;
        for (int f : features) {
            v |= VirtioFeatures.bit(f);
        }
        return v;
    }

    public void addListener(Listener listener) {
        listeners.add(listener);
    }

    public NetConfig config() {
        return config;
    }

    public NetBackend backend() {
        return backend;
    }

    public List<NetQueueCounters> counters() {
        return List.copyOf(counters);
    }

    public RxFilter rxFilter() {
        return rxFilter;
    }

    public int activePairs() {
        return activePairs;
    }

    public boolean linkUp() {
        return linkUp;
    }

    // ---- VirtioDevice ----

    @Override
    public int deviceType() {
        return DEVICE_TYPE;
    }

    @Override
    public String name() {
        return "virtio-net";
    }

    @Override
    public long offeredFeatures() {
        long device = DEVICE_FEATURES;
        if (config.offeredRings() == RingLayout.PACKED) {
            device |= VirtioFeatures.bit(VirtioFeatures.RING_PACKED); // virtio 1.2 §2.8; the backend must serve it too
        }
        long offer = device & backend.supportedFeatures();
        if (config.maxQueuePairs() == 1) {
            offer &= ~VirtioFeatures.bit(NetFeatures.MQ);
        }
        // the transport features every backend must support come with the device model
        offer |= VirtioFeatures.bit(VirtioFeatures.VERSION_1);
        return NetFeatures.closeOverDependencies(offer);
    }

    @Override
    public String validateFeatures(long acked) {
        return NetFeatures.dependencyProblem(acked);
    }

    @Override
    public int queueCount() {
        return config.queueCount();
    }

    @Override
    public int maxQueueSize(int index) {
        return index == config.queueCount() - 1 ? CONTROL_QUEUE_SIZE : config.queueSize();
    }

    @Override
    public int pciClassCode() {
        return 0x020000; // network controller, Ethernet
    }

    @Override
    public int configSize() {
        return CONFIG_SIZE;
    }

    @Override
    public long readConfig(int offset, int size) {
        byte[] space = new byte[CONFIG_SIZE];
        System.arraycopy(config.mac(), 0, space, CONFIG_MAC, 6);
        int status = linkUp ? STATUS_LINK_UP : 0;
        space[CONFIG_STATUS] = (byte) status;
        space[CONFIG_MAX_PAIRS] = (byte) config.maxQueuePairs();
        space[CONFIG_MAX_PAIRS + 1] = (byte) (config.maxQueuePairs() >> 8);
        space[CONFIG_MTU] = (byte) config.mtu();
        space[CONFIG_MTU + 1] = (byte) (config.mtu() >> 8);
        long v = 0;
        for (int i = 0; i < size; i++) {
            v |= (space[offset + i] & 0xFFL) << (8 * i);
        }
        return v;
    }

    @Override
    public void writeConfig(int offset, int size, long value) {
        // §5.1.4.2: a modern driver does not write the configuration; the MAC changes via the control queue
        LOG.debug("virtio-net: ignored config write at {} size {}", offset, size);
    }

    @Override
    public void bind(VirtioDeviceHost host) {
        this.host = host;
    }

    @Override
    public void activate(ActivationContext context) {
        List<NetActivation.QueuePair> pairs = new ArrayList<>();
        for (int p = 0; p < config.maxQueuePairs(); p++) {
            QueueBinding rx = context.queue(2 * p);
            QueueBinding tx = context.queue(2 * p + 1);
            if (rx == null || tx == null) {
                if (p == 0) {
                    throw new IllegalStateException("the driver enabled neither receiveq1 nor transmitq1");
                }
                break;
            }
            pairs.add(new NetActivation.QueuePair(p, rx, tx));
        }
        activePairs = 1;
        NetActivation net = new NetActivation(context.memory(), context.ackedFeatures(), config.mtu(), List.copyOf(pairs), 1,
                QueuePositions.start(2 * config.maxQueuePairs(), RingLayout.of(context.ackedFeatures())), List.copyOf(counters), host);
        QueueBinding control = context.hasFeature(NetFeatures.CTRL_VQ) ? context.queue(config.queueCount() - 1) : null;
        Active a = new Active(context, net, control == null ? null : control.openQueue(),
                control == null ? null : new DescriptorChain(control.size()), control);
        active = a;
        LOG.info("virtio-net: DRIVER_OK, {} queue pair(s) ready, {} rings, features {}, data plane {}", pairs.size(),
                RingLayout.of(context.ackedFeatures()).label(), NetFeatures.names(context.ackedFeatures()), backend.name());
        backend.start(net);
        if (control != null) {
            ControlCommands commands = new ControlCommands(a);
            control.onKick(controlLoop, () -> serveControl(a, commands));
        }
    }

    @Override
    public void reset() {
        Active a = active;
        active = null;
        backend.stop(); // a reset discards the ring positions
        controlLoop.executeAndWait(() -> { }); // wait out a control command in progress
        activePairs = 1;
        rxFilter = new RxFilter(false, false, List.of(), List.of());
        if (a != null) {
            LOG.info("virtio-net: reset");
        }
    }

    /**
     * Moves the data plane to {@code next} without the guest noticing: the old backend stops and
     * reports where each ring stood, the new one resumes there. Returns the old backend.
     */
    public synchronized NetBackend switchBackend(NetBackend next) {
        NetBackend old = backend;
        Active a = active;
        if (a == null) {
            backend = next;
            return old;
        }
        QueuePositions where = old.stop();
        backend = next;
        NetActivation resumed = new NetActivation(a.net().memory(), a.net().ackedFeatures(), a.net().mtu(), a.net().pairs(), activePairs,
                where, a.net().counters(), host);
        LOG.info("virtio-net: data plane {} -> {} at {}", old.name(), next.name(), where);
        next.setLinkUp(linkUp);
        switchLog.add(old.name() + " -> " + next.name() + " at " + where);
        next.start(resumed);
        return old;
    }

    /** Sets the link state the guest sees (STATUS feature) and raises a config interrupt. */
    public void setLinkUp(boolean up) {
        if (linkUp != up) {
            linkUp = up;
            backend.setLinkUp(up);
            if (host != null) {
                host.configChanged();
            }
        }
    }

    // ---- control queue (§5.1.6.5), in the VMM whatever the data plane ----

    private void serveControl(Active a, ControlCommands commands) {
        if (active != a) {
            return;
        }
        try {
            a.control().serve(a.chain(), commands);
        } catch (VirtqueueException e) {
            active = null;
            host.deviceError("control queue: " + e.getMessage());
        }
    }

    /** The control queue's side of the service loop: each chain is one command, acked in its writable byte. */
    private final class ControlCommands implements ChainHandler {
        private final Active a;

        ControlCommands(Active a) {
            this.a = a;
        }

        @Override
        public int handle(DescriptorChain chain) {
            int ack = CTRL_ERR;
            if (chain.readableBytes() >= 2 && chain.writableBytes() >= 1 && chain.readableBytes() <= MAX_CONTROL_COMMAND) {
                int length = (int) chain.readableBytes();
                chain.copyFromReadable(a.context().memory(), 0, command, 0, length);
                ack = execute(a, command[0] & 0xFF, command[1] & 0xFF, length - 2);
            } else {
                long held = malformedControlLog.admit(); // the guest can send these as fast as it likes
                if (held >= 0) {
                    LOG.warn("virtio-net: malformed control command ({} readable, {} writable bytes){}",
                            chain.readableBytes(), chain.writableBytes(), LogThrottle.heldBackNote(held));
                }
            }
            // virtio 1.2 §2.7.8.2: len is what the device wrote; a chain with no writable byte gets 0, not 1
            return chain.copyToWritable(a.context().memory(), 0, ackByte(ack), 0, 1);
        }

        private final byte[][] acks = {{(byte) CTRL_OK}, {(byte) CTRL_ERR}};

        /** The ack as a one-byte buffer, without allocating per command. */
        private byte[] ackByte(int ack) {
            return acks[ack == CTRL_OK ? 0 : 1];
        }

        @Override
        public void published(boolean notifyDriver) {
            if (notifyDriver) {
                a.controlBinding().signalUsed();
            }
        }
    }

    /** Runs one control command whose data is {@code command[2..2+dataLength)}; returns the ack. */
    private int execute(Active a, int cls, int cmd, int dataLength) {
        long acked = a.net().ackedFeatures();
        switch (cls) {
            case CLASS_RX -> {
                if (!VirtioFeatures.has(acked, NetFeatures.CTRL_RX) || dataLength < 1 || (cmd != RX_PROMISC && cmd != RX_ALLMULTI)) {
                    return CTRL_ERR;
                }
                boolean on = command[2] != 0;
                RxFilter f = rxFilter;
                rxFilter = cmd == RX_PROMISC ? new RxFilter(on, f.allMulticast(), f.unicast(), f.multicast())
                        : new RxFilter(f.promiscuous(), on, f.unicast(), f.multicast());
                listeners.forEach(l -> l.rxFilterChanged(rxFilter));
                return CTRL_OK;
            }
            case CLASS_MAC -> {
                if (cmd != MAC_TABLE_SET || !VirtioFeatures.has(acked, NetFeatures.CTRL_RX)) {
                    return CTRL_ERR;
                }
                List<String> unicast = new ArrayList<>();
                List<String> multicast = new ArrayList<>();
                int pos = 2;
                int end = 2 + dataLength;
                for (List<String> table : List.of(unicast, multicast)) {
                    if (pos + 4 > end) {
                        return CTRL_ERR;
                    }
                    long entries = le32(pos);
                    pos += 4;
                    if (entries < 0 || entries > (end - pos) / 6) {
                        return CTRL_ERR;
                    }
                    for (int i = 0; i < entries; i++, pos += 6) {
                        table.add(NetConfig.format(java.util.Arrays.copyOfRange(command, pos, pos + 6)));
                    }
                }
                RxFilter f = rxFilter;
                rxFilter = new RxFilter(f.promiscuous(), f.allMulticast(), List.copyOf(unicast), List.copyOf(multicast));
                listeners.forEach(l -> l.rxFilterChanged(rxFilter));
                return CTRL_OK;
            }
            case CLASS_MQ -> {
                if (cmd != MQ_VQ_PAIRS_SET || !VirtioFeatures.has(acked, NetFeatures.MQ) || dataLength < 2) {
                    return CTRL_ERR;
                }
                int pairs = (command[2] & 0xFF) | ((command[3] & 0xFF) << 8);
                // §5.1.6.5.5: 1 <= pairs <= max_virtqueue_pairs, and the queues must exist
                if (pairs < 1 || pairs > a.net().pairs().size()) {
                    return CTRL_ERR;
                }
                activePairs = pairs;
                backend.setActivePairs(pairs);
                listeners.forEach(l -> l.activePairsChanged(pairs));
                return CTRL_OK;
            }
            case CLASS_GUEST_OFFLOADS -> {
                if (cmd != GUEST_OFFLOADS_SET || !VirtioFeatures.has(acked, NetFeatures.CTRL_GUEST_OFFLOADS) || dataLength < 8) {
                    return CTRL_ERR;
                }
                long offloads = le32(2) | (le32(6) << 32);
                // §5.1.6.5.6.2: only negotiated GUEST_* offloads may be enabled
                if ((offloads & ~(acked & NetFeatures.GUEST_OFFLOAD_MASK)) != 0
                        || NetFeatures.dependencyProblem(offloads | (acked & ~NetFeatures.GUEST_OFFLOAD_MASK)) != null) {
                    return CTRL_ERR;
                }
                backend.setGuestOffloads(offloads);
                listeners.forEach(l -> l.guestOffloadsChanged(offloads));
                return CTRL_OK;
            }
            default -> {
                return CTRL_ERR;
            }
        }
    }

    private long le32(int pos) {
        return (command[pos] & 0xFFL) | (command[pos + 1] & 0xFFL) << 8 | (command[pos + 2] & 0xFFL) << 16
                | (command[pos + 3] & 0xFFL) << 24;
    }
}
