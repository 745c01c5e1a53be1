package io.vmm4j.virtio.queue;

/**
 * One virtqueue in the device role, whatever its ring layout: {@link SplitQueue} (virtio 1.2 §2.7)
 * or {@link PackedQueue} (§2.8). These are the operations data planes, the control queue and
 * devices use, so they need not know which layout the driver negotiated (VIRTIO_F_RING_PACKED).
 *
 * <p>The rules are the same for both: every value read from the guest is validated before use and
 * read once; a rule broken by the guest throws {@link VirtqueueException}, after which the queue is
 * {@linkplain #isBroken() broken} and every further ring operation throws
 * {@link IllegalStateException} (the transport sets DEVICE_NEEDS_RESET, §2.1.2). Nothing outside
 * guest memory is read or written. Not thread-safe: one consumer thread owns the queue; the data
 * path allocates nothing.
 */
public interface Virtqueue {
    /**
     * The most chains {@link #serve} pushes before it publishes them (and decides on a used buffer
     * notification): vhost-net's VHOST_NET_BATCH. A pass over a full ring hands buffers back in
     * steps, instead of holding all of them until its end.
     */
    int PUBLISH_BATCH = 64;

    /** The queue size the driver chose (Queue Size, §2.6). */
    int size();

    /** The most segments a chain may have on this queue: size a {@link DescriptorChain} to this to accept every chain. */
    int maxChainSegments();

    /**
     * Takes the next available chain into {@code into}. Returns false when there is none.
     *
     * @throws VirtqueueException if the guest broke a ring rule; the queue is broken from then on,
     *                            {@code into} is left empty and nothing was written
     */
    boolean pop(DescriptorChain into);

    /**
     * Returns the chain {@link DescriptorChain#head()} names as used, with the bytes the device wrote
     * into its writable segments; the driver sees it only after {@link #publish()}.
     *
     * @throws IllegalArgumentException if head is not a value the queue can have handed out, or the length is negative
     * @throws IllegalStateException    if no popped chain with that head is waiting to be returned
     */
    void push(int head, int writtenLength);

    /** Makes every pushed chain visible to the driver, with release semantics. */
    void publish();

    /** Whether the driver wants a used buffer notification for what was published since the last decision. */
    boolean needsNotification();

    /** Asks the driver not to send available buffer notifications (kicks). */
    void disableNotifications();

    /**
     * Asks the driver to kick again, then fences and looks once more: true if chains are available
     * that this queue has not looked at, and the caller must process again instead of sleeping.
     */
    boolean enableNotifications();

    /**
     * The service loop of a device that sleeps between kicks and returns each chain on its own:
     * notifications off; each available chain to {@code handler}, pushed used with the length it
     * returns; one publish per batch (of at most {@link #PUBLISH_BATCH}), after which the handler hears whether the driver wants a used
     * buffer notification; notifications on with a last look, and round again if the driver added
     * chains meanwhile. A pass the handler ends ({@link ChainHandler#DEFER}, or
     * {@link ChainHandler#serving()} false) leaves notifications off. Allocates nothing.
     *
     * @throws VirtqueueException if the guest broke a ring rule or the handler refused a chain; what
     *                            the handler returned before in this batch is pushed but not published
     */
    default void serve(DescriptorChain chain, ChainHandler handler) {
        do {
            disableNotifications();
            if (servePass(chain, handler) == ChainHandler.DEFER) {
                return;
            }
        } while (handler.serving() && enableNotifications());
    }

    /**
     * One pass of {@link #serve} with notifications left as they are, for a device that polls the
     * ring: each available chain to {@code handler}, one publish per {@link #PUBLISH_BATCH} chains and one for the rest. Returns the chains
     * handled, or {@link ChainHandler#DEFER} if the handler gave one back (those before it are
     * published). Allocates nothing.
     *
     * @throws VirtqueueException as {@link #serve} does
     */
    default int servePass(DescriptorChain chain, ChainHandler handler) {
        int handled = 0;
        int unpublished = 0;
        boolean deferred = false;
        while (handler.serving() && pop(chain)) {
            int written = handler.handle(chain);
            if (written == ChainHandler.DEFER) {
                rewind(1);
                deferred = true;
                break;
            }
            push(chain.head(), written);
            handled++;
            if (++unpublished == PUBLISH_BATCH) {
                // a long pass hands buffers back as it goes, so the driver refills while the device works on
                publish();
                handler.published(needsNotification());
                unpublished = 0;
            }
        }
        if (unpublished > 0) {
            publish();
            handler.published(needsNotification());
        }
        return deferred ? ChainHandler.DEFER : handled;
    }

    /**
     * Gives back the last {@code chains} popped chains unused, so the next pops return them again.
     * They stay looked at: notifications are asked for chains after them.
     *
     * @throws IllegalArgumentException if fewer than {@code chains} popped chains are unreturned
     */
    void rewind(int chains);

    /** Whether the guest broke a ring rule; a broken queue refuses every ring operation until it is replaced. */
    boolean isBroken();

    /**
     * Marks this queue broken for a rule of the device type that the ring engine cannot check itself,
     * and returns the exception for the caller to throw.
     */
    VirtqueueException markBroken(String message);

    /**
     * Where the next pop reads, as vhost-user's GET/SET_VRING_BASE carry it: for a split ring the
     * free-running 16-bit avail index; for a packed ring the descriptor ring offset in bits 0-14 and
     * the driver ring wrap counter in bit 15 (docs/interop/vhost-user.rst, "Vring descriptor indices").
     */
    int nextAvail();

    /**
     * Where the next used element goes, in the same encoding as {@link #nextAvail()} (for packed: the
     * offset in bits 0-14, the device ring wrap counter in bit 15). Publish before reading it for a
     * backend switch: pushed but unpublished chains belong to this queue object only.
     */
    int nextUsed();

    /**
     * Resumes where another backend stopped, positions in the encoding of {@link #nextAvail()}. The
     * first notification decision afterwards notifies.
     *
     * @throws IllegalArgumentException if a position is not one this ring can have, or more chains
     *                                  than the queue holds would be in flight
     */
    void setPosition(int nextAvail, int nextUsed);
}
