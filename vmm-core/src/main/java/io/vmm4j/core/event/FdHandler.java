package io.vmm4j.core.event;

/** Called on the event loop thread when a watched fd is ready. */
@FunctionalInterface
public interface FdHandler {
    /** @param readyEvents the epoll event bits (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, ...) */
    void onReady(int readyEvents);
}
