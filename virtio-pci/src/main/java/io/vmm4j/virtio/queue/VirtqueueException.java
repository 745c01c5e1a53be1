package io.vmm4j.virtio.queue;

/**
 * The guest broke a virtqueue rule: a ring index, descriptor or table that the spec forbids, or one
 * that reaches outside guest memory. The message names the rule and the offending value.
 *
 * <p>The queue that threw is broken from then on ({@link Virtqueue#isBroken()}); the transport is
 * expected to set DEVICE_NEEDS_RESET (virtio 1.2 §2.1.2). Nothing outside guest memory was read or
 * written, and nothing in the used ring was written for the offending chain.
 */
public final class VirtqueueException extends RuntimeException {
    public VirtqueueException(String message) {
        super(message);
    }
}
