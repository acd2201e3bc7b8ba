//! `GET /api/cluster`: the cluster as this node saw it at its last tick —
//! the live nodes, every lease with its owner, epoch and expiry, this
//! node's leases and share, the balance, and the worlds in alarm (no
//! owner for more than 2 × `lease_ttl`). A node not in a cluster answers
//! `{"state": "off", …}` (the dashboard asks every node).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::ApiError;
use super::state::ApiState;

#[utoipa::path(get, path = "/api/cluster", operation_id = "cluster",
    summary = "The cluster as this node saw it at its last tick: live nodes, every lease with owner, epoch and expiry, this node's leases, share and trust, the balance, worlds without an owner for more than 2 x lease_ttl, and this node's counters.",
    responses(
        (status = 200, description = "The cluster; `state` is `off` on a node not in a cluster ([cluster] enabled = false).", body = crate::cluster::ClusterView),
    ))]
pub(super) async fn cluster_handler(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let view = match state.cluster.as_ref() {
        Some(cluster) => cluster.view(),
        None => crate::cluster::ClusterView::off(),
    };
    Ok(super::json(StatusCode::OK, &view, 4096))
}
