//! Tests of the stepped runtime with real timers and loopback sockets.

use std::{
    cell::{Cell, RefCell},
    io::{Read, Write},
    rc::Rc,
    time::{Duration, Instant},
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

const BUDGET: Duration = Duration::from_millis(2);

type Ends = Rc<RefCell<Vec<TaskEnd>>>;

/// A list of task ends, and a maker of end hooks that append to it.
fn recorder() -> (Ends, impl Fn() -> Box<dyn FnOnce(TaskEnd)>) {
    let ends = Rc::new(RefCell::new(Vec::new()));
    let ends2 = ends.clone();
    let make = move || {
        let ends = ends2.clone();
        Box::new(move |end| ends.borrow_mut().push(end)) as Box<dyn FnOnce(TaskEnd)>
    };
    (ends, make)
}

/// Steps until `done` or a generous wall-clock limit (a safety net, not a bound).
fn step_until(reactor: &Reactor, done: impl Fn() -> bool) {
    let limit = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < limit, "condition not reached");
        reactor.step(BUDGET);
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_task_runs_at_the_next_step_and_reports_completion() {
    let reactor = Reactor::new().unwrap();
    let (ends, hook) = recorder();
    let id = reactor.spawn("t", 7, async { Ok(()) }, hook());
    assert!(reactor.is_alive(id));
    assert_eq!(reactor.task_count(), 1);
    reactor.step(BUDGET);
    assert!(!reactor.is_alive(id));
    assert_eq!(*ends.borrow(), vec![TaskEnd::Completed]);
}

#[test]
fn sleep_never_completes_early() {
    let reactor = Reactor::new().unwrap();
    let done = Rc::new(Cell::new(None));
    let done2 = done.clone();
    let start = Instant::now();
    reactor.spawn(
        "sleep",
        HUB_OWNER,
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            done2.set(Some(Instant::now()));
            Ok(())
        },
        |_| {},
    );
    step_until(&reactor, || done.get().is_some());
    assert!(done.get().unwrap() - start >= Duration::from_millis(50));
}

#[test]
fn cancel_drops_the_future_at_once() {
    struct DropFlag(Rc<Cell<bool>>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let reactor = Reactor::new().unwrap();
    let dropped = Rc::new(Cell::new(false));
    let flag = DropFlag(dropped.clone());
    let (ends, hook) = recorder();
    let id = reactor.spawn(
        "forever",
        HUB_OWNER,
        async move {
            let _flag = flag;
            std::future::pending::<()>().await;
            Ok(())
        },
        hook(),
    );
    reactor.step(BUDGET);
    assert!(!dropped.get());
    assert!(reactor.cancel(id));
    assert!(dropped.get(), "future must be dropped synchronously");
    assert_eq!(*ends.borrow(), vec![TaskEnd::Cancelled]);
    assert!(!reactor.cancel(id), "second cancel finds nothing");
    reactor.step(BUDGET);
    assert_eq!(reactor.task_count(), 0);
}

#[test]
fn a_task_can_cancel_itself_from_inside_its_poll() {
    let reactor = Rc::new(Reactor::new().unwrap());
    let my_id = Rc::new(Cell::new(0));
    let after_cancel_ran = Rc::new(Cell::new(false));
    let (ends, hook) = recorder();
    let (r, id_cell, after) = (Rc::downgrade(&reactor), my_id.clone(), after_cancel_ran.clone());
    let id = reactor.spawn(
        "self-cancel",
        HUB_OWNER,
        async move {
            let reactor = r.upgrade().unwrap();
            assert!(reactor.cancel(id_cell.get()));
            drop(reactor);
            tokio::task::yield_now().await;
            after.set(true);
            Ok(())
        },
        hook(),
    );
    my_id.set(id);
    reactor.step(BUDGET);
    reactor.step(BUDGET);
    assert!(!after_cancel_ran.get(), "no poll after cancel");
    assert_eq!(*ends.borrow(), vec![TaskEnd::Cancelled]);
    assert_eq!(reactor.task_count(), 0);
}

#[test]
fn errors_and_panics_are_reported_not_lost() {
    let reactor = Reactor::new().unwrap();
    let failures = Rc::new(RefCell::new(Vec::new()));
    let f2 = failures.clone();
    reactor.set_failure_hook(move |f| f2.borrow_mut().push(f.clone()));
    let (ends, hook) = recorder();
    reactor.spawn("errs", 3, async { Err("nope".to_string()) }, hook());
    reactor.spawn(
        "panics",
        4,
        async {
            panic!("boom");
        },
        hook(),
    );
    reactor.step(BUDGET);
    let failures = failures.borrow();
    assert_eq!(failures.len(), 2);
    assert_eq!((failures[0].name.as_str(), failures[0].owner), ("errs", 3));
    assert_eq!(failures[0].message, "nope");
    assert_eq!((failures[1].name.as_str(), failures[1].owner), ("panics", 4));
    assert_eq!(failures[1].message, "panicked: boom");
    assert_eq!(*ends.borrow(), vec![TaskEnd::Failed("nope".into()), TaskEnd::Failed("panicked: boom".into())]);
    // The reactor carries on.
    let (ends2, hook2) = recorder();
    reactor.spawn("after", 0, async { Ok(()) }, hook2());
    reactor.step(BUDGET);
    assert_eq!(*ends2.borrow(), vec![TaskEnd::Completed]);
}

#[test]
fn an_idle_step_does_not_enter_tokio() {
    let reactor = Reactor::new().unwrap();
    reactor.spawn("pending", 0, std::future::pending(), |_| {});
    assert_eq!(reactor.step(BUDGET).polls, 1);
    let report = reactor.step(Duration::from_secs(5));
    assert_eq!((report.rounds, report.polls, report.budget_exhausted), (0, 0, false));
}

#[test]
fn a_timer_wakes_the_next_step() {
    let reactor = Reactor::new().unwrap();
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    reactor.spawn(
        "timer",
        0,
        async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            f.set(true);
            Ok(())
        },
        |_| {},
    );
    reactor.step(BUDGET);
    assert_eq!(reactor.step(BUDGET).rounds, 0, "nothing is due yet");
    std::thread::sleep(Duration::from_millis(30));
    let report = reactor.step(BUDGET);
    assert!(fired.get());
    assert!(report.rounds >= 1);
}

