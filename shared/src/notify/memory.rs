//! A queue that keeps messages in memory: the default until a real queue adapter is wired, and
//! what tests inspect.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Notification, NotifyError, Queue};

/// Messages sent, in order.
#[derive(Clone, Default)]
pub struct MemoryQueue(Arc<Mutex<Vec<Notification>>>);

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }
    /// Takes every message sent so far.
    pub fn drain(&self) -> Vec<Notification> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
    /// A copy of every message sent so far.
    pub fn sent(&self) -> Vec<Notification> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, message: &Notification) -> Result<(), NotifyError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message.clone());
        Ok(())
    }
}
