package io.vmm4j.core.linux;

/**
 * A failed Linux call: names the call, the errno symbol and the arguments that matter, e.g.
 * {@code ioctl(fd=7, VHOST_SET_OWNER) failed: EPERM (Operation not permitted)}.
 */
public final class LinuxException extends RuntimeException {
    private final String call;
    private final int errno;

    public LinuxException(String call, int errno, String detail) {
        super(call + "(" + detail + ") failed: " + Errno.name(errno) + " (" + Errno.describe(errno) + ")");
        this.call = call;
        this.errno = errno;
    }

    /** The libc function that failed, e.g. {@code "ioctl"}. */
    public String call() {
        return call;
    }

    /** The errno value the call left behind. */
    public int errno() {
        return errno;
    }

    /** The errno symbol, e.g. {@code "ENOENT"}. */
    public String errnoName() {
        return Errno.name(errno);
    }
}
