package io.vmm4j.cli.qmp;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;

/**
 * The client side of a QMP session, whatever carries it: replies and asynchronous events arrive
 * interleaved on one stream, so events met while waiting for a reply are kept for later.
 */
public abstract class QmpConversation implements AutoCloseable {
    private final List<JsonNode> events = new ArrayList<>();

    /** Ends the session. */
    @Override
    public abstract void close() throws java.io.IOException;

    /** Sends one JSON command line. */
    public abstract void send(String json) throws Exception;

    /** The next message from the server, event or not. */
    public abstract JsonNode next() throws Exception;

    /** The next reply (return or error); events seen on the way are kept for {@link #awaitEvent}. */
    public JsonNode reply() throws Exception {
        while (true) {
            JsonNode m = next();
            if (!m.has("event")) {
                return m;
            }
            events.add(m);
        }
    }

    /** Sends {@code json} and returns the reply. */
    public JsonNode execute(String json) throws Exception {
        send(json);
        return reply();
    }

    /** Waits for event {@code name}, among those already met or still to come. */
    public JsonNode awaitEvent(String name) throws Exception {
        for (JsonNode e : events) {
            if (e.get("event").asText().equals(name)) {
                events.remove(e);
                return e;
            }
        }
        while (true) {
            JsonNode m = next();
            if (m.has("event") && m.get("event").asText().equals(name)) {
                return m;
            }
            if (m.has("event")) {
                events.add(m);
            }
        }
    }

    /** Events received and not yet awaited. */
    public List<JsonNode> events() {
        return events;
    }
}