#[test]
fn a_busy_step_stops_when_the_budget_is_spent() {
    let reactor = Reactor::new().unwrap();
    reactor.spawn(
        "spinner",
        0,
        async {
            loop {
                tokio::task::yield_now().await;
            }
        },
        |_| {},
    );
    let report = reactor.step(Duration::from_millis(3));
    assert!(report.budget_exhausted);
    assert!(report.rounds > 2);
}

#[test]
fn main_thread_tasks_may_use_sockets_the_worker_drives() {
    let reactor = Reactor::new().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Rc::new(RefCell::new(Vec::new()));
    let r2 = received.clone();
    reactor.spawn(
        "echo-once",
        0,
        async move {
            let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
            let (mut stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
            let mut buf = [0u8; 5];
            stream.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            r2.borrow_mut().extend_from_slice(&buf);
            stream.write_all(b"world").await.map_err(|e| e.to_string())?;
            Ok(())
        },
        |_| {},
    );
    reactor.step(BUDGET); // registers the listener
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client.write_all(b"hello").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    // The worker saw the socket ready and woke the task: accept, read and reply.
    step_until(&reactor, || received.borrow().len() == 5);
    assert_eq!(&*received.borrow(), b"hello");
    let mut reply = [0u8; 5];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"world");
}

#[test]
fn cancelling_a_listener_releases_its_port_at_once() {
    let reactor = Reactor::new().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let id = reactor.spawn(
        "listen",
        9,
        async move {
            let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
            loop {
                let _ = listener.accept().await;
            }
        },
        |_| {},
    );
    reactor.step(BUDGET);
    assert!(std::net::TcpListener::bind(addr).is_err(), "port is held");
    assert_eq!(reactor.cancel_owner(9), 1);
    assert!(!reactor.is_alive(id));
    std::net::TcpListener::bind(addr).expect("port released without another step");
}

#[test]
fn cancel_all_and_cancel_owner_count_what_they_cancel() {
    let reactor = Reactor::new().unwrap();
    let (ends, hook) = recorder();
    for owner in [1, 1, 2, 3] {
        reactor.spawn("p", owner, std::future::pending(), hook());
    }
    assert_eq!(reactor.owner_task_count(1), 2);
    assert_eq!(reactor.cancel_owner(1), 2);
    assert_eq!(reactor.cancel_owner(1), 0);
    assert_eq!(reactor.cancel_all(), 2);
    assert_eq!(reactor.task_count(), 0);
    assert_eq!(ends.borrow().len(), 4);
}

#[test]
fn end_hooks_may_spawn_and_cancel_reentrantly() {
    let reactor = Rc::new(Reactor::new().unwrap());
    let spawned_from_hook = Rc::new(Cell::new(false));
    let (weak, flag) = (Rc::downgrade(&reactor), spawned_from_hook.clone());
    reactor.spawn("a", 1, std::future::pending(), move |_| {
        let reactor = weak.upgrade().unwrap();
        reactor.cancel_all();
        reactor.spawn("b", 1, async { Ok(()) }, move |_| flag.set(true));
    });
    reactor.spawn("c", 1, std::future::pending(), |_| {});
    assert_eq!(reactor.cancel_owner(1), 2);
    reactor.step(BUDGET);
    assert!(spawned_from_hook.get());
}

#[test]
fn a_nested_step_is_refused() {
    let reactor = Rc::new(Reactor::new().unwrap());
    let nested = Rc::new(Cell::new(None));
    let (weak, n2) = (Rc::downgrade(&reactor), nested.clone());
    reactor.spawn(
        "nest",
        0,
        async move {
            n2.set(Some(weak.upgrade().unwrap().step(BUDGET)));
            Ok(())
        },
        |_| {},
    );
    assert!(!reactor.step(BUDGET).skipped);
    assert!(nested.take().unwrap().skipped);
    assert!(!reactor.is_stepping());
}

