package io.vmm4j.vhost.user;

/**
 * The byte stream itself cannot be trusted any more (a truncated header, a size field that does not
 * match the request's payload, a bad version), or can carry no more messages (the peer has gone, or
 * does not read): the only safe answer is to close the connection.
 */
public final class VhostUserFramingException extends VhostUserException {
    public VhostUserFramingException(String message) {
        super(message);
    }
}
