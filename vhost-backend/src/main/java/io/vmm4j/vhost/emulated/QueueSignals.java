package io.vmm4j.vhost.emulated;

import io.vmm4j.core.event.EventFd;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.virtio.QueueBinding;

/**
 * How a queue engine is woken by the driver and wakes it back: the kick and call doorbells of one
 * virtqueue. Inside the VMM they come from the transport's {@link QueueBinding}; in a vhost-user
 * backend process they are the eventfds the frontend passed over the socket.
 */
public interface QueueSignals {
    /** A subscription to kicks; closing it stops the handler being called. */
    interface Subscription extends AutoCloseable {
        @Override
        void close();
    }

    /** Runs {@code handler} for every kick (on {@code loop}, or wherever the transport delivers them). */
    Subscription onKick(EventLoop loop, Runnable handler);

    /** Tells the driver that used buffers are there. */
    void signalUsed();

    /** The transport's doorbells: ioeventfd or synchronous notify, irqfd or direct MSI-X. */
    static QueueSignals of(QueueBinding binding) {
        return new QueueSignals() {
            @Override
            public Subscription onKick(EventLoop loop, Runnable handler) {
                QueueBinding.Subscription s = binding.listen(loop, handler);
                return s::close;
            }

            @Override
            public void signalUsed() {
                binding.signalUsed();
            }
        };
    }

    /** Plain eventfds: a kick fd watched on the loop, a call fd signalled (vhost-user's SET_VRING_KICK/CALL). */
    static QueueSignals of(EventFd kick, EventFd call) {
        return new QueueSignals() {
            @Override
            public Subscription onKick(EventLoop loop, Runnable handler) {
                EventLoop.Registration r = loop.register(kick.fd(), LibC.EPOLLIN, ready -> {
                    kick.drain();
                    handler.run();
                });
                return r::close;
            }

            @Override
            public void signalUsed() {
                if (call != null) {
                    call.signal();
                }
            }
        };
    }
}
