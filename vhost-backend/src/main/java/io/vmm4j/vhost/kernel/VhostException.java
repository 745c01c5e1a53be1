package io.vmm4j.vhost.kernel;

/** A vhost request the kernel refused, or a device that cannot be opened; the message says what to do. */
public final class VhostException extends RuntimeException {
    public VhostException(String message, Throwable cause) {
        super(message, cause);
    }
}
