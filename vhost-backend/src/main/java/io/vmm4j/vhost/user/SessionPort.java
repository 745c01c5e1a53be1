package io.vmm4j.vhost.user;

import io.vmm4j.tap.PacketPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.TapOffloads;

/**
 * The daemon's packet port as one front-end's session changes it: receive offloads from the acked
 * features, the tap's MTU when the daemon made the tap, and the port queue of each pair the
 * front-end disabled, which goes back to the port enabled when that pair stops (a fresh engine
 * expects it so).
 */
final class SessionPort {
    private final PacketPort port;
    private final boolean managesTapMtu;
    private final boolean[] queueDetached;

    SessionPort(PacketPort port, boolean managesTapMtu, int pairs) {
        this.port = port;
        this.managesTapMtu = managesTapMtu;
        this.queueDetached = new boolean[pairs];
    }

    PacketPort port() {
        return port;
    }

    /** SET_FEATURES: the guest's receive offloads (TUNSETOFFLOAD) follow its acked GUEST_* bits. */
    void featuresAcked(long features) {
        if (port.supportsOffloads()) {
            port.setOffloads(TapOffloads.fromGuestFeatures(features));
        }
    }

    /** NET_SET_MTU changed the MTU from {@code old}: the daemon's own tap follows it. */
    void mtuChanged(int old, int mtu) {
        if (managesTapMtu && port instanceof TapDevice tap && mtu != old) {
            tap.setMtu(mtu);
        }
    }

    /** The pair's engine was enabled or disabled; disabling detached a multi-queue port's queue. */
    void pairEnabled(int pair, boolean on) {
        queueDetached[pair] = !on && port.queueCount() > 1;
    }

    /** The pair's engine stopped: a queue it left detached is attached again. */
    void pairStopped(int pair) {
        if (queueDetached[pair]) {
            port.setQueueEnabled(pair, true);
            queueDetached[pair] = false;
        }
    }
}
