package io.vmm4j.cli.vm;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The vhost-user command lines without root: the in-memory port, the errors a user meets first, and the daemon's help. */
class VhostUserCommandLineTest {
    private Path dir;

    @BeforeEach
    void tempDir() throws IOException {
        dir = Files.createTempDirectory("vu-cli");
    }

    @AfterEach
    void cleanUp() throws IOException {
        try (var files = Files.list(dir)) {
            for (Path p : files.toList()) {
                Files.deleteIfExists(p);
            }
        }
        Files.deleteIfExists(dir);
    }

    @Test
    void withNoDaemonTheVmmSaysInOneLineWhichSocketAndHowToStartIt() throws Exception {
        Path socket = dir.resolve("absent.sock");
        try (VmmProcess vmm = VmmProcess.start(List.of(), "run", "--backend", "vhost-user", "--socket", socket.toString())) {
            assertEquals(1, vmm.waitFor(30), vmm.describe());
            List<String> lines = vmm.stderr().lines().toList();
            assertEquals(1, lines.size(), "one line: " + vmm.describe());
            assertTrue(lines.getFirst().contains("no vhost-user back-end at " + socket + ": the socket does not exist"), lines.getFirst());
            assertTrue(lines.getFirst().contains("./vmm vhost-user-backend --socket " + socket), lines.getFirst());
        }
    }

    @Test
    void aStaleSocketFileIsNamedAsSuch() throws Exception {
        Path socket = dir.resolve("stale.sock");
        // a daemon that died leaves its socket file behind: Java's UNIX channel does not unlink on close either
        try (ServerSocketChannel dead = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            dead.bind(UnixDomainSocketAddress.of(socket));
        }
        try (VmmProcess vmm = VmmProcess.start(List.of(), "run", "--backend", "vhost-user", "--socket", socket.toString())) {
            assertEquals(1, vmm.waitFor(30), vmm.describe());
            assertTrue(vmm.stderr().contains("no vhost-user back-end at " + socket + ": nobody is listening on it (a stale socket file)"),
                    vmm.describe());
        }
    }

    @Test
    void theDaemonHelpSaysHowToRunItAndPairItWithAVmm() throws Exception {
        try (VmmProcess help = VmmProcess.start(List.of(), "vhost-user-backend", "--help")) {
            assertEquals(0, help.waitFor(30), help.describe());
            String out = help.stdout();
            for (String s : List.of("--socket", "--tap", "--port", "--queues", "--stats-json", "./vmm run --backend vhost-user",
                    "-netdev vhost-user", "share=on")) {
                assertTrue(out.contains(s), "help mentions " + s + ":\n" + out);
            }
        }
    }

    @Test
    void theInMemoryDaemonAnswersAVmmWithoutRootAndServesTheNextOne() throws Exception {
        Path socket = dir.resolve("vu.sock");
        try (VmmProcess daemon = VmmProcess.start(List.of(), "vhost-user-backend", "--socket", socket.toString(), "--port", "memory")) {
            daemon.awaitOutput("listening on " + socket, 30);
            for (int run = 1; run <= 2; run++) {
                try (VmmProcess vmm = VmmProcess.start(List.of(), "run", "--backend", "vhost-user", "--socket", socket.toString(),
                        "--count", "3", "--json")) {
                    assertEquals(0, vmm.waitFor(60), vmm.describe());
                    JsonNode j = vmm.json();
                    assertEquals(3, j.get("ping").get("received").asInt(), vmm.describe());
                    assertTrue(!j.get("features").toString().contains("CSUM"), "an in-memory port offers no offloads: " + j);
                }
                daemon.awaitOutput("front-end " + run + " disconnected", 10);
            }
            assertTrue(daemon.stdout().contains("queue tx0: packets"), daemon.describe());
        }
    }
}
