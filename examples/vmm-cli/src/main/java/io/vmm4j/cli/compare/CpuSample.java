package io.vmm4j.cli.compare;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * What a set of threads or a process has used so far, read from /proc: CPU nanoseconds
 * (schedstat, finer than ticks), voluntary context switches, read- and write-class syscalls
 * (/proc/.../io syscr + syscw: read, readv, recvmsg, write, writev, sendmsg, ...), and for Java
 * threads of this JVM the heap bytes they allocated.
 */
public record CpuSample(long cpuNanos, long voluntarySwitches, long syscalls, long allocatedBytes) {
    public static final CpuSample ZERO = new CpuSample(0, 0, 0, 0);

    public CpuSample minus(CpuSample before) {
        return new CpuSample(cpuNanos - before.cpuNanos, voluntarySwitches - before.voluntarySwitches,
                syscalls - before.syscalls, allocatedBytes - before.allocatedBytes);
    }

    public CpuSample plus(CpuSample other) {
        return new CpuSample(cpuNanos + other.cpuNanos, voluntarySwitches + other.voluntarySwitches,
                syscalls + other.syscalls, allocatedBytes + other.allocatedBytes);
    }

    /** This JVM's threads whose names {@code include} accepts. */
    public static CpuSample ofOwnThreads(Predicate<String> include) {
        return ofOwnTasks(include).plus(new CpuSample(0, 0, 0, javaAllocated(include)));
    }

    /** {@link #ofOwnThreads} from /proc only, without heap bytes (no walk over every Java thread): cheap enough to sample often. */
    public static CpuSample ofOwnTasks(Predicate<String> include) {
        CpuSample total = ZERO;
        try (Stream<Path> tasks = Files.list(Path.of("/proc/self/task"))) {
            for (Path task : tasks.toList()) {
                String name = read(task.resolve("comm")).strip();
                if (include.test(name)) {
                    total = total.plus(ofTask(task));
                }
            }
        } catch (IOException e) {
            return total;
        }
        return total;
    }

    /** A whole process (all its threads) by pid; heap bytes are not known for another process. */
    public static CpuSample ofProcess(long pid) {
        CpuSample total = ZERO;
        try (Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
            for (Path task : tasks.toList()) {
                total = total.plus(ofTask(task));
            }
        } catch (IOException e) {
            return total;
        }
        return total;
    }

    /** Kernel threads (or any tasks) by pid, e.g. vhost-N workers. */
    public static CpuSample ofTasks(List<Integer> pids) {
        CpuSample total = ZERO;
        for (int pid : pids) {
            total = total.plus(ofTask(Path.of("/proc", Integer.toString(pid))));
        }
        return total;
    }

    private static CpuSample ofTask(Path task) {
        long cpu = 0;
        long switches = 0;
        long syscalls = 0;
        String schedstat = read(task.resolve("schedstat"));
        if (!schedstat.isBlank()) {
            cpu = Long.parseLong(schedstat.strip().split(" ")[0]);
        }
        for (String line : read(task.resolve("status")).lines().toList()) {
            if (line.startsWith("voluntary_ctxt_switches:")) {
                switches = Long.parseLong(line.substring(line.indexOf(':') + 1).strip());
            }
        }
        for (String line : read(task.resolve("io")).lines().toList()) {
            if (line.startsWith("syscr:") || line.startsWith("syscw:")) {
                syscalls += Long.parseLong(line.substring(6).strip());
            }
        }
        return new CpuSample(cpu, switches, syscalls, 0);
    }

    private static long javaAllocated(Predicate<String> include) {
        if (!(ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean mx)) {
            return 0;
        }
        long total = 0;
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            // /proc shows the first 15 bytes of a thread's name
            String name = t.getName().length() > 15 ? t.getName().substring(0, 15) : t.getName();
            if (include.test(name)) {
                long bytes = mx.getThreadAllocatedBytes(t.threadId());
                total += Math.max(bytes, 0);
            }
        }
        return total;
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (IOException | java.io.UncheckedIOException e) {
            return ""; // the task ended between listing and reading
        }
    }

    /** Tasks named {@code vhost-N} where N is one of this process's thread ids (vhost names its worker after the owner). */
    public static List<Integer> vhostWorkersOf(long pid) {
        Map<String, Boolean> ours = new HashMap<>();
        ours.put(Long.toString(pid), true);
        try (Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
            tasks.forEach(t -> ours.put(t.getFileName().toString(), true));
        } catch (IOException e) {
            return List.of();
        }
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            return procs.map(p -> p.getFileName().toString()).filter(n -> n.chars().allMatch(Character::isDigit))
                    .filter(n -> {
                        String comm = read(Path.of("/proc", n, "comm")).strip();
                        return comm.startsWith("vhost-") && ours.containsKey(comm.substring(6));
                    }).map(Integer::parseInt).toList();
        } catch (IOException e) {
            return List.of();
        }
    }
}
