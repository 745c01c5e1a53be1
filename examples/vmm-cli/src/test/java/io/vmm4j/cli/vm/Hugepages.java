package io.vmm4j.cli.vm;

import io.vmm4j.tap.CommandResult;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * 2 MiB hugepages for a DPDK peer (testpmd, OVS-DPDK): the host's reservation raised to
 * {@code pages} if it is lower, and a hugetlbfs mount of the test's own for the EAL's files.
 * {@link #close} unmounts it, removes its (temporary) directory and puts the reservation back as it was found.
 */
final class Hugepages implements AutoCloseable {
    private static final Path NR_HUGEPAGES = Path.of("/proc/sys/vm/nr_hugepages");

    private final int pages;
    private long found = -1;
    private Path mount;
    private String problem;

    private Hugepages(int pages) {
        this.pages = pages;
    }

    /**
     * Reserves and mounts; what went wrong, if anything, is in {@link #problem} (a test skips or
     * fails with it) and there is then no mount.
     *
     * @param needFree the free pages the peer needs, and {@code why} it does (for the message)
     */
    static Hugepages reserve(int pages, int needFree, String why) throws IOException, InterruptedException {
        Hugepages h = new Hugepages(pages);
        h.problem = h.reserveAndMount(needFree, why);
        return h;
    }

    private String reserveAndMount(int needFree, String why) throws IOException, InterruptedException {
        if (!Files.isWritable(NR_HUGEPAGES)) {
            return NR_HUGEPAGES + " is not writable";
        }
        found = Long.parseLong(Files.readString(NR_HUGEPAGES).strip());
        if (found < pages) {
            Files.writeString(NR_HUGEPAGES, Integer.toString(pages));
            if (meminfo("HugePages_Free") < needFree) {
                // a busy machine's memory is fragmented: free the page cache, compact, and ask again
                Files.writeString(Path.of("/proc/sys/vm/drop_caches"), "3");
                Files.writeString(Path.of("/proc/sys/vm/compact_memory"), "1");
                Files.writeString(NR_HUGEPAGES, Integer.toString(pages));
            }
        }
        long free = meminfo("HugePages_Free");
        if (free < needFree) {
            return "only " + free + " free 2 MiB hugepages after asking for " + pages + " (echo " + pages + " > " + NR_HUGEPAGES + "); "
                    + why;
        }
        Path at = Files.createTempDirectory("vmm4j-hugetlbfs");
        CommandResult r = OvsSandbox.run(List.of("mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "none", at.toString()));
        if (!r.succeeded()) {
            Files.deleteIfExists(at);
            return "mount -t hugetlbfs failed: " + r.stderr().strip();
        }
        mount = at;
        return null;
    }

    /** Why there are no hugepages for the peer, or null. */
    String problem() {
        return problem;
    }

    /** The hugetlbfs mount (null when there is a {@link #problem}). */
    Path dir() {
        return mount;
    }

    static long meminfo(String key) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
            if (line.startsWith(key + ":")) {
                return Long.parseLong(line.substring(key.length() + 1).strip().split("\\s+")[0]);
            }
        }
        return -1;
    }

    /** Unmounts (asserting the mount is gone), removes the directory, and restores the reservation it found. */
    @Override
    public void close() throws IOException {
        try {
            if (mount != null) {
                try {
                    OvsSandbox.run(List.of("umount", mount.toString()));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted while unmounting " + mount, e);
                }
                assertFalse(Files.readString(Path.of("/proc/mounts")).contains(mount.toString()), "hugetlbfs unmounted");
                Files.deleteIfExists(mount);
                mount = null;
            }
        } finally {
            if (found >= 0 && found < pages) {
                Files.writeString(NR_HUGEPAGES, Long.toString(found)); // as we found it
                found = -1;
            }
        }
    }
}
