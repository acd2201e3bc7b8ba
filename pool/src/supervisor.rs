//! The supervisor: one actor task per worker, a shared snapshot table, an
//! event broadcast. (Interface stub: the implementation fills this in.)

use std::time::Duration;

use tokio::sync::broadcast;

use crate::error::Error;
use crate::events::PoolEvent;
use crate::spec::WorkerSpec;
use crate::status::{StateName, WorkerStatus};

/// Pool-wide options.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// How often CPU and RSS of the workers are sampled.
    pub sample_interval: Duration,
    /// How many past exits are kept per worker.
    pub exit_history: usize,
    /// Capacity of the event broadcast (slow subscribers lag beyond it).
    pub event_capacity: usize,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            sample_interval: Duration::from_secs(1),
            exit_history: 10,
            event_capacity: 1024,
        }
    }
}

/// A running pool. Dropping it without [`Pool::shutdown`] still kills the
/// workers (PDEATHSIG), but does not wait for them.
pub struct Pool {
    handle: PoolHandle,
}

/// Cheap, cloneable access to a running pool.
#[derive(Clone)]
pub struct PoolHandle {
    _private: (),
}

impl Pool {
    /// Start every worker. Must be called inside a tokio runtime.
    pub fn start(specs: Vec<WorkerSpec>, options: PoolOptions) -> Result<Pool, Error> {
        let _ = (specs, options);
        todo!("pool supervisor")
    }

    /// A handle for status and control.
    pub fn handle(&self) -> PoolHandle {
        self.handle.clone()
    }

    /// Stop every worker in parallel (SIGTERM, `stop_grace`, SIGKILL) and wait.
    pub async fn shutdown(self) {
        self.handle.shutdown().await
    }
}

impl PoolHandle {
    /// Snapshot of every worker, in spec order.
    pub fn workers(&self) -> Vec<WorkerStatus> {
        todo!()
    }

    /// Snapshot of one worker.
    pub fn worker(&self, name: &str) -> Option<WorkerStatus> {
        let _ = name;
        todo!()
    }

    /// Start a stopped or fatal worker; returns the resulting state.
    pub async fn start(&self, name: &str) -> Result<StateName, Error> {
        let _ = name;
        todo!()
    }

    /// Stop a worker and keep it stopped; returns the resulting state.
    pub async fn stop(&self, name: &str) -> Result<StateName, Error> {
        let _ = name;
        todo!()
    }

    /// Stop then start a worker; returns the resulting state.
    pub async fn restart(&self, name: &str) -> Result<StateName, Error> {
        let _ = name;
        todo!()
    }

    /// Subscribe to pool events.
    pub fn subscribe(&self) -> broadcast::Receiver<PoolEvent> {
        todo!()
    }

    /// Stop every worker in parallel and wait for all of them.
    pub async fn shutdown(&self) {
        todo!()
    }
}
