package io.vmm4j.cli.vm;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/**
 * What one part of the toy VM opened, closed in the reverse order: a close that fails is logged
 * and the others are closed still.
 */
final class OwnedResources implements AutoCloseable {
    private final PrintStream log;
    private final List<AutoCloseable> resources = new ArrayList<>();

    OwnedResources(PrintStream log) {
        this.log = log;
    }

    /** Takes {@code resource} (null: nothing) to close later; returns it. */
    <T extends AutoCloseable> T add(T resource) {
        if (resource != null) {
            resources.add(resource);
        }
        return resource;
    }

    @Override
    public void close() {
        for (int i = resources.size() - 1; i >= 0; i--) {
            try {
                resources.get(i).close();
            } catch (Exception e) {
                log.println("vmm4j: closing " + resources.get(i) + " failed: " + e.getMessage());
            }
        }
        resources.clear();
    }
}
