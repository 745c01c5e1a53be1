package io.vmm4j.tap;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A named network namespace ({@code ip netns add}, a bind mount under /run/netns): its own
 * interfaces, addresses, routes and neighbour tables, so a test's traffic never reaches the host.
 *
 * <p>Driven with iproute2 rather than setns(2) through FFM: entering a namespace changes the
 * calling thread only, which a JVM thread pool would carry into unrelated work; {@code ip netns
 * exec} runs a command in the namespace in a process of its own.
 */
public final class NetNamespace implements AutoCloseable {
    private final String name;
    private boolean deleted;

    private NetNamespace(String name) {
        this.name = name;
    }

    /** Creates the namespace {@code name} ({@code ip netns add NAME}); its loopback is down until set up. */
    public static NetNamespace create(String name) {
        if (name == null || name.isEmpty() || name.contains("/") || name.equals(".") || name.equals("..")) {
            throw new IllegalArgumentException("network namespace name '" + name + "' is not a plain file name under "
                    + "/run/netns: use letters, digits, '-' or '_'");
        }
        HostCommand.runIp("create network namespace " + name, null, "netns", "add", name);
        return new NetNamespace(name);
    }

    public String name() {
        return name;
    }

    /**
     * Runs {@code command} inside the namespace ({@code ip netns exec NAME command...}) and returns
     * its exit code and output; a failing command is a result, not an exception.
     */
    public CommandResult exec(String... command) {
        if (command.length == 0) {
            throw new IllegalArgumentException("no command to run in network namespace " + name);
        }
        checkNotDeleted();
        List<String> full = new ArrayList<>(HostCommand.ip(null, "netns", "exec", name));
        full.addAll(List.of(command));
        return HostCommand.run(full);
    }

    /** Runs {@code ip args...} in the namespace ({@code ip -n NAME args...}), throwing if it fails. */
    public CommandResult ip(String doing, String... args) {
        checkNotDeleted();
        return HostCommand.runIp(doing, name, args);
    }

    /**
     * Deletes the namespace ({@code ip netns del NAME}). Devices the kernel created in it go with it;
     * devices moved in return to their original namespace only if their driver allows it. Idempotent.
     */
    public synchronized void delete() {
        if (deleted) {
            return;
        }
        CommandResult result = HostCommand.run(HostCommand.ip(null, "netns", "del", name));
        if (!result.succeeded() && exists()) {
            result.orThrow("delete network namespace " + name);
        }
        deleted = true;
    }

    @Override
    public void close() {
        delete();
    }

    private boolean exists() {
        return Files.exists(Path.of("/run/netns", name));
    }

    private synchronized void checkNotDeleted() {
        if (deleted) {
            throw new IllegalStateException("network namespace " + name + " was deleted");
        }
    }

    @Override
    public String toString() {
        return "netns " + name;
    }
}
