package io.vmm4j.vhost;

/**
 * Told when a data plane that lives outside the VMM, such as a vhost-user backend process, connects
 * or goes away. The VMM's management turns these into events (QMP NETDEV_VHOST_USER_CONNECTED and
 * NETDEV_VHOST_USER_DISCONNECTED). A backend calls these from any thread; implementations return quickly.
 */
public interface BackendConnectionListener {
    /** Ignores everything. */
    BackendConnectionListener NONE = new BackendConnectionListener() {
        @Override
        public void disconnected(String netdevId, String reason) {
        }
    };

    /**
     * The backend behind {@code netdevId} is connected at {@code endpoint} (for vhost-user, the
     * socket path).
     */
    default void connected(String netdevId, String endpoint) {
    }

    /**
     * The connection to the backend behind {@code netdevId} is gone and its data plane stopped;
     * {@code reason} says why in a sentence (e.g. "the backend closed the socket").
     */
    void disconnected(String netdevId, String reason);
}
