package io.vmm4j.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of {@code ./vmm}: one subcommand per tool. */
@Command(name = "vmm", mixinStandardHelpOptions = true, version = "vmm4j 0.1.0",
        description = "vmm4j: a user-space virtio device backend on the JVM.",
        footer = {"", "The ./vmm launcher also has: test (the whole test suite), bench (JMH benchmarks), lab (the QEMU lab VM",
                "with a vhost_net kernel: ./vmm lab --help), build (rebuild now)."},
        subcommands = {RunCommand.class, CompareCommand.class, VhostUserBackendCommand.class, DoctorCommand.class,
                CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    public static int execute(String... args) {
        CommandLine cli = new CommandLine(new Main());
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            // a failure reads as one line naming what went wrong; the stack trace only on request
            cmd.getErr().println("vmm " + cmd.getCommandName() + ": " + e.getMessage());
            if (System.getenv("VMM4J_DEBUG") != null) {
                e.printStackTrace(cmd.getErr());
            }
            return 1;
        });
        return cli.execute(args);
    }
}
