package io.vmm4j.tap;

import java.util.List;

/** How a host command ended: its exit code and everything it printed. */
public record CommandResult(List<String> command, int exitCode, String stdout, String stderr) {
    public CommandResult {
        command = List.copyOf(command);
    }

    public boolean succeeded() {
        return exitCode == 0;
    }

    /** The command as one would type it, for messages. */
    public String commandLine() {
        return String.join(" ", command);
    }

    /**
     * Returns this result if the command succeeded, else throws a {@link TapException} saying
     * what could not be done ({@code doing}, e.g. "add bridge vtbr1"), the command and its stderr.
     */
    public CommandResult orThrow(String doing) {
        if (!succeeded()) {
            String said = stderr.isBlank() ? stdout.strip() : stderr.strip();
            throw new TapException("could not " + doing + ": `" + commandLine() + "` exited with " + exitCode
                    + (said.isEmpty() ? "" : ": " + said));
        }
        return this;
    }
}
