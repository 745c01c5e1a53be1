package io.vmm4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.vmm4j.cli.doctor.Capability;
import io.vmm4j.cli.doctor.HostProbe;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "doctor", mixinStandardHelpOptions = true,
        description = "Check what this host offers vmm4j (JDK, tun, KVM, vhost-net, QEMU, DPDK, tools) and how to get what is missing.")
public final class DoctorCommand implements Callable<Integer> {
    @Option(names = "--json", description = "Print the capabilities as a JSON array instead of a table.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        List<Capability> caps = new HostProbe().probe();
        PrintStream out = System.out;
        if (json) {
            out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(caps));
            return 0;
        }
        out.print(render(caps));
        return 0;
    }

    /** The capability table a person reads: one row per capability, then how to get what is missing. */
    static String render(List<Capability> caps) {
        int nameWidth = caps.stream().mapToInt(c -> c.name().length()).max().orElse(10);
        StringBuilder sb = new StringBuilder();
        sb.append(String.format("%-" + nameWidth + "s  %-7s  %s%n", "capability", "status", "enables"));
        sb.append("-".repeat(nameWidth)).append("  -------  ").append("-".repeat(40)).append('\n');
        for (Capability c : caps) {
            sb.append(String.format("%-" + nameWidth + "s  %-7s  %s%n", c.name(), c.available() ? "ok" : "MISSING", c.enables()));
            sb.append(String.format("%-" + nameWidth + "s           %s%n", "", c.detail()));
        }
        List<Capability> missing = caps.stream().filter(c -> !c.available()).toList();
        if (!missing.isEmpty()) {
            sb.append("\nHow to get what is missing:\n");
            for (Capability c : missing) {
                sb.append("  ").append(c.name()).append(": ").append(c.howToGet()).append('\n');
            }
        }
        return sb.toString();
    }
}
