//! A node's byte work on the runtime's I/O worker, tied to the main-thread task
//! that holds its handle: dropping the handle (the node stopped, was freed, or
//! its task was cancelled) aborts the work and waits until the worker has
//! dropped it, so its sockets are closed and its ports free when the drop
//! returns, as they were when the work ran on the main thread.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Condvar, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use tokio::{runtime::Handle, task::JoinHandle};

/// How long dropping a handle waits for the worker to drop the work. The
/// worker runs short polls, so this is only reached when it is stuck (then
/// the work is dropped later, and nothing of it can reach the engine).
const DROP_WAIT: Duration = Duration::from_millis(500);

/// Set when the work's future has been dropped (finished, aborted, or never run).
#[derive(Debug, Default)]
struct Dropped {
    done: Mutex<bool>,
    signal: Condvar,
}

/// Lives inside the work's future, so it drops with it in every case.
struct DropSignal(Arc<Dropped>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let mut done = self.0.done.lock().unwrap_or_else(|p| p.into_inner());
        *done = true;
        self.0.signal.notify_all();
    }
}

/// The handle of work spawned with [`IoTask::spawn`]; await it for the work's
/// output. Dropping it cancels the work and waits until it is gone.
#[derive(Debug)]
pub struct IoTask<T> {
    join: JoinHandle<T>,
    dropped: Arc<Dropped>,
}

/// How I/O work ended without an output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoEnd {
    /// It panicked; the panic's message.
    Panicked(String),
    /// The runtime shut down first.
    Cancelled,
}

impl<T: Send + 'static> IoTask<T> {
    /// Starts `work` on the runtime behind `handle` (the reactor's I/O worker).
    pub fn spawn(handle: &Handle, work: impl Future<Output = T> + Send + 'static) -> Self {
        let dropped = Arc::new(Dropped::default());
        let signal = DropSignal(dropped.clone());
        let join = handle.spawn(async move {
            let _signal = signal;
            work.await
        });
        IoTask { join, dropped }
    }
}

impl<T> IoTask<T> {
    /// Whether the work has ended.
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }
}

impl<T> Future for IoTask<T> {
    type Output = Result<T, IoEnd>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.join).poll(cx).map(|result| {
            result.map_err(|e| match e.try_into_panic() {
                Ok(payload) => IoEnd::Panicked(super::panic_message(&*payload)),
                Err(_) => IoEnd::Cancelled,
            })
        })
    }
}

impl<T> Drop for IoTask<T> {
    fn drop(&mut self) {
        self.join.abort();
        let done = self.dropped.done.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self.dropped.signal.wait_timeout_while(done, DROP_WAIT, |done| !*done);
    }
}
