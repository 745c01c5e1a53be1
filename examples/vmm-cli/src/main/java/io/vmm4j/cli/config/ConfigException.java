package io.vmm4j.cli.config;

import java.util.List;

/** A VM config file that cannot be used: each problem names the file, the JSON path and what is allowed. */
public final class ConfigException extends RuntimeException {
    private final List<String> problems;

    public ConfigException(String file, List<String> problems) {
        super(problems.size() == 1 ? file + ": " + problems.getFirst()
                : file + ": " + problems.size() + " problems:\n  " + String.join("\n  ", problems));
        this.problems = List.copyOf(problems);
    }

    /** Each problem, starting with its JSON path such as {@code $.net.queueSize}. */
    public List<String> problems() {
        return problems;
    }
}
