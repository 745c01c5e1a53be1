package io.vmm4j.vhost.user;

/**
 * A vhost-user exchange failed: a message broke the protocol, a value was out of range, or the peer
 * is gone. The message is a sentence that names the request and the bad value.
 */
public class VhostUserException extends RuntimeException {
    public VhostUserException(String message) {
        super(message);
    }

    public VhostUserException(String message, Throwable cause) {
        super(message, cause);
    }
}
