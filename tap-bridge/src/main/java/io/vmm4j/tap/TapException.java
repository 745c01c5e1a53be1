package io.vmm4j.tap;

/**
 * A tap, bridge or network namespace could not be set up or used. The message says what was
 * attempted, what the kernel or iproute2 answered, and what to do about it.
 */
public final class TapException extends RuntimeException {
    private final int errno;

    TapException(String message) {
        this(message, 0, null);
    }

    TapException(String message, int errno, Throwable cause) {
        super(message, cause);
        this.errno = errno;
    }

    /** The errno behind the failure, or 0 when it did not come from a system call (e.g. an iproute2 command). */
    public int errno() {
        return errno;
    }
}