#[test]
fn tasks_lists_live_tasks_oldest_first() {
    let reactor = Reactor::new().unwrap();
    let a = reactor.spawn("first", 1, std::future::pending(), |_| {});
    let b = reactor.spawn("second", 2, std::future::pending(), |_| {});
    let list = reactor.tasks();
    assert_eq!(list.iter().map(|t| t.id).collect::<Vec<_>>(), vec![a, b]);
    assert_eq!(list[1].name, "second");
    assert_eq!(list[1].owner, 2);
}

#[test]
fn shutdown_ends_tasks_silently_and_joins_blocking_threads() {
    let reactor = Reactor::new().unwrap();
    let hooked = Rc::new(Cell::new(false));
    let h = hooked.clone();
    reactor.spawn(
        "dns",
        0,
        async {
            let _ = tokio::net::lookup_host("localhost:80").await;
            std::future::pending::<()>().await;
            Ok(())
        },
        move |_| h.set(true),
    );
    reactor.step(BUDGET);
    reactor.shutdown(Duration::from_secs(2));
    assert!(!hooked.get());
}

#[test]
fn a_task_that_yields_when_over_budget_spreads_its_items_over_steps() {
    let reactor = Reactor::new().unwrap();
    let (_ends, hook) = recorder();
    let done = Rc::new(Cell::new(0u32));
    let work = |done: Rc<Cell<u32>>| async move {
        for _ in 0..100 {
            done.set(done.get() + 1);
            yield_if_over_budget().await;
        }
        Ok(())
    };
    assert!(!over_budget(), "no step, no budget to be over");
    reactor.spawn("items", 7, work(done.clone()), hook());
    // A spent budget: each step gets one item done, then the task yields and the step ends.
    for expected in 1..=3 {
        reactor.step(Duration::ZERO);
        assert_eq!(done.get(), expected);
    }
    assert!(!over_budget(), "the deadline ends with the step");
    // A budget that lasts: the rest in one step.
    reactor.step(Duration::from_secs(60));
    assert_eq!(done.get(), 100);
}

#[test]
fn a_step_reports_its_longest_poll_and_who_made_it() {
    let reactor = Reactor::new().unwrap();
    reactor.spawn("quick", 1, async { Ok(()) }, |_| {});
    let slow = reactor.spawn(
        "hog",
        7,
        async {
            std::thread::sleep(Duration::from_millis(20));
            Ok(())
        },
        |_| {},
    );
    let report = reactor.step(BUDGET);
    let slowest = report.slowest.expect("two tasks ran");
    assert_eq!((slowest.id, &*slowest.name, slowest.owner), (slow, "hog", 7));
    assert!(slowest.duration >= Duration::from_millis(20));
    assert!(report.busy >= slowest.duration && report.elapsed >= report.busy);
    assert_eq!(reactor.step(BUDGET).slowest, None, "nothing ran in the next step");

    // A window spans steps until it is ended; then the next one starts empty.
    assert_eq!(reactor.last_window_slowest(), None, "no window ended yet");
    reactor.end_window();
    assert_eq!(reactor.last_window_slowest().map(|s| s.id), Some(slow));
    reactor.end_window();
    assert_eq!(reactor.last_window_slowest(), None, "nothing ran in the second window");
}

#[test]
fn io_work_runs_on_the_worker_and_its_output_reaches_the_main_thread() {
    let reactor = Reactor::new().unwrap();
    let main = std::thread::current().id();
    let got = Rc::new(Cell::new(None));
    let g = got.clone();
    let io = reactor.spawn_io(async move { std::thread::current().id() });
    reactor.spawn(
        "await io",
        0,
        async move {
            g.set(Some(io.await.map_err(|e| format!("{e:?}"))?));
            Ok(())
        },
        |_| {},
    );
    step_until(&reactor, || got.get().is_some());
    assert_ne!(got.get().unwrap(), main);
}

#[test]
fn dropping_io_work_closes_its_listener_before_the_drop_returns() {
    let reactor = Reactor::new().unwrap();
    for _ in 0..20 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let io = reactor.spawn_io(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let _ = listener.accept().await;
            }
        });
        std::thread::sleep(Duration::from_millis(2));
        drop(io);
        std::net::TcpListener::bind(addr).expect("the port is free once the handle is dropped");
    }
}

#[test]
fn an_io_panic_is_reported_to_whoever_awaits_it() {
    let reactor = Reactor::new().unwrap();
    let got = Rc::new(RefCell::new(None));
    let g = got.clone();
    let io = reactor.spawn_io(async { panic!("boom") });
    reactor.spawn(
        "await io",
        0,
        async move {
            let end: Result<(), IoEnd> = io.await;
            *g.borrow_mut() = Some(end);
            Ok(())
        },
        |_| {},
    );
    step_until(&reactor, || got.borrow().is_some());
    assert_eq!(got.borrow_mut().take().unwrap(), Err(IoEnd::Panicked("boom".into())));
}
