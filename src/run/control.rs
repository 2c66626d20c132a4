//! What the operator can do to a run while it runs, from the live dashboard or any other front
//! end: let each step go (`--step-confirm`) and stop further escalation (the same as a first
//! Ctrl-C). The runner knows only this, never the dashboard.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// The operator's keys: let each step go (`--step-confirm`) and stop further escalation (the
/// same as a first Ctrl-C). Shared by the runner and the front end.
#[derive(Clone)]
pub struct Control {
    inner: Arc<Inner>,
}

struct Inner {
    step_confirm: bool,
    /// The step waiting for the operator's go, as the runner describes it.
    waiting: Mutex<Option<String>>,
    /// How many times the operator asked to stop.
    aborts: watch::Sender<u32>,
    /// Gives the terminal back before a hard exit (the dashboard's).
    restore: Mutex<Option<fn()>>,
    /// The dashboard ended before the run (its terminal is gone): no one is left to ask.
    abandoned: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("step_confirm", &self.inner.step_confirm)
            .field("waiting", &self.waiting())
            .field("aborts", &*self.inner.aborts.borrow())
            .finish()
    }
}

impl Control {
    pub fn new(step_confirm: bool) -> Control {
        Control {
            inner: Arc::new(Inner {
                step_confirm,
                waiting: Mutex::new(None),
                aborts: watch::Sender::new(0),
                restore: Mutex::new(None),
                abandoned: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// What gives the terminal back when the run exits at once (a second Ctrl-C).
    pub fn on_hard_exit(&self, restore: fn()) {
        if let Ok(mut r) = self.inner.restore.lock() {
            *r = Some(restore);
        }
    }

    /// Give the terminal back, if a front end holds it.
    pub fn restore(&self) {
        if let Some(restore) = self.inner.restore.lock().ok().and_then(|r| *r) {
            restore();
        }
    }

    /// Whether each step waits for the operator.
    pub fn step_confirm(&self) -> bool {
        self.inner.step_confirm
    }

    /// The runner: a step is ready and waits for the operator's go.
    pub fn ask(&self, what: String) {
        if let Ok(mut w) = self.inner.waiting.lock() {
            *w = Some(what);
        }
    }

    /// The step waiting for the operator's go, if any.
    pub fn waiting(&self) -> Option<String> {
        self.inner.waiting.lock().ok().and_then(|w| w.clone())
    }

    /// The operator: go on with the waiting step (or, from the runner, stop waiting).
    pub fn proceed(&self) {
        if let Ok(mut w) = self.inner.waiting.lock() {
            *w = None;
        }
    }

    /// The operator: stop escalating, as the first Ctrl-C does.
    pub fn abort(&self) {
        self.inner.aborts.send_modify(|n| *n += 1);
    }

    /// The dashboard ended before the run: stop escalating as the abort key does, but as the
    /// terminal going away, not as an operator's request (a hangup is one event, however many
    /// ways it is heard: it never makes a stop a hard one).
    pub fn abandon(&self) {
        use std::sync::atomic::Ordering;
        self.inner.abandoned.store(true, Ordering::SeqCst);
        self.abort();
    }

    /// Whether [`Control::abandon`] was called.
    pub fn abandoned(&self) -> bool {
        self.inner
            .abandoned
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many times the operator asked to stop.
    pub fn aborts(&self) -> u32 {
        *self.inner.aborts.borrow()
    }

    /// Wait until the operator has asked to stop more than `seen` times; returns the new count.
    /// Without a control (or once it is gone) this never returns.
    pub async fn next_abort(control: Option<&Control>, seen: u32) -> u32 {
        if let Some(c) = control {
            let mut rx = c.inner.aborts.subscribe();
            if let Ok(n) = rx.wait_for(|n| *n > seen).await {
                return *n;
            }
        }
        std::future::pending().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_abort_wakes_the_waiter_once_per_request() {
        let c = Control::new(true);
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { Control::next_abort(Some(&c), 0).await }
        });
        tokio::task::yield_now().await;
        c.abort();
        assert_eq!(waiter.await.unwrap(), 1);
        c.ask("storm-lab step 1/3".into());
        assert_eq!(c.waiting().as_deref(), Some("storm-lab step 1/3"));
        c.proceed();
        assert_eq!(c.waiting(), None);
        let none = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            Control::next_abort(None, 0),
        )
        .await;
        assert!(none.is_err(), "no control: never an abort");
    }
}
