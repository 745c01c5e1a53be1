package io.vmm4j.cli.vm;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A value of a {@code ./vmm run} option that is one of a fixed set, spelled the same on the command
 * line, in the VM config file and in the JSON summary: the constant's name in lower case with
 * '-' for '_' ({@code EMULATED_SYNC} is {@code emulated-sync}).
 */
public interface OptionValue {
    /** The constant's name (an enum's own {@code name()}). */
    String name();

    /** How the value is spelled: {@code emulated-sync}, {@code memory}, {@code kvm}. */
    default String label() {
        return name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    /** Every spelling of {@code type}'s values, in declaration order. */
    static <E extends Enum<E> & OptionValue> List<String> labels(Class<E> type) {
        List<String> labels = new ArrayList<>();
        for (E e : type.getEnumConstants()) {
            labels.add(e.label());
        }
        return List.copyOf(labels);
    }

    /** The value spelled {@code label}; a spelling that is none of them is refused with the allowed ones. */
    static <E extends Enum<E> & OptionValue> E of(Class<E> type, String label) {
        for (E e : type.getEnumConstants()) {
            if (e.label().equals(label)) {
                return e;
            }
        }
        throw new IllegalArgumentException("'" + label + "' is not allowed; allowed: " + String.join(", ", labels(type)));
    }
}
