package io.vmm4j.vhost;

import io.vmm4j.core.event.EventFd;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.QueueBinding;

/**
 * The vhost protocol as a frontend speaks it, whether to the kernel (ioctls on /dev/vhost-net) or
 * to a vhost-user backend process (messages on a UNIX socket). Vring indices are the device's
 * queue indices as this backend instance numbers them (kernel vhost-net: 0 = rx, 1 = tx of one pair).
 */
public interface VhostBackend extends AutoCloseable {
    /** VHOST_SET_OWNER: this process owns the backend's worker. */
    void setOwner();

    /** VHOST_RESET_OWNER. */
    void resetOwner();

    /** VHOST_GET_FEATURES: the virtio feature bits the backend implements. */
    long getFeatures();

    /** VHOST_SET_FEATURES: the acked bits the backend should honour (only those it implements). */
    void setFeatures(long features);

    /** VHOST_SET_MEM_TABLE: every region of guest memory, with its host address (and fd, for vhost-user). */
    void setMemTable(GuestMemory memory);

    /** VHOST_SET_VRING_NUM. */
    void setVringNum(int index, int size);

    /**
     * VHOST_SET_VRING_ADDR with host virtual addresses of the three areas (descriptors inside are
     * guest-physical and go through the memory table).
     */
    void setVringAddr(int index, VringAddress address);

    /** VHOST_SET_VRING_BASE: where the backend starts consuming the avail ring. */
    void setVringBase(int index, int base);

    /** VHOST_GET_VRING_BASE: stops the ring and returns its next avail index. */
    int getVringBase(int index);

    /** VHOST_SET_VRING_KICK: the eventfd the driver's notify signals. */
    void setVringKick(int index, EventFd kick);

    /** VHOST_SET_VRING_CALL: the eventfd the backend signals for used buffers. */
    void setVringCall(int index, EventFd call);

    /** VHOST_SET_VRING_ERR: the eventfd the backend signals on a ring error (null: none). */
    void setVringErr(int index, EventFd err);

    /**
     * Hands the transport's queue to the backend as vring {@code index}, starting at avail index
     * {@code base}: NUM, BASE, ADDR (host addresses), ERR (when {@code err} is not null), CALL and
     * KICK last, because a vhost-user back-end starts a ring at its kick fd ("Ring states") and so
     * must know everything else first; the kernel takes any order (its worker waits for the tap).
     */
    default void setUpVring(int index, QueueBinding queue, GuestMemory memory, int base, EventFd err) {
        setVringNum(index, queue.size());
        setVringBase(index, base);
        setVringAddr(index, VringAddress.of(memory, queue));
        if (err != null) {
            setVringErr(index, err);
        }
        setVringCall(index, queue.call());
        setVringKick(index, queue.kick());
    }

    @Override
    void close();
}
