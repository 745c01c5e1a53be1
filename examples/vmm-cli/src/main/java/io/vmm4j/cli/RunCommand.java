package io.vmm4j.cli;

import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

@Command(name = "run", mixinStandardHelpOptions = true,
        description = "Boot the toy VMM. The virtio-net device and its backends are not built yet, so for now this prints what the host offers (./vmm doctor).")
public final class RunCommand implements Callable<Integer> {
    @Override
    public Integer call() throws Exception {
        System.out.println("vmm4j: the virtio-net device and the toy VMM are not built yet; this host offers:\n");
        return new DoctorCommand().call();
    }
}
