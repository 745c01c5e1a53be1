package io.vmm4j.virtio.pci.kvm;

import io.vmm4j.core.event.EventFd;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.kvm.KvmVm;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.virtio.pci.MsixTable;
import io.vmm4j.virtio.pci.VirtioPciTransport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Arrays;

/**
 * Wires a {@link VirtioPciTransport}'s doorbells into KVM, so the data path never exits to the VMM:
 *
 * <ul>
 *   <li><b>Kicks</b>: each queue's notify address (BAR 0 + 0x3000 + 4 * queue) is a KVM ioeventfd
 *       on that queue's kick eventfd, re-registered whenever the driver moves BAR 0. In
 *       {@link VirtioPciTransport.NotifyMode#SYNCHRONOUS} nothing is registered: every notify
 *       exits to the vCPU thread, which runs the device's handler (QEMU's ioeventfd=off).</li>
 *   <li><b>Calls</b>: each MSI-X vector in use gets a GSI whose MSI route is the (address, data)
 *       the driver programmed, and each queue's call eventfd is a KVM irqfd on its vector's GSI:
 *       a backend's signal becomes a guest interrupt inside the kernel.</li>
 *   <li><b>Masking</b> (PCI 3.0 §6.8.3.5): while a queue's vector is masked (or the function is
 *       masked, or MSI-X is off) its irqfd is detached and {@code watchLoop} watches the call
 *       eventfd instead; a signal then goes through the transport, which sets the vector's
 *       pending bit (or raises INTx). Unmasking delivers the pending message once through the
 *       transport's {@code MsiSink} (KVM_SIGNAL_MSI) and re-attaches the irqfd.</li>
 * </ul>
 *
 * The transport must be built without an interrupt loop (nothing else may drain its call fds)
 * and with an {@code MsiSink} that injects through the same VM (config interrupts, pending
 * deliveries and the synchronous path use it).
 */
public final class KvmDoorbells implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(KvmDoorbells.class);

    private final KvmVm vm;
    private final VirtioPciTransport transport;
    private final MsixTable msix;
    private final EventLoop watchLoop;
    private final int notifyLength;
    private final int[] vectorGsi;
    private final KvmVm.IrqFd[] irqfds;
    private final EventLoop.Registration[] watchers;
    private final KvmVm.IoEventFd[] ioeventfds;
    private boolean closed;

    /**
     * @param watchLoop where detached (masked) call eventfds are watched; any VMM loop will do,
     *                  signals there are rare
     */
    public KvmDoorbells(KvmVm vm, VirtioPciTransport transport, EventLoop watchLoop) {
        this.vm = vm;
        this.transport = transport;
        this.msix = transport.msix();
        this.watchLoop = watchLoop;
        // virtio drivers notify with a 16-bit write of the queue index (§4.1.4.4); any length where KVM allows
        this.notifyLength = vm.ioeventfdAnyLength() ? 0 : 2;
        int queues = transport.queueCount();
        this.vectorGsi = new int[msix.vectors()];
        Arrays.fill(vectorGsi, -1);
        this.irqfds = new KvmVm.IrqFd[queues];
        this.watchers = new EventLoop.Registration[queues];
        this.ioeventfds = new KvmVm.IoEventFd[queues];
        // Lock order: transport, config space or MSI-X table first, then this (their listeners call in).
        transport.configSpace().addBarListener((index, address, size) -> {
            if (index == VirtioPciTransport.VIRTIO_BAR) {
                moveNotifyAddresses(address);
            }
        });
        msix.addListener(vector -> sync());
        transport.addQueueVectorListener((queue, vector) -> sync());
        long bar = transport.configSpace().barAddress(VirtioPciTransport.VIRTIO_BAR);
        moveNotifyAddresses(bar);
        sync();
    }

    /** Whether a guest kick of {@code queue} is an ioeventfd right now (no exit). */
    public synchronized boolean kickRegistered(int queue) {
        return ioeventfds[queue] != null;
    }

    /** Whether {@code queue}'s call eventfd is attached to KVM as an irqfd right now (unmasked vector). */
    public synchronized boolean irqfdAttached(int queue) {
        return irqfds[queue] != null;
    }

    /** The GSI of MSI-X vector {@code vector}, or -1 before it was first routed. */
    public synchronized int gsi(int vector) {
        return vectorGsi[vector];
    }

    private synchronized void moveNotifyAddresses(long barAddress) {
        if (closed || transport.notifyMode() != VirtioPciTransport.NotifyMode.IOEVENTFD) {
            return;
        }
        for (int q = 0; q < ioeventfds.length; q++) {
            if (ioeventfds[q] != null) {
                ioeventfds[q].close();
                ioeventfds[q] = null;
            }
        }
        if (barAddress < 0) {
            return; // BAR 0 not decoded: notifies go nowhere
        }
        for (int q = 0; q < ioeventfds.length; q++) {
            long notify = barAddress + VirtioPciTransport.NOTIFY_OFFSET + (long) q * VirtioPciTransport.NOTIFY_MULTIPLIER;
            ioeventfds[q] = vm.addIoEventFd(notify, notifyLength, false, transport.kickFd(q));
        }
        LOG.debug("{}: {} notify ioeventfds at 0x{}", transport.device().name(), ioeventfds.length,
                Long.toHexString(barAddress + VirtioPciTransport.NOTIFY_OFFSET));
    }

    /** Brings routes, irqfds and watchers in line with the MSI-X table and the queues' vectors. */
    private synchronized void sync() {
        if (closed) {
            return;
        }
        boolean on = msix.enabled() && !msix.functionMasked();
        for (int q = 0; q < irqfds.length; q++) {
            int vector = transport.queueVector(q);
            boolean live = on && vector < msix.vectors() && !msix.isMasked(vector);
            if (live) {
                int gsi = routeVector(vector);
                if (irqfds[q] != null && irqfds[q].gsi() != gsi) {
                    detach(q);
                }
                if (irqfds[q] == null) {
                    irqfds[q] = vm.irqfd(transport.callFd(q), gsi); // KVM injects at once if already signalled
                }
                unwatch(q); // after attaching: a signal in between is delivered either way, once
            } else {
                detach(q);
                watch(q);   // after detaching: level-triggered, so a signal in between is seen
            }
        }
    }

    /** The vector's GSI, routed to the message the driver programmed now. */
    private int routeVector(int vector) {
        if (vectorGsi[vector] < 0) {
            vectorGsi[vector] = vm.allocateGsi();
        }
        vm.setMsiRoute(vectorGsi[vector], msix.messageAddress(vector), msix.messageData(vector));
        return vectorGsi[vector];
    }

    private void detach(int q) {
        if (irqfds[q] != null) {
            irqfds[q].close();
            irqfds[q] = null;
        }
    }

    private void watch(int q) {
        if (watchers[q] != null) {
            return;
        }
        EventFd call = transport.callFd(q);
        int queue = q;
        watchers[q] = watchLoop.register(call.fd(), LibC.EPOLLIN, ready -> {
            if (call.drain() > 0) {
                transport.signalQueue(queue); // masked: sets the pending bit; MSI-X off: INTx; no vector: nothing
            }
        });
    }

    private void unwatch(int q) {
        if (watchers[q] != null) {
            watchers[q].close();
            watchers[q] = null;
        }
    }

    /** Detaches every irqfd, removes the ioeventfds and stops watching. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        for (int q = 0; q < irqfds.length; q++) {
            detach(q);
            unwatch(q);
            if (ioeventfds[q] != null) {
                ioeventfds[q].close();
                ioeventfds[q] = null;
            }
        }
        closed = true;
    }
}
