//! The status watcher's news across nodes: the node holding the
//! watcher's lease publishes each `status_checked` with PostgreSQL
//! `NOTIFY`; every node `LISTEN`s and hands the news of the others to its
//! relay ([`crate::watcher::relay::ClusterNews`]), which tells its own due
//! workers. So the site's status page is read once per interval for the
//! whole cluster.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::protocol::StatusChecked;
use crate::store::Store;
use crate::watcher::relay::ClusterNews;

/// The channel of the news.
pub const CHANNEL: &str = "worldpool_status";

/// PostgreSQL refuses payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7900;

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    /// The publishing node (its own news it already has).
    node: String,
    checked: StatusChecked,
}

/// The news link of node `node_id`: without news for `silence`, its
/// relay tells the workers the watcher is down (they poll on their own).
pub fn link(store: &Store, node_id: &str, silence: Duration) -> Option<ClusterNews> {
    let mut raw = store.listen(CHANNEL)?;
    let (tx, remote) = tokio::sync::mpsc::channel(64);
    let me = node_id.to_string();
    tokio::spawn(async move {
        while let Some(text) = raw.recv().await {
            match serde_json::from_str::<Payload>(&text) {
                Ok(p) if p.node == me => {}
                Ok(p) => {
                    if tx.send(p.checked).await.is_err() {
                        break;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "cluster: unreadable status news"),
            }
        }
    });
    let store = store.clone();
    let me = node_id.to_string();
    let publish = Box::new(move |checked: &StatusChecked| {
        let payload = Payload {
            node: me.clone(),
            checked: checked.clone(),
        };
        let Ok(text) = serde_json::to_string(&payload) else {
            return;
        };
        if text.len() > MAX_PAYLOAD {
            // Too many due worlds for one notification: the others' workers
            // fall back to polling after `silence`, as when it is lost.
            tracing::warn!(
                bytes = text.len(),
                "cluster: status news too large for NOTIFY; the other nodes poll until the next"
            );
            return;
        }
        let store = store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.notify(CHANNEL, &text).await {
                tracing::debug!(error = %e, "cluster: status news not published");
            }
        });
    });
    Some(ClusterNews {
        remote,
        publish,
        silence,
    })
}
