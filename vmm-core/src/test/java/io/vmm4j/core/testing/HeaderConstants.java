package io.vmm4j.core.testing;

import java.io.IOException;
import java.lang.foreign.GroupLayout;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.StructLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Evaluates C constant expressions against the system headers with gcc, so our Java copies of
 * kernel ABI numbers (ioctl requests, flags, struct sizes) are checked, not trusted.
 */
public final class HeaderConstants {
    private final List<String> includes = new ArrayList<>();
    private final Map<String, Long> expected = new LinkedHashMap<>();

    public HeaderConstants include(String... headers) {
        includes.addAll(List.of(headers));
        return this;
    }

    /** Expects the C expression {@code cExpression} to equal {@code javaValue}. */
    public HeaderConstants expect(String cExpression, long javaValue) {
        expected.put(cExpression, javaValue);
        return this;
    }

    /**
     * Expects {@code sizeof(struct cStruct)} to be the layout's size, and the offset and size of every
     * named member, nested groups included, to be the layout's. A group named in
     * {@code anonymousGroups} stands for an anonymous struct or union in C: its members are reached
     * without its name (only its own members are checked).
     */
    public HeaderConstants expectLayout(String cStruct, GroupLayout layout, String... anonymousGroups) {
        if (!includes.contains("stddef.h")) {
            includes.addFirst("stddef.h");
        }
        expect("sizeof(struct " + cStruct + ")", layout.byteSize());
        expectMembers(cStruct, layout, "", 0, Set.of(anonymousGroups));
        return this;
    }

    private void expectMembers(String cStruct, GroupLayout group, String prefix, long base, Set<String> anonymous) {
        long offset = 0;
        for (MemoryLayout m : group.memberLayouts()) {
            long at = base + (group instanceof StructLayout ? offset : 0);
            offset += m.byteSize();
            if (m.name().isEmpty()) {
                continue; // padding
            }
            String name = m.name().get();
            boolean hidden = anonymous.contains(name);
            String path = hidden ? prefix : prefix + name;
            if (!hidden) {
                expect("offsetof(struct " + cStruct + ", " + path + ")", at);
                expect("sizeof(((struct " + cStruct + " *)0)->" + path + ")", m.byteSize());
            }
            if (m instanceof GroupLayout inner) {
                expectMembers(cStruct, inner, hidden ? prefix : path + ".", at, anonymous);
            }
        }
    }

    /** Compiles and runs a probe, then asserts every expectation; needs gcc (skips, or fails under CI=true). */
    public void verify() throws IOException, InterruptedException {
        Path gcc = HostRequirements.requireCommand("gcc", "gcc");
        Path dir = Files.createTempDirectory("vmm4j-headers");
        StringBuilder c = new StringBuilder();
        for (String h : includes) {
            c.append("#include <").append(h).append(">\n");
        }
        c.append("#include <stdio.h>\nint main(void) {\n");
        int i = 0;
        for (String expr : expected.keySet()) {
            c.append("  printf(\"%d=%llu\\n\", ").append(i++).append(", (unsigned long long)(").append(expr).append("));\n");
        }
        c.append("  return 0;\n}\n");
        Path src = dir.resolve("probe.c");
        Path exe = dir.resolve("probe");
        Files.writeString(src, c);
        String compile = run(List.of(gcc.toString(), "-o", exe.toString(), src.toString()));
        assertTrue(Files.isExecutable(exe), "gcc could not build the header probe:\n" + compile + "\n" + c);
        String output = run(List.of(exe.toString()));
        List<String> exprs = new ArrayList<>(expected.keySet());
        Map<String, Long> actual = new LinkedHashMap<>();
        for (String line : output.lines().toList()) {
            int eq = line.indexOf('=');
            actual.put(exprs.get(Integer.parseInt(line.substring(0, eq))), Long.parseUnsignedLong(line.substring(eq + 1)));
        }
        List<String> mismatches = new ArrayList<>();
        for (Map.Entry<String, Long> e : expected.entrySet()) {
            Long got = actual.get(e.getKey());
            if (got == null || got.longValue() != e.getValue()) {
                mismatches.add(String.format("%s: header says 0x%x, vmm4j has 0x%x", e.getKey(), got, e.getValue()));
            }
        }
        assertEquals(List.of(), mismatches, "constants that differ from the system headers");
        assertEquals(expected.size(), actual.size(), "every constant was evaluated");
    }

    private static String run(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
        }
        return out;
    }
}
