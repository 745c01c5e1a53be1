package io.vmm4j.vhost.emulated;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.tap.PacketPort;
import io.vmm4j.vhost.TapOffloads;
import io.vmm4j.vhost.engine.FrameObserver;
import io.vmm4j.vhost.engine.QueuePairWorker;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetActivation;
import io.vmm4j.virtio.net.NetBackend;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.QueuePositions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;

/**
 * The in-process data plane — the "before" of vhost: the VMM's own I/O threads (one per queue
 * pair) run the queue engine ({@link QueuePairWorker}), which walks the rings and moves frames to
 * and from a {@link PacketPort}.
 */
public final class EmulatedNetBackend implements NetBackend {
    private static final Logger LOG = LoggerFactory.getLogger(EmulatedNetBackend.class);

    /** Offload features that need a port which understands virtio-net headers with checksum/GSO fields. */
    private static final long OFFLOADS = VirtioFeatures.bit(NetFeatures.CSUM) | VirtioFeatures.bit(NetFeatures.HOST_TSO4)
            | VirtioFeatures.bit(NetFeatures.HOST_TSO6) | VirtioFeatures.bit(NetFeatures.HOST_ECN)
            | VirtioFeatures.bit(NetFeatures.HOST_UFO) | NetFeatures.GUEST_OFFLOAD_MASK;

    private final PacketPort port;
    private final List<EventLoop> loops = new ArrayList<>();
    private final List<QueuePairWorker> workers = new ArrayList<>();
    private NetActivation activation;
    private boolean linkUp = true;
    private FrameObserver frameObserver;
    private long busyPollNanos;

    public EmulatedNetBackend(PacketPort port) {
        this.port = port;
    }

    public PacketPort port() {
        return port;
    }

    @Override
    public String name() {
        return "emulated";
    }

    @Override
    public long supportedFeatures() {
        long all = -1L & ~TapOffloads.UFO;
        return port.supportsOffloads() ? all : all & ~OFFLOADS;
    }

    @Override
    public int maxQueuePairs() {
        return port.queueCount();
    }

    /**
     * Lets each I/O thread poll its rings for {@code nanos} after the last frame before it sleeps
     * ({@code --poll-us}; 0, the default: it sleeps at once and the guest kicks).
     */
    public synchronized void setBusyPoll(long nanos) {
        busyPollNanos = nanos;
        loops.forEach(l -> l.setBusyPoll(nanos));
    }

    /** The I/O threads, one per queue pair, named {@code net-io-N}. */
    public List<Thread> threads() {
        return loops.stream().map(EventLoop::thread).toList();
    }

    @Override
    public synchronized void start(NetActivation a) {
        if (activation != null) {
            throw new IllegalStateException("the emulated backend is already running");
        }
        activation = a;
        port.setOffloads(TapOffloads.fromGuestFeatures(a.ackedFeatures()));
        for (int p = 0; p < a.pairs().size(); p++) {
            if (loops.size() <= p) {
                EventLoop loop = new EventLoop("net-io-" + p);
                loop.setBusyPoll(busyPollNanos);
                loops.add(loop);
            }
            QueuePairWorker w = new QueuePairWorker(p, loops.get(p), port, QueuePairWorker.Queues.from(a, p));
            w.setFrameObserver(frameObserver);
            workers.add(w);
        }
        for (int p = 0; p < workers.size(); p++) {
            workers.get(p).setEnabled(p < a.activePairs());
            workers.get(p).setLinkUp(linkUp);
            workers.get(p).start();
        }
        LOG.debug("emulated backend serving {} queue pair(s) on {}", workers.size(), port.name());
    }

    @Override
    public synchronized QueuePositions stop() {
        if (activation == null) {
            return null;
        }
        QueuePositions.Builder at = QueuePositions.builder(2 * activation.pairs().size());
        for (int p = 0; p < workers.size(); p++) {
            QueuePairWorker w = workers.get(p);
            w.stop();
            at.set(2 * p, w.rxNextAvail(), w.rxNextUsed()).set(2 * p + 1, w.txNextAvail(), w.txNextUsed());
            w.release();
        }
        workers.clear();
        activation = null;
        return at.build();
    }

    /**
     * Shows every frame the workers move, now and after later starts, to {@code observer} (null
     * stops it). For packet capture; costs a copy per frame while set.
     */
    public synchronized void setFrameObserver(FrameObserver observer) {
        frameObserver = observer;
        workers.forEach(w -> w.setFrameObserver(observer));
    }

    @Override
    public synchronized void setActivePairs(int pairs) {
        for (int p = 0; p < workers.size(); p++) {
            workers.get(p).setEnabled(p < pairs);
        }
    }

    @Override
    public synchronized void setLinkUp(boolean up) {
        linkUp = up;
        workers.forEach(w -> w.setLinkUp(up));
    }

    @Override
    public void setGuestOffloads(long guestOffloads) {
        port.setOffloads(TapOffloads.fromGuestFeatures(guestOffloads));
    }

    @Override
    public synchronized void close() {
        stop();
        loops.forEach(EventLoop::close);
        loops.clear();
    }
}
