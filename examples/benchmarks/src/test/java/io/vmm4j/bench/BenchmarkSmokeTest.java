package io.vmm4j.bench;

import io.vmm4j.core.linux.IoUring;
import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.Test;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

import java.util.Collection;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The JMH benchmarks run, as a smoke test only: one short iteration in this JVM, checking each
 * produces a positive score. Speed targets are checked with {@code ./vmm bench}, not here.
 */
class BenchmarkSmokeTest {
    private static Collection<RunResult> runBriefly(String benchmark) throws Exception {
        return new Runner(brief(benchmark).build()).run();
    }

    private static ChainedOptionsBuilder brief(String benchmark) {
        return new OptionsBuilder().include(benchmark).forks(0).warmupIterations(0).measurementIterations(1)
                .measurementTime(TimeValue.milliseconds(200)).shouldFailOnError(true);
    }

    @Test
    void splitQueueBenchmarkRunsEveryParameterCombination() throws Exception {
        Collection<RunResult> results = runBriefly(SplitQueueBenchmark.class.getSimpleName());
        assertEquals(4, results.size(), "eventIdx x batch");
        for (RunResult r : results) {
            assertTrue(r.getPrimaryResult().getScore() > 0, r.getParams() + " scored " + r.getPrimaryResult().getScore());
        }
    }

    @Test
    void packedQueueBenchmarkRunsEveryParameterCombination() throws Exception {
        Collection<RunResult> results = runBriefly(PackedQueueBenchmark.class.getSimpleName());
        assertEquals(4, results.size(), "eventIdx x batch");
        for (RunResult r : results) {
            assertTrue(r.getPrimaryResult().getScore() > 0, r.getParams() + " scored " + r.getPrimaryResult().getScore());
        }
    }

    @Test
    void emulatedTxBenchmarkAndItsCeilingRun() throws Exception {
        HostRequirements.requireRoot("a tap for the transmit path");
        HostRequirements.requireFile("/dev/net/tun", "modprobe tun");
        Collection<RunResult> results = runBriefly(EmulatedTxBenchmark.class.getSimpleName());
        assertEquals(2, results.size(), "emulatedTx and rawTapWrite");
        for (RunResult r : results) {
            assertTrue(r.getPrimaryResult().getScore() > 0, r.getParams().getBenchmark() + " scored " + r.getPrimaryResult().getScore());
        }
    }

    @Test
    void tapIoUringBenchmarksRunEveryVariant() throws Exception {
        HostRequirements.requireRoot("a tap and a packet socket");
        HostRequirements.requireFile("/dev/net/tun", "modprobe tun");
        String reason = IoUring.unavailableReason();
        HostRequirements.require(reason == null, "io_uring (" + reason + ")");
        // one parameter set keeps this short; the variants are what must run
        Collection<RunResult> results = new Runner(brief("TapIoUring").param("batch", "8").param("frameSize", "64").build()).run();
        assertEquals(6, results.size(), "writev, io_uring, SQPOLL waiting and spinning; readv and io_uring readv");
        for (RunResult r : results) {
            assertTrue(r.getPrimaryResult().getScore() > 0, r.getParams().getBenchmark() + " scored " + r.getPrimaryResult().getScore());
        }
    }
}
