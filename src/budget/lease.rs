//! The asking side of a budget, shared by the in-process driver and the
//! supervisor's service: each request asks for a grant and waits for it
//! (no polling), then holds a [`Lease`] until it ends; the lease's release
//! carries what the site answered. A request given up while waiting
//! (its future dropped) withdraws its ask; a lease dropped without
//! [`Lease::finish`] is released without feedback. Nothing leaks a slot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::{BudgetError, Feedback};
use crate::protocol::{BudgetSync, BudgetTicket};

/// Where asks and releases go (the budget's owner).
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Ask for a grant of request `id` on `host`.
    fn acquire(&self, host: &str, id: u64, priority: i32) -> Result<(), BudgetError>;
    /// Request `id` ended (`feedback`) or was given up (`None`).
    fn release(&self, host: &str, id: u64, feedback: Option<Feedback>);
    /// Everything waiting and held, re-sent after the owner lost track.
    fn sync(&self, state: BudgetSync);
}

#[derive(Debug)]
struct Waiting {
    host: String,
    priority: i32,
    granted: oneshot::Sender<()>,
}

#[derive(Debug, Default)]
struct Book {
    waiting: HashMap<u64, Waiting>,
    held: HashMap<u64, (String, i32)>,
}

/// One process's asking side. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Requester {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Box<dyn Backend>,
    next_id: AtomicU64,
    book: Mutex<Book>,
}

impl Requester {
    /// A requester over a backend.
    pub fn new(backend: Box<dyn Backend>) -> Requester {
        Requester {
            inner: Arc::new(Inner {
                backend,
                next_id: AtomicU64::new(1),
                book: Mutex::new(Book::default()),
            }),
        }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.inner.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait for a grant to send one request to `host`.
    pub async fn acquire(&self, host: &str, priority: i32) -> Result<Lease, BudgetError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.book().waiting.insert(
            id,
            Waiting {
                host: host.to_string(),
                priority,
                granted: tx,
            },
        );
        let mut guard = Withdraw {
            requester: self,
            host,
            id,
            armed: true,
        };
        if let Err(e) = self.inner.backend.acquire(host, id, priority) {
            self.book().waiting.remove(&id);
            guard.armed = false;
            return Err(e);
        }
        let granted = rx.await;
        guard.armed = false;
        match granted {
            Ok(()) => Ok(Lease {
                requester: self.clone(),
                host: host.to_string(),
                id,
                done: false,
            }),
            // The sender went away without a grant: the owner is gone.
            Err(_) => {
                self.book().waiting.remove(&id);
                Err(BudgetError::Gone("no grant will come".into()))
            }
        }
    }

    /// The owner granted these requests on `host`.
    pub fn granted(&self, host: &str, ids: &[u64]) {
        let mut late = Vec::new();
        {
            let mut book = self.book();
            for id in ids {
                match book.waiting.remove(id) {
                    Some(w) if w.host == host => {
                        book.held.insert(*id, (w.host, w.priority));
                        if w.granted.send(()).is_err() {
                            // Given up at the very moment it was granted.
                            book.held.remove(id);
                            late.push(*id);
                        }
                    }
                    Some(w) => {
                        book.waiting.insert(*id, w);
                    }
                    // Withdrawn already: its release was sent, and the
                    // owner frees the slot when it reads it.
                    None => {}
                }
            }
        }
        for id in late {
            self.inner.backend.release(host, id, None);
        }
    }

    /// Send everything waiting and held again.
    pub fn resync(&self) {
        let state = {
            let book = self.book();
            BudgetSync {
                waiting: book
                    .waiting
                    .iter()
                    .map(|(id, w)| BudgetTicket {
                        host: w.host.clone(),
                        id: *id,
                        priority: w.priority,
                    })
                    .collect(),
                held: book
                    .held
                    .iter()
                    .map(|(id, (host, priority))| BudgetTicket {
                        host: host.clone(),
                        id: *id,
                        priority: *priority,
                    })
                    .collect(),
            }
        };
        self.inner.backend.sync(state);
    }

    /// Requests waiting and held now.
    pub fn counts(&self) -> (usize, usize) {
        let book = self.book();
        (book.waiting.len(), book.held.len())
    }

    fn release(&self, host: &str, id: u64, feedback: Option<Feedback>) {
        let was_known = {
            let mut book = self.book();
            book.held.remove(&id).is_some() || book.waiting.remove(&id).is_some()
        };
        if was_known {
            self.inner.backend.release(host, id, feedback);
        }
    }
}

/// Withdraws an ask whose future is dropped before the grant.
struct Withdraw<'a> {
    requester: &'a Requester,
    host: &'a str,
    id: u64,
    armed: bool,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.requester.release(self.host, self.id, None);
        }
    }
}

/// The right to have one request in flight; release it with
/// [`finish`](Lease::finish) (or by dropping it, without feedback).
#[derive(Debug)]
pub struct Lease {
    requester: Requester,
    host: String,
    id: u64,
    done: bool,
}

impl Lease {
    /// The request ended: free the slot and tell the budget how.
    pub fn finish(mut self, feedback: Feedback) {
        self.done = true;
        self.requester.release(&self.host, self.id, Some(feedback));
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.done {
            self.requester.release(&self.host, self.id, None);
        }
    }
}
