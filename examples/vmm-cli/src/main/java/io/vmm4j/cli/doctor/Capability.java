package io.vmm4j.cli.doctor;

/**
 * One thing the host may or may not offer.
 *
 * @param name      what it is, e.g. {@code /dev/kvm}
 * @param available whether this host has it, usable by this process
 * @param detail    what was found (a version, or why it is missing)
 * @param enables   what vmm4j can do with it
 * @param howToGet  what to do when it is missing
 */
public record Capability(String name, boolean available, String detail, String enables, String howToGet) {
}
