package io.vmm4j.cli.vm;

import io.vmm4j.vhost.BackendConnectionListener;
import io.vmm4j.virtio.net.VirtioNet;

import java.io.PrintStream;
import java.util.function.Consumer;

/**
 * What the VMM does when its vhost-user back-end goes away: it says so, sets the NIC's link down
 * (the guest sees STATUS change after a configuration interrupt), tells management, and runs on;
 * the reason becomes the run's error. It does not reconnect.
 */
final class LinkDownOnHangup implements Consumer<String> {
    /** The netdev id management knows the NIC's data plane by. */
    static final String NETDEV = "net0";

    private final String endpoint;
    private final PrintStream log;
    private volatile VirtioNet net;
    private volatile String reason;
    private volatile BackendConnectionListener listener = BackendConnectionListener.NONE;

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

    @Override
    public void accept(String why) {
        reason = why;
        log.println("vmm4j: " + why + "; virtio-net link down, the VMM keeps running "
                + "(restart the back-end and the VM to get the data plane back)");
        VirtioNet nic = net;
        if (nic != null) {
            nic.setLinkUp(false);
        }
        listener.disconnected(NETDEV, why);
    }
}
