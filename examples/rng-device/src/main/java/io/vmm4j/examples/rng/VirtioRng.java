package io.vmm4j.examples.rng;

import io.vmm4j.core.event.EventLoop;
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

import java.util.random.RandomGenerator;

/**
 * virtio-rng (virtio 1.2 §5.4): one request queue of device-writable buffers that the device fills
 * with entropy. It has no configuration space and no device feature bits — the smallest device
 * that exercises the whole transport: discovery, negotiation, a queue, kicks and MSI-X.
 */
public final class VirtioRng implements VirtioDevice {
    public static final int DEVICE_TYPE = 4;
    public static final int QUEUE_SIZE = 256;
    /** Entropy handed out per request at most (QEMU's default rate limit is per period; we cap per buffer). */
    public static final int MAX_BYTES_PER_REQUEST = 64 * 1024;

    private final EventLoop loop;
    private final RandomGenerator source;
    private final RingLayout offeredRings;
    private final byte[] scratch = new byte[4096];
    private VirtioDeviceHost host;
    private volatile Active active;
    private volatile long bytesServed;
    private volatile long requestsServed;

    private record Active(ActivationContext context, QueueBinding binding, Virtqueue queue, DescriptorChain chain) {
    }

    /** @param loop the I/O thread that serves kicks (ignored in synchronous notify mode) */
    public VirtioRng(EventLoop loop, RandomGenerator source) {
        this(loop, source, RingLayout.SPLIT);
    }

    /** @param offeredRings PACKED: also offer VIRTIO_F_RING_PACKED, the driver picks the layout */
    public VirtioRng(EventLoop loop, RandomGenerator source, RingLayout offeredRings) {
        this.loop = loop;
        this.source = source;
        this.offeredRings = offeredRings;
    }

    @Override
    public int deviceType() {
        return DEVICE_TYPE;
    }

    @Override
    public String name() {
        return "virtio-rng";
    }

    @Override
    public long offeredFeatures() {
        long packed = offeredRings == RingLayout.PACKED ? VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : 0;
        return VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX)
                | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC) | packed;
    }

    @Override
    public int queueCount() {
        return 1;
    }

    @Override
    public int maxQueueSize(int index) {
        return QUEUE_SIZE;
    }

    @Override
    public int pciClassCode() {
        return 0xFF0000; // "unassigned class", as QEMU's virtio-rng-pci uses
    }

    @Override
    public int configSize() {
        return 0;
    }

    @Override
    public long readConfig(int offset, int size) {
        return 0;
    }

    @Override
    public void writeConfig(int offset, int size, long value) {
    }

    @Override
    public void bind(VirtioDeviceHost host) {
        this.host = host;
    }

    @Override
    public void activate(ActivationContext context) {
        QueueBinding binding = context.queue(0);
        if (binding == null) {
            return; // the driver did not enable the request queue: nothing to serve
        }
        Active a = new Active(context, binding, binding.openQueue(), new DescriptorChain(binding.size()));
        active = a;
        ChainHandler requests = new ChainHandler() {
            @Override
            public int handle(DescriptorChain chain) {
                return fill(a.context(), chain);
            }

            @Override
            public void published(boolean notifyDriver) {
                if (notifyDriver) {
                    a.binding().signalUsed();
                }
            }
        };
        binding.onKick(loop, () -> serve(a, requests));
    }

    /** Fills every available buffer; the queue's service loop re-enables notifications and re-checks before going idle (§2.7.10). */
    private void serve(Active a, ChainHandler requests) {
        if (active != a) {
            return;
        }
        try {
            a.queue().serve(a.chain(), requests);
        } catch (VirtqueueException e) {
            active = null; // a broken ring is not touched again until the driver resets
            host.deviceError("request queue: " + e.getMessage());
        }
    }

    private int fill(ActivationContext context, DescriptorChain chain) {
        long want = Math.min(chain.writableBytes(), MAX_BYTES_PER_REQUEST);
        int done = 0;
        while (done < want) {
            int n = (int) Math.min(scratch.length, want - done);
            source.nextBytes(scratch);
            chain.copyToWritable(context.memory(), done, scratch, 0, n);
            done += n;
        }
        requestsServed++;
        bytesServed += done;
        return done;
    }

    @Override
    public void reset() {
        active = null;
        // wait out a serve() already running on the loop, so nothing touches guest memory after we return
        loop.executeAndWait(() -> { });
    }

    public long bytesServed() {
        return bytesServed;
    }

    public long requestsServed() {
        return requestsServed;
    }
}
