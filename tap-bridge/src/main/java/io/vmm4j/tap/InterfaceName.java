package io.vmm4j.tap;

import java.nio.charset.StandardCharsets;

/** The kernel's rules for network interface names (net/core/dev.c dev_valid_name). */
final class InterfaceName {
    private InterfaceName() {
    }

    /** Returns {@code name} if the kernel would accept it, else throws saying why; {@code what} is e.g. "tap". */
    static String requireValid(String name, String what) {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException(what + " name is empty: give a name of 1 to "
                    + (TunIoctls.IFNAMSIZ - 1) + " characters");
        }
        int bytes = name.getBytes(StandardCharsets.UTF_8).length;
        // if.h: IFNAMSIZ counts the terminating NUL
        if (bytes >= TunIoctls.IFNAMSIZ) {
            throw new IllegalArgumentException(what + " name '" + name + "' is " + bytes + " bytes; Linux allows at most "
                    + (TunIoctls.IFNAMSIZ - 1) + ": use a shorter name");
        }
        if (name.equals(".") || name.equals("..")) {
            throw new IllegalArgumentException(what + " name '" + name + "' is reserved: choose another name");
        }
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            // dev.c dev_valid_name: no '/', ':' or whitespace
            if (c == '/' || c == ':' || Character.isWhitespace(c) || c == 0) {
                throw new IllegalArgumentException(what + " name '" + name + "' contains '" + c
                        + "', which Linux forbids in interface names ('/', ':', whitespace): choose another name");
            }
        }
        return name;
    }
}
