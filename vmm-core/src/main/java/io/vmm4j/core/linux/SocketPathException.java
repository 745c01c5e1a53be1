package io.vmm4j.core.linux;

/**
 * A UNIX socket cannot be bound at the path it was given: the message starts with the path, says
 * what is in the way and what to do, so a command can put its flag in front ("--socket " + message).
 */
public final class SocketPathException extends IllegalArgumentException {
    public SocketPathException(String message) {
        super(message);
    }

    public SocketPathException(String message, Throwable cause) {
        super(message, cause);
    }
}
