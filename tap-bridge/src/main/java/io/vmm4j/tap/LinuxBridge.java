package io.vmm4j.tap;

/**
 * A Linux software bridge (a switch in the kernel) that taps of several VMs can join.
 *
 * <p>Driven with iproute2's {@code ip}, not rtnetlink through FFM: creating a bridge and
 * enslaving ports are a handful of control-path operations per VM, and the {@code ip} command in
 * a failure message is what an operator runs to reproduce it. A bridge cannot change namespace
 * (the kernel marks it netns-local), so it is created directly in the namespace it serves.
 */
public final class LinuxBridge implements AutoCloseable {
    private final String name;
    private final String namespace;
    private boolean deleted;

    private LinuxBridge(String name, String namespace) {
        this.name = name;
        this.namespace = namespace;
    }

    /** Creates bridge {@code name} in this process's network namespace. */
    public static LinuxBridge create(String name) {
        return create(name, (String) null);
    }

    /**
     * Creates bridge {@code name} in network namespace {@code netns} (null: ours). STP stays off,
     * the iproute2 default, so ports forward as soon as they are up instead of listening and
     * learning for the forward delay first (net/bridge/br_stp.c br_make_forwarding).
     */
    public static LinuxBridge create(String name, String netns) {
        InterfaceName.requireValid(name, "bridge");
        HostCommand.runIp("create bridge " + name, netns, "link", "add", "name", name, "type", "bridge", "stp_state", "0");
        return new LinuxBridge(name, netns);
    }

    /** Creates bridge {@code name} in {@code netns}; see {@link #create(String, String)}. */
    public static LinuxBridge create(String name, NetNamespace netns) {
        return create(name, netns.name());
    }

    public String name() {
        return name;
    }

    /** The namespace the bridge lives in, or null for ours. */
    public String namespace() {
        return namespace;
    }

    /**
     * Makes {@code ifname} a port of an existing bridge {@code bridge}, both in this process's
     * namespace ({@code ip link set dev IF master BR}): for a VMM joining a bridge someone else made.
     */
    public static void attach(String bridge, String ifname) {
        HostCommand.runIp("add " + ifname + " to bridge " + bridge, null, "link", "set", "dev", ifname, "master", bridge);
    }

    /** Makes {@code ifname}, which must be in the bridge's namespace, a port of the bridge ({@code ip link set dev IF master BR}). */
    public synchronized void addInterface(String ifname) {
        checkNotDeleted();
        HostCommand.runIp("add " + ifname + " to bridge " + name, namespace, "link", "set", "dev", ifname, "master", name);
    }

    /** Takes {@code ifname} out of the bridge ({@code ip link set dev IF nomaster}). */
    public synchronized void removeInterface(String ifname) {
        checkNotDeleted();
        HostCommand.runIp("remove " + ifname + " from bridge " + name, namespace, "link", "set", "dev", ifname, "nomaster");
    }

    /** Sets the bridge link up; its ports must be up too for frames to pass. */
    public synchronized void up() {
        checkNotDeleted();
        HostCommand.runIp("set bridge " + name + " up", namespace, "link", "set", "dev", name, "up");
    }

    /** Deletes the bridge; its ports stay, unenslaved. Idempotent, also when the link is already gone. */
    public synchronized void delete() {
        if (deleted) {
            return;
        }
        CommandResult result = HostCommand.run(HostCommand.ip(namespace, "link", "del", "dev", name));
        if (!result.succeeded() && exists()) {
            result.orThrow("delete bridge " + name);
        }
        deleted = true;
    }

    @Override
    public void close() {
        delete();
    }

    private boolean exists() {
        return HostCommand.run(HostCommand.ip(namespace, "link", "show", "dev", name)).succeeded();
    }

    private void checkNotDeleted() {
        if (deleted) {
            throw new IllegalStateException("bridge " + name + " was deleted");
        }
    }

    @Override
    public String toString() {
        return "bridge " + name + (namespace == null ? "" : " in netns " + namespace);
    }
}
