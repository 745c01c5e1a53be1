package io.vmm4j.cli.vm;

import io.vmm4j.vhost.BackendConnectionListener;
import io.vmm4j.vhost.user.VhostUserNetBackend;
import io.vmm4j.virtio.net.VirtioNet;

import java.io.PrintStream;
import java.util.function.Consumer;

/**
 * What the VMM does when its vhost-user back-end goes away: it says so, sets the NIC's link down
 * (the guest sees STATUS change after a configuration interrupt), tells management, and runs on.
 * Without a way back (no {@code --reconnect}, no {@code --socket-listen}) the reason becomes the
 * run's error. With one, when a back-end comes back it sets the link up again (which replays the
 * setup on the new back-end, {@code VhostUserNetBackend#startRings}), tells management, and says
 * how many frames the link-down plane dropped while the back-end was away.
 */
final class LinkDownOnHangup implements Consumer<String> {
    /** The netdev id management knows the NIC's data plane by. */
    static final String NETDEV = "net0";

    private final String endpoint;
    private final PrintStream log;
    private volatile VirtioNet net;
    private volatile VhostUserNetBackend backend;
    private volatile String reason;
    private volatile BackendConnectionListener listener = BackendConnectionListener.NONE;
    /** Whether this set the link down (management had it up), so a returning back-end may set it up again. */
    private volatile boolean downedByHangup;
    private volatile long droppedAtHangup;
    private volatile long droppedWhileAway;

    /** @param endpoint where the back-end is (its socket), for a listener told it is connected */
    LinkDownOnHangup(String endpoint, PrintStream log) {
        this.endpoint = endpoint;
        this.log = log;
    }

    /** The NIC whose link goes down. */
    void attach(VirtioNet nic) {
        net = nic;
        if (reason != null) {
            nic.setLinkUp(false); // the back-end went while the NIC was being built
        }
    }

    /** The data plane whose connection this follows. */
    void watch(VhostUserNetBackend vu) {
        backend = vu;
    }

    /** Who hears about the back-end from now on; told at once when it is connected now. */
    void setListener(BackendConnectionListener l) {
        listener = l;
        if (reason == null) {
            l.connected(NETDEV, endpoint);
        }
    }

    /** Why the back-end went away, or null while it is there. */
    String reason() {
        return reason;
    }

    /** Frames the VMM dropped with the link down while back-ends were away, over every outage so far. */
    long droppedWhileAway() {
        return droppedWhileAway;
    }

    private boolean reconnects() {
        VhostUserNetBackend vu = backend;
        return vu != null && vu.endpoint().reconnects();
    }

    @Override
    public void accept(String why) {
        reason = why;
        VirtioNet nic = net;
        boolean back = reconnects();
        log.println("vmm4j: " + why + "; virtio-net link down, the VMM keeps running "
                + (back ? "(" + (backend.endpoint().listen() ? "waiting for the back-end to connect again to "
                + backend.socket() : "retrying " + backend.socket() + " every " + backend.endpoint().reconnectSeconds() + " s") + ")"
                : "(restart the back-end and the VM to get the data plane back)"));
        if (nic != null) {
            droppedAtHangup = dropped(nic);
            downedByHangup = nic.linkUp();
            nic.setLinkUp(false);
        }
        listener.disconnected(NETDEV, why);
    }

    /**
     * A back-end is back (on the reconnect thread): link up, unless management had set it down,
     * which replays the setup; throws if the new back-end refuses it (the link stays down).
     */
    void reconnected(String socket) {
        VirtioNet nic = net;
        if (nic != null && (downedByHangup || nic.linkUp())) {
            try {
                if (nic.linkUp()) {
                    nic.backend().setLinkUp(true); // management set the link up while the back-end was away: the rings go out now
                } else {
                    nic.setLinkUp(true);
                }
            } catch (RuntimeException e) {
                nic.setLinkUp(false); // the rings stayed with the VMM; the guest's view follows
                throw e;
            }
        }
        long lost = nic == null ? 0 : dropped(nic) - droppedAtHangup;
        droppedWhileAway += lost;
        downedByHangup = false;
        reason = null;
        log.println("vmm4j: the vhost-user back-end at " + socket + " is back; setup replayed, virtio-net link "
                + (nic != null && nic.linkUp() ? "up" : "left down (set_link off)") + "; " + lost
                + " frame(s) dropped while it was away");
        listener.connected(NETDEV, socket);
    }

    private static long dropped(VirtioNet nic) {
        return nic.counters().stream().mapToLong(c -> c.dropsLinkDown).sum();
    }
}
