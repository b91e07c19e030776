//! The state a client shares with its sender and its subscriptions: the session, the data
//! directory, the outbox, the signals that wake them, and the listeners that hear of them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::error::{Result, SdkError};
use crate::events::EventListener;
use crate::outbox::{Outbox, OutgoingMessage};
use crate::session::Auth;

/// State shared by the client, its sender and its subscriptions.
pub(crate) struct Inner {
    pub(crate) auth: Auth,
    pub(crate) data_dir: PathBuf,
    pub(crate) outbox: Outbox,
    /// Wakes the sender: a new message, or a reason to try again now.
    pub(crate) outbox_wake: Notify,
    /// Wakes everything waiting out a backoff.
    pub(crate) network_back: Notify,
    /// The subscribers, which also hear what becomes of outgoing messages.
    listeners: Mutex<Vec<(u64, Arc<dyn EventListener>)>>,
    next_listener: AtomicU64,
}

impl Inner {
    pub(crate) fn new(auth: Auth, data_dir: PathBuf, outbox: Outbox) -> Inner {
        Inner {
            auth,
            data_dir,
            outbox,
            outbox_wake: Notify::new(),
            network_back: Notify::new(),
            listeners: Mutex::new(Vec::new()),
            next_listener: AtomicU64::new(0),
        }
    }

    /// The event stream just connected: the network is back, so try the outbox now.
    pub(crate) fn connected(&self) {
        self.outbox_wake.notify_one();
    }

    pub(crate) fn agent_id(&self) -> Result<String> {
        self.auth
            .session()
            .map(|s| s.agent_id)
            .ok_or_else(|| SdkError::unauthenticated("not signed in"))
    }

    /// Adds a subscriber's listener until the returned guard drops.
    pub(crate) fn add_listener(
        self: &Arc<Self>,
        listener: Arc<dyn EventListener>,
    ) -> ListenerGuard {
        let id = self.next_listener.fetch_add(1, Ordering::Relaxed);
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, listener));
        ListenerGuard {
            inner: self.clone(),
            id,
        }
    }

    /// Tells every subscriber about an outgoing message.
    pub(crate) fn announce(&self, message: &OutgoingMessage) {
        // Called outside the lock: a listener may subscribe or unsubscribe from its callback.
        let listeners: Vec<_> = {
            let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
            listeners.iter().map(|(_, l)| l.clone()).collect()
        };
        for listener in listeners {
            listener.on_outgoing_message(message.clone());
        }
    }
}

/// Removes a subscriber's listener when its stream ends.
pub(crate) struct ListenerGuard {
    inner: Arc<Inner>,
    id: u64,
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        let mut listeners = self
            .inner
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        listeners.retain(|(id, _)| *id != self.id);
    }
}
