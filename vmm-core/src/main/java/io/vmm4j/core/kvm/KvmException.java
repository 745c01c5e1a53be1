package io.vmm4j.core.kvm;

/** KVM cannot do what was asked, or the guest stopped in a way the VMM does not handle; the message says which and what to do. */
public class KvmException extends RuntimeException {
    public KvmException(String message) {
        super(message);
    }

    public KvmException(String message, Throwable cause) {
        super(message, cause);
    }
}
