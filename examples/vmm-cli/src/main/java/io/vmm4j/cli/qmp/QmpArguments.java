package io.vmm4j.cli.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * A command's {@code arguments}, checked against its parameters the way QEMU's QAPI visitor does:
 * an unknown key, a missing required one or a wrong JSON type is a GenericError naming the
 * parameter, raised before the command runs.
 */
public final class QmpArguments {
    private final ObjectNode values;

    private QmpArguments(ObjectNode values) {
        this.values = values;
    }

    /** No arguments at all. */
    public static QmpArguments none() {
        return new QmpArguments(JsonNodeFactory.instance.objectNode());
    }

    /** Checks {@code arguments} (null: none given) against {@code command}'s parameters. */
    public static QmpArguments check(QmpCommand command, ObjectNode arguments) {
        ObjectNode args = arguments == null ? JsonNodeFactory.instance.objectNode() : arguments;
        Iterator<Map.Entry<String, JsonNode>> it = args.properties().iterator();
        while (it.hasNext()) {
            Map.Entry<String, JsonNode> e = it.next();
            QmpCommand.Parameter p = find(command, e.getKey());
            if (p == null) {
                throw QmpException.generic("Parameter '" + e.getKey() + "' is unexpected" + expectedList(command));
            }
            if (!p.type().accepts(e.getValue())) {
                throw QmpException.generic("Invalid parameter type for '" + p.name() + "', expected: " + p.type().description());
            }
        }
        for (QmpCommand.Parameter p : command.parameters()) {
            if (p.required() && !args.has(p.name())) {
                throw QmpException.generic("Parameter '" + p.name() + "' is missing");
            }
        }
        return new QmpArguments(args);
    }

    private static QmpCommand.Parameter find(QmpCommand command, String name) {
        for (QmpCommand.Parameter p : command.parameters()) {
            if (p.name().equals(name)) {
                return p;
            }
        }
        return null;
    }

    private static String expectedList(QmpCommand command) {
        if (command.parameters().isEmpty()) {
            return " (" + command.name() + " takes no arguments)";
        }
        return " (" + command.name() + " takes " + command.parameters().stream().map(QmpCommand.Parameter::name).toList() + ")";
    }

    public boolean has(String name) {
        return values.has(name);
    }

    public String string(String name) {
        return values.get(name).asText();
    }

    public String string(String name, String fallback) {
        return values.has(name) ? values.get(name).asText() : fallback;
    }

    public boolean bool(String name) {
        return values.get(name).asBoolean();
    }

    public long integer(String name) {
        return values.get(name).asLong();
    }

    public List<String> strings(String name) {
        List<String> out = new ArrayList<>();
        if (values.has(name)) {
            values.get(name).forEach(v -> out.add(v.asText()));
        }
        return out;
    }
}
