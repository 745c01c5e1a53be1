package io.vmm4j.core.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * A child process started with posix_spawn, which, unlike {@link ProcessBuilder}, can hand the
 * child chosen descriptors: {@code inherit} maps child fd numbers (3, 4, ...) to our fds. Every
 * other descriptor of ours is close-on-exec and stays behind.
 */
public final class ChildProcess implements AutoCloseable {
    private final int pid;
    private Integer exitStatus;

    private ChildProcess(int pid) {
        this.pid = pid;
    }

    /**
     * Starts {@code command} (an absolute executable path first) with the given environment; stdin,
     * stdout and stderr are shared with this process.
     */
    public static ChildProcess spawn(List<String> command, Map<String, String> environment, Map<Integer, Integer> inherit) {
        if (command.isEmpty() || !command.getFirst().startsWith("/")) {
            throw new IllegalArgumentException("command must start with an absolute executable path: " + command);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment argv = arena.allocate(ADDRESS, command.size() + 1L);
            for (int i = 0; i < command.size(); i++) {
                argv.setAtIndex(ADDRESS, i, arena.allocateFrom(command.get(i)));
            }
            argv.setAtIndex(ADDRESS, command.size(), MemorySegment.NULL);
            List<String> env = environment.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).toList();
            MemorySegment envp = arena.allocate(ADDRESS, env.size() + 1L);
            for (int i = 0; i < env.size(); i++) {
                envp.setAtIndex(ADDRESS, i, arena.allocateFrom(env.get(i)));
            }
            envp.setAtIndex(ADDRESS, env.size(), MemorySegment.NULL);

            MemorySegment actions = arena.allocate(LibC.SPAWN_FILE_ACTIONS_SIZE, 16);
            check(LibC.spawnFileActionsInit(actions), "posix_spawn_file_actions_init", "");
            try {
                for (Map.Entry<Integer, Integer> e : inherit.entrySet()) {
                    // dup2 onto the child's number clears close-on-exec there.
                    check(LibC.spawnFileActionsAddDup2(actions, e.getValue(), e.getKey()),
                            "posix_spawn_file_actions_adddup2", "fd=" + e.getValue() + " -> " + e.getKey());
                }
                MemorySegment pid = arena.allocate(JAVA_INT);
                check(LibC.spawn(pid, arena.allocateFrom(command.getFirst()), actions, argv, envp),
                        "posix_spawn", command.getFirst());
                return new ChildProcess(pid.get(JAVA_INT, 0));
            } finally {
                LibC.spawnFileActionsDestroy(actions);
            }
        }
    }

    private static void check(int error, String call, String detail) {
        if (error != 0) {
            throw new LinuxException(call, error, detail);
        }
    }

    public int pid() {
        return pid;
    }

    /** Waits for the child and returns its exit code (128 + signal if a signal ended it). */
    public int waitFor() {
        if (exitStatus == null) {
            exitStatus = LibC.waitpid(pid, 0);
        }
        return decode(exitStatus);
    }

    /** The exit code if the child has ended, else {@code null}. */
    public Integer exitCodeIfDone() {
        if (exitStatus == null) {
            int status = LibC.waitpid(pid, LibC.WNOHANG);
            if (status == -1) {
                return null;
            }
            exitStatus = status;
        }
        return decode(exitStatus);
    }

    private static int decode(int status) {
        int signal = status & 0x7F;
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal;
    }

    /** Kills the child if it still runs and reaps it. */
    @Override
    public void close() {
        if (exitCodeIfDone() == null) {
            try {
                LibC.kill(pid, LibC.SIGKILL);
            } catch (LinuxException ignored) {
                // it ended between the check and the kill
            }
            waitFor();
        }
    }
}
