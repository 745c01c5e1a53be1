package io.vmm4j.core.event;

import io.vmm4j.core.linux.LibC;
import org.junit.jupiter.api.Test;

import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class EventLoopTest {
    @Test
    void handlerRunsOnTheLoopThreadWhenTheFdIsSignalled() throws Exception {
        try (EventLoop loop = new EventLoop("test-loop"); EventFd kick = EventFd.create()) {
            BlockingQueue<String> seen = new ArrayBlockingQueue<>(4);
            loop.register(kick.fd(), LibC.EPOLLIN, ready -> {
                kick.drain();
                seen.add(Thread.currentThread().getName() + ":" + ((ready & LibC.EPOLLIN) != 0));
            });
            kick.signal();
            assertEquals("test-loop:true", seen.poll(10, TimeUnit.SECONDS));
        }
    }

    @Test
    void aFailingHandlerDoesNotStopTheLoop() throws Exception {
        try (EventLoop loop = new EventLoop("test-loop"); EventFd bad = EventFd.create(); EventFd good = EventFd.create()) {
            CountDownLatch goodRan = new CountDownLatch(1);
            loop.register(bad.fd(), LibC.EPOLLIN, ready -> {
                bad.drain();
                throw new IllegalStateException("handler bug");
            });
            loop.register(good.fd(), LibC.EPOLLIN, ready -> {
                good.drain();
                goodRan.countDown();
            });
            bad.signal();
            Thread.sleep(50);
            good.signal();
            assertTrue(goodRan.await(10, TimeUnit.SECONDS));
        }
    }

    @Test
    void closedRegistrationIsNoLongerDispatchedAndTasksRun() throws Exception {
        try (EventLoop loop = new EventLoop("test-loop"); EventFd kick = EventFd.create()) {
            AtomicInteger calls = new AtomicInteger();
            EventLoop.Registration r = loop.register(kick.fd(), LibC.EPOLLIN, ready -> {
                kick.drain();
                calls.incrementAndGet();
            });
            r.close();
            kick.signal();
            BlockingQueue<Boolean> ran = new ArrayBlockingQueue<>(1);
            // a task queued after the signal runs after any dispatch for it would have happened
            Thread.sleep(50);
            loop.execute(() -> ran.add(loop.inLoop()));
            assertEquals(Boolean.TRUE, ran.poll(10, TimeUnit.SECONDS));
            assertEquals(0, calls.get());
            assertEquals(1, kick.drain(), "the signal is still pending: nobody consumed it");
        }
    }

    @Test
    void manyRegistrationsGrowTheTable() throws Exception {
        try (EventLoop loop = new EventLoop("test-loop")) {
            EventFd[] fds = new EventFd[40];
            CountDownLatch all = new CountDownLatch(fds.length);
            for (int i = 0; i < fds.length; i++) {
                EventFd e = fds[i] = EventFd.create();
                loop.register(e.fd(), LibC.EPOLLIN, ready -> {
                    e.drain();
                    all.countDown();
                });
            }
            for (EventFd e : fds) {
                e.signal();
            }
            assertTrue(all.await(10, TimeUnit.SECONDS));
            for (EventFd e : fds) {
                e.close();
            }
        }
    }

    @Test
    void closeStopsTheThreadAndLaterTasksRunOnTheCaller() {
        EventLoop loop = new EventLoop("test-loop");
        assertTrue(loop.thread().isAlive());
        loop.close();
        assertTrue(!loop.thread().isAlive());
        AtomicInteger ran = new AtomicInteger();
        loop.executeAndWait(ran::incrementAndGet); // a closed loop cannot run it: the barrier runs it here
        assertEquals(1, ran.get());
    }
}
