//! Route timeouts without a runtime timer per request.
//!
//! Every request of a route gets the same timeout, so on one thread the deadlines of
//! one timeout value arrive in increasing order: a queue per thread and value keeps
//! them, and one sleeping task per queue wakes the requests whose deadline passed. A
//! request registers with a clock reading and a push, and unregisters by dropping its
//! entry; the queue forgets finished entries as they reach its front (and compacts
//! itself when finished entries pile up behind a slow one). The task runs only while
//! the queue holds entries.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Instant;

/// The deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elapsed;

/// Runs `future` for at most `limit`.
pub(crate) fn within<F: Future>(limit: Duration, future: F) -> Within<F> {
    Within {
        future,
        deadline: Deadline::new(limit),
    }
}

pin_project! {
    /// The future of [`within`].
    pub(crate) struct Within<F> {
        #[pin]
        future: F,
        deadline: Deadline,
    }
}

impl<F: Future> Future for Within<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.future.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        this.deadline.poll_elapsed(cx).map(|()| Err(Elapsed))
    }
}

/// One registered deadline.
enum Deadline {
    Queued(Arc<Entry>),
    /// No runtime to drive a queue: a plain timer.
    Timer(Pin<Box<tokio::time::Sleep>>),
}

impl Deadline {
    fn new(limit: Duration) -> Self {
        let at = Instant::now() + limit;
        let entry = Arc::new(Entry {
            at,
            fired: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        if queue_for(limit).push(&entry) {
            Deadline::Queued(entry)
        } else {
            Deadline::Timer(Box::pin(tokio::time::sleep_until(at)))
        }
    }

    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            Deadline::Queued(entry) => {
                if entry.fired.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
                {
                    let mut waker = lock(&entry.waker);
                    if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        *waker = Some(cx.waker().clone());
                    }
                }
                // Fired while the waker was being stored.
                if entry.fired.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
                Poll::Pending
            }
            Deadline::Timer(sleep) => sleep.as_mut().poll(cx),
        }
    }
}

struct Entry {
    at: Instant,
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Entry {
    fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        if let Some(waker) = lock(&self.waker).take() {
            waker.wake();
        }
    }
}

/// The deadlines of one timeout value on one thread, earliest first.
struct Queue {
    state: Mutex<State>,
}

struct State {
    entries: VecDeque<Weak<Entry>>,
    /// A task is waking the entries (cleared when it finds the queue empty, or when it
    /// is dropped early).
    driven: bool,
    /// Length at which finished entries are swept out of the middle.
    compact_at: usize,
}

const COMPACT_MIN: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    static QUEUES: RefCell<Vec<(Duration, Arc<Queue>)>> = const { RefCell::new(Vec::new()) };
}

fn queue_for(limit: Duration) -> Arc<Queue> {
    let make = || {
        Arc::new(Queue {
            state: Mutex::new(State {
                entries: VecDeque::new(),
                driven: false,
                compact_at: COMPACT_MIN,
            }),
        })
    };
    QUEUES
        .try_with(|queues| {
            let Ok(mut queues) = queues.try_borrow_mut() else {
                return make();
            };
            if let Some((_, q)) = queues.iter().find(|(d, _)| *d == limit) {
                return q.clone();
            }
            let q = make();
            queues.push((limit, q.clone()));
            q
        })
        .unwrap_or_else(|_| make())
}

impl Queue {
    /// Queues `entry`; false when there is no runtime to drive the queue.
    fn push(self: &Arc<Self>, entry: &Arc<Entry>) -> bool {
        let mut state = lock(&self.state);
        while state.entries.front().is_some_and(|w| w.strong_count() == 0) {
            state.entries.pop_front();
        }
        state.entries.push_back(Arc::downgrade(entry));
        if state.entries.len() >= state.compact_at {
            state.entries.retain(|w| w.strong_count() > 0);
            state.compact_at = (state.entries.len() * 2).max(COMPACT_MIN);
        }
        let start = !std::mem::replace(&mut state.driven, true);
        drop(state);
        if !start {
            return true;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            lock(&self.state).driven = false;
            return false;
        };
        // Outside the lock: a runtime that is shutting down drops the task at once.
        handle.spawn(
            Driver {
                queue: self.clone(),
                owns: true,
            }
            .run(),
        );
        true
    }

    /// Wakes what is due; returns the next deadline, or `None` once empty.
    fn expire(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut state = lock(&self.state);
        while let Some(front) = state.entries.front() {
            match front.upgrade() {
                Some(entry) if entry.at > now => return Some(entry.at),
                Some(entry) => {
                    state.entries.pop_front();
                    entry.fire();
                }
                None => {
                    state.entries.pop_front();
                }
            }
        }
        state.driven = false;
        None
    }
}

/// The task of a queue. Dropped before the queue emptied (its runtime shut down), it
/// lets the next push start another.
struct Driver {
    queue: Arc<Queue>,
    /// Still responsible for `driven`.
    owns: bool,
}

impl Driver {
    async fn run(mut self) {
        while let Some(at) = self.queue.expire() {
            tokio::time::sleep_until(at).await;
        }
        // `expire` cleared `driven` itself, under the lock.
        self.owns = false;
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.owns {
            lock(&self.queue.state).driven = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_deadline_and_not_before() {
        let started = Instant::now();
        let r = within(Duration::from_secs(2), std::future::pending::<()>()).await;
        assert_eq!(r, Err(Elapsed));
        assert_eq!(started.elapsed().as_secs(), 2);
        let r = within(Duration::from_secs(2), async { 7 }).await;
        assert_eq!(r, Ok(7));
    }

    #[tokio::test(start_paused = true)]
    async fn many_finished_entries_do_not_stop_a_later_one() {
        for _ in 0..(COMPACT_MIN * 3) {
            assert_eq!(within(Duration::from_secs(5), async {}).await, Ok(()));
        }
        let slow = tokio::spawn(within(
            Duration::from_secs(5),
            tokio::time::sleep(Duration::from_secs(60)),
        ));
        for _ in 0..(COMPACT_MIN * 3) {
            assert_eq!(within(Duration::from_secs(5), async {}).await, Ok(()));
        }
        assert_eq!(slow.await.unwrap(), Err(Elapsed));
        let q = queue_for(Duration::from_secs(5));
        assert!(lock(&q.state).entries.len() < COMPACT_MIN * 2);
    }
}
