package io.vmm4j.examples.linux;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The host's side of a ping test: runs the host's {@code ping} (iputils) at the guest and reads
 * its summary. Used while the guest's /init runs its {@code serve} workload (the host pings the
 * guest) or {@code count} (the host floods the guest).
 *
 * @param target      the guest address pinged
 * @param sent        requests sent ("N packets transmitted")
 * @param received    replies received
 * @param rttMs       the round-trip time of each reply, in milliseconds
 * @param exitCode    ping's exit status (0: every request answered; -1: it could not run or was killed)
 * @param summary     ping's statistics line, or why it did not run
 */
record HostPing(String target, int sent, int received, List<Double> rttMs, int exitCode, String summary) {
    // iputils: "5 packets transmitted, 5 received, 0% packet loss, time 804ms"; busybox: "... 5 packets received, ..."
    private static final Pattern TOTALS = Pattern.compile("(\\d+) packets transmitted, (\\d+) (?:packets )?received.*");
    private static final Pattern RTT = Pattern.compile("\\btime=([0-9]+(?:\\.[0-9]+)?) ?ms");

    /**
     * Pings {@code target} {@code count} times (every 0.2 s, or back to back with {@code flood},
     * which needs root), giving up after {@code deadlineSeconds}.
     */
    static HostPing run(String target, int count, boolean flood, int deadlineSeconds) {
        List<String> cmd = new ArrayList<>(List.of("ping", "-n", "-c", Integer.toString(count), "-w", Integer.toString(deadlineSeconds)));
        cmd.addAll(flood ? List.of("-f") : List.of("-i", "0.2", "-W", "2"));
        cmd.add(target);
        Process p;
        try {
            ProcessBuilder b = new ProcessBuilder(cmd).redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
            b.environment().put("LC_ALL", "C"); // the summary is parsed
            p = b.start();
        } catch (IOException e) {
            return new HostPing(target, 0, 0, List.of(), -1, "could not start " + String.join(" ", cmd) + ": " + e.getMessage());
        }
        try {
            byte[] out = p.getInputStream().readAllBytes(); // ping's own -w bounds this
            if (!p.waitFor(deadlineSeconds + 10L, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return new HostPing(target, 0, 0, List.of(), -1, String.join(" ", cmd) + " did not end");
            }
            return parse(target, new String(out, StandardCharsets.UTF_8), p.exitValue());
        } catch (IOException e) {
            p.destroyForcibly();
            return new HostPing(target, 0, 0, List.of(), -1, "reading ping's output failed: " + e.getMessage());
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            return new HostPing(target, 0, 0, List.of(), -1, "interrupted");
        }
    }

    /** Reads a ping's output (iputils or busybox): the totals line and each reply's time. */
    static HostPing parse(String target, String output, int exitCode) {
        int sent = 0;
        int received = 0;
        String summary = "no statistics in ping's output: " + output.strip().lines().reduce((a, b) -> b).orElse("(none)");
        List<Double> rtts = new ArrayList<>();
        for (String line : output.lines().toList()) {
            Matcher t = TOTALS.matcher(line.strip());
            if (t.matches()) {
                sent = Integer.parseInt(t.group(1));
                received = Integer.parseInt(t.group(2));
                summary = line.strip();
            }
            Matcher r = RTT.matcher(line);
            if (r.find()) {
                rtts.add(Double.parseDouble(r.group(1)));
            }
        }
        return new HostPing(target, sent, received, List.copyOf(rtts), exitCode, summary);
    }

    /** One parseable line's JSON, as the guest's vmm4j-result lines are. */
    String json() {
        StringBuilder rtt = new StringBuilder();
        for (double d : rttMs) {
            rtt.append(rtt.isEmpty() ? "" : ",").append(String.format(Locale.ROOT, "%.3f", d));
        }
        return String.format(Locale.ROOT, "{\"command\":\"ping\",\"target\":\"%s\",\"sent\":%d,\"received\":%d,\"rtt_ms\":[%s],\"exit\":%d}",
                target, sent, received, rtt, exitCode);
    }
}
