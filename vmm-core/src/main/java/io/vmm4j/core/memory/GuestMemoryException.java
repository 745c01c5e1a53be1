package io.vmm4j.core.memory;

/** A guest-physical access that leaves guest memory, a region, or the alignment an access needs. Nothing was touched. */
public final class GuestMemoryException extends RuntimeException {
    private final long address;
    private final long length;

    public GuestMemoryException(String message, long address, long length) {
        super(message);
        this.address = address;
        this.length = length;
    }

    /** The guest-physical address of the rejected access. */
    public long address() {
        return address;
    }

    /** Its length in bytes. */
    public long length() {
        return length;
    }
}
