package io.vmm4j.core.boot;

/**
 * A kernel, initrd or command line that cannot be booted: the message names the file (or item),
 * what is wrong with it, and what to use instead.
 */
public final class KernelImageException extends RuntimeException {
    public KernelImageException(String message) {
        super(message);
    }

    public KernelImageException(String message, Throwable cause) {
        super(message, cause);
    }
}
