package io.vmm4j.virtio.driver.net;

/**
 * Where the stack sends Ethernet frames: a plain frame, destination MAC first, with no virtio-net
 * header (the caller adds one) and no FCS.
 *
 * <p>The bytes are the stack's and valid only during the call: a sink copies what it keeps. A sink
 * may call back into the stack (two stacks wired back to back do), so the stack never reads a frame
 * it has handed over, nor one it is receiving, after it starts sending.
 */
@FunctionalInterface
public interface FrameSink {
    void send(byte[] frame, int offset, int length);
}
