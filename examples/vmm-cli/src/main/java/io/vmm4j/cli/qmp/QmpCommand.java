package io.vmm4j.cli.qmp;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.List;

/**
 * One command of the control socket: its name, the arguments it takes (checked before it runs,
 * so a bad call has no side effect) and what it does.
 */
public record QmpCommand(String name, List<Parameter> parameters, Handler handler) {
    /** The JSON type of an argument. */
    public enum Type {
        STRING("string"), BOOLEAN("boolean"), INTEGER("integer"), STRING_LIST("array of strings");

        private final String description;

        Type(String description) {
            this.description = description;
        }

        /** How QMP names the type in "Invalid parameter type for 'x', expected: ...". */
        public String description() {
            return description;
        }

        boolean accepts(JsonNode v) {
            return switch (this) {
                case STRING -> v.isTextual();
                case BOOLEAN -> v.isBoolean();
                case INTEGER -> v.isIntegralNumber();
                case STRING_LIST -> {
                    if (!v.isArray()) {
                        yield false;
                    }
                    for (JsonNode e : v) {
                        if (!e.isTextual()) {
                            yield false;
                        }
                    }
                    yield true;
                }
            };
        }
    }

    public record Parameter(String name, Type type, boolean required) {
        public static Parameter required(String name, Type type) {
            return new Parameter(name, type, true);
        }

        public static Parameter optional(String name, Type type) {
            return new Parameter(name, type, false);
        }
    }

    /** Runs the command; returns the {@code return} value (null for {@code {}}) or throws {@link QmpException}. */
    @FunctionalInterface
    public interface Handler {
        JsonNode execute(QmpArguments arguments);
    }

    public QmpCommand {
        parameters = List.copyOf(parameters);
    }

    /** A command without arguments. */
    public static QmpCommand of(String name, Handler handler) {
        return new QmpCommand(name, List.of(), handler);
    }

    public static QmpCommand of(String name, List<Parameter> parameters, Handler handler) {
        return new QmpCommand(name, parameters, handler);
    }
}
