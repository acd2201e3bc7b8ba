//! A cluster node: `worldpool_cluster_*` (only in cluster mode).

use super::writer::Writer;
use crate::cluster::ClusterView;

/// The node's leases, its counters and the last renewal's latency.
pub fn render(view: &ClusterView) -> String {
    let mut w = Writer::with_capacity(1024);
    let c = &view.counters;
    let gauges: [(&str, &str, f64); 4] = [
        (
            "worldpool_cluster_leases_held",
            "World leases this node holds (the watcher's included).",
            view.this_node.held.len() as f64,
        ),
        (
            "worldpool_cluster_nodes",
            "Live nodes at this node's last tick.",
            view.balance.nodes as f64,
        ),
        (
            "worldpool_cluster_worlds_unowned_alarm",
            "Worlds without a live owner for more than 2 x lease_ttl.",
            view.alarms.len() as f64,
        ),
        (
            "worldpool_cluster_renew_seconds",
            "Duration of this node's last committed tick (renew, rebalance).",
            c.renew_ms_last / 1000.0,
        ),
    ];
    for (name, help, value) in gauges {
        w.family(name, "gauge", help);
        w.sample(name, &[], value);
    }
    let counters: [(&str, &str, u64); 6] = [
        (
            "worldpool_cluster_lease_acquisitions_total",
            "Leases this node took (each with epoch + 1).",
            c.acquisitions,
        ),
        (
            "worldpool_cluster_lease_losses_total",
            "Leases this node lost: taken by another node, or not renewed in time.",
            c.losses,
        ),
        (
            "worldpool_cluster_lease_releases_total",
            "Leases this node gave up (balance, or a world gone from the config).",
            c.released,
        ),
        (
            "worldpool_cluster_fenced_writes_total",
            "Workers ended because their fence refused a write.",
            c.fenced,
        ),
        (
            "worldpool_cluster_ticks_failed_total",
            "Ticks that failed or timed out.",
            c.ticks_failed,
        ),
        (
            "worldpool_cluster_self_fences_total",
            "Times this node killed its leased workers for want of a renewal.",
            c.self_fenced,
        ),
    ];
    for (name, help, value) in counters {
        w.family(name, "counter", help);
        w.sample(name, &[], value as f64);
    }
    w.out
}
