//! The config as written, before validation. Without
//! `deny_unknown_fields`: the keys no field takes are collected by
//! `serde_ignored` ([`Config::parse`](super::Config::parse)), every one of
//! them at once, with its path.

use serde::Deserialize;

use super::Mode;

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) pool: RawPool,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) site: RawSite,
    #[serde(default)]
    pub(super) storage: RawStorage,
    #[serde(default)]
    pub(super) api: RawApi,
    #[serde(default)]
    pub(super) log: RawLog,
    #[serde(default)]
    pub(super) cluster: RawCluster,
    #[serde(default)]
    pub(super) worlds: Vec<RawWorld>,
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawCluster {
    pub(super) enabled: Option<bool>,
    pub(super) lease_ttl: Option<String>,
    pub(super) renew_every: Option<String>,
    pub(super) node_name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawLog {
    pub(super) format: Option<String>,
    pub(super) level: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawPool {
    pub(super) mode: Option<Mode>,
    pub(super) restart: Option<String>,
    pub(super) min_uptime: Option<String>,
    pub(super) backoff_initial: Option<String>,
    pub(super) backoff_multiplier: Option<f64>,
    pub(super) backoff_max: Option<String>,
    pub(super) backoff_jitter: Option<f64>,
    pub(super) max_restarts: Option<u32>,
    pub(super) window: Option<String>,
    pub(super) fatal_retry: Option<String>,
    pub(super) stop_grace: Option<String>,
    pub(super) sample_interval: Option<String>,
    pub(super) supervisor_nice: Option<i64>,
    pub(super) start_timeout: Option<String>,
    pub(super) heartbeat_timeout: Option<String>,
    pub(super) reload_parallel: Option<usize>,
    pub(super) watch_config: Option<bool>,
    pub(super) watcher: Option<bool>,
    pub(super) env: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, Default, Clone)]
pub(super) struct RawLimits {
    pub(super) cpu_time: Option<String>,
    pub(super) memory: Option<String>,
    pub(super) open_files: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawSite {
    pub(super) base_url: Option<String>,
    pub(super) status_path: Option<String>,
    pub(super) guild_path: Option<String>,
    pub(super) player_path: Option<String>,
    pub(super) request_timeout: Option<String>,
    pub(super) max_page_size: Option<String>,
    pub(super) rate_limit: Option<f64>,
    pub(super) max_concurrent: Option<usize>,
    pub(super) user_agent: Option<String>,
    pub(super) retries: Option<u32>,
    pub(super) retry_backoff: Option<String>,
    pub(super) proxy: Option<String>,
    pub(super) poll_interval: Option<String>,
    pub(super) poll_jitter: Option<f64>,
    pub(super) budget: Option<String>,
    pub(super) utc_offset: Option<String>,
    pub(super) reset_time: Option<String>,
    /// Read as a table first, so retired keys get a problem naming their
    /// replacement instead of a bare "unknown field".
    #[serde(default)]
    pub(super) selectors: toml::Table,
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawStorage {
    pub(super) url: Option<String>,
    pub(super) max_connections: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawApi {
    pub(super) bind: Option<String>,
    pub(super) enabled: Option<bool>,
    pub(super) max_connections: Option<usize>,
    pub(super) header_timeout: Option<String>,
    pub(super) fd_reserve: Option<u64>,
    pub(super) shutdown_grace: Option<String>,
    pub(super) send_timeout: Option<String>,
    pub(super) store_readers: Option<usize>,
    pub(super) query_timeout: Option<String>,
    pub(super) max_exports: Option<usize>,
    pub(super) allowed_hosts: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawWorld {
    pub(super) name: String,
    #[serde(default)]
    pub(super) guilds: Vec<String>,
    #[serde(default)]
    pub(super) watch: Vec<String>,
    #[serde(default)]
    pub(super) limits: RawLimits,
    pub(super) priority: Option<i32>,
}
