//! What a reload does, decided by one pure function: [`plan`] compares the
//! config in force with the new one and sorts every worker into exactly one
//! of `started`, `stopped`, `restarted`, `updated` and `unchanged`, and
//! lists what only a restart of `worldpool run` can change
//! (`needs_restart`). [`effective`] is the config in force afterwards: the
//! new one, with those restart-only settings kept as they run.
//!
//! The rules, by section:
//!
//! | what changed | what happens |
//! |---|---|
//! | a world added / removed | its worker starts / is stopped (stop sequence) and leaves the pool |
//! | a world's own settings (guilds, watched players, limits: anything of its `[[worlds]]` entry) | that worker is restarted |
//! | `[site]` or `[storage]` | every worker is restarted |
//! | `[limits]` | the workers whose effective limits changed are restarted (single mode: the one worker) |
//! | restart policy, backoff, `max_restarts`, `window`, `fatal_retry`, `stop_grace`, `start_timeout`, `heartbeat_timeout` | applied to the running workers without a restart ([`pool::PoolHandle::update`]) |
//! | `heartbeat_timeout` shorter than two heartbeats of the running workers | every worker is restarted (they would be declared hung) |
//! | `reload_parallel`, `watch_config`, `[log] level` | applied in the supervisor, no worker touched |
//! | `[pool] mode`, `sample_interval`, `supervisor_nice`, `[api]`, `[log] format` | reported in `needs_restart`, nothing else done |
//!
//! In single mode the one worker (`single`) scrapes every world: any world
//! added, removed or changed restarts it.

use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, Mode};
use crate::topology::{WATCHER_NAME, worker_names};

/// A setting that changed in the file but takes effect only when
/// `worldpool run` restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Pending {
    /// Dotted key, e.g. `api.bind`.
    pub key: String,
    /// What runs now and what the file says.
    pub message: String,
}

/// What a reload does to each worker. Every worker of the old and the new
/// config is in exactly one list, in config order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Plan {
    /// New workers, started.
    pub started: Vec<String>,
    /// Workers gone from the config: stopped gracefully and removed.
    pub stopped: Vec<String>,
    /// Workers restarted with their new settings (a new process), at most
    /// `[pool] reload_parallel` at a time.
    pub restarted: Vec<String>,
    /// Workers given a new restart policy or new timeouts, same process.
    pub updated: Vec<String>,
    /// Workers left alone (same process).
    pub unchanged: Vec<String>,
    /// Changed settings that need a restart of `worldpool run`.
    pub needs_restart: Vec<Pending>,
}

impl Plan {
    /// Whether the plan starts any process (then the workers need the new
    /// config on disk).
    pub fn spawns(&self) -> bool {
        !self.started.is_empty() || !self.restarted.is_empty()
    }

    /// One line for logs and the command line: `started [A], restarted
    /// [B], …` (empty lists left out).
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (label, list) in [
            ("started", &self.started),
            ("stopped", &self.stopped),
            ("restarted", &self.restarted),
            ("updated", &self.updated),
            ("unchanged", &self.unchanged),
        ] {
            if !list.is_empty() {
                parts.push(format!("{label} [{}]", list.join(", ")));
            }
        }
        if !self.needs_restart.is_empty() {
            let keys: Vec<&str> = self.needs_restart.iter().map(|p| p.key.as_str()).collect();
            parts.push(format!("needs restart [{}]", keys.join(", ")));
        }
        if parts.is_empty() {
            "no workers".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// The config in force after a reload from `old` to `new`: `new`, except
/// what only a restart changes (`[pool] mode`, `sample_interval`,
/// `supervisor_nice`, `[api]`,
/// `[log] format`), which keeps its running value.
pub fn effective(old: &Config, new: &Config) -> Config {
    let mut out = new.clone();
    out.pool.mode = old.pool.mode;
    out.pool.sample_interval = old.pool.sample_interval;
    out.pool.supervisor_nice = old.pool.supervisor_nice;
    out.api = old.api.clone();
    out.log.format = old.log.format;
    // The watcher and the pool's budget are the supervisor's own tasks,
    // set up at start.
    out.pool.watcher = old.pool.watcher;
    out.site.budget = old.site.budget;
    // Joining or leaving a cluster, and its timings, wait for a restart.
    out.cluster = old.cluster.clone();
    out
}

/// The restart policy and timeouts the workers of a config run with.
pub fn policy(config: &Config) -> pool::Policy {
    pool::Policy {
        restart: config.pool.restart.clone(),
        stop_grace: config.pool.stop_grace,
        start_timeout: Some(config.pool.start_timeout),
        heartbeat_timeout: Some(config.pool.heartbeat_timeout),
    }
}

/// How often the workers of a config send a heartbeat (what `worldpool
/// run` passes them at start).
pub fn heartbeat_period(config: &Config) -> Duration {
    (config.pool.heartbeat_timeout / 3).max(Duration::from_millis(10))
}

/// Compare the config in force with a new, valid one. Pure: no process is
/// touched (see [`super::apply`]).
pub fn plan(old: &Config, new: &Config) -> Plan {
    let mut plan = Plan {
        needs_restart: pending(old, new),
        ..Plan::default()
    };
    // What will run: the settings only a restart changes keep their value.
    let new = &effective(old, new);
    // The mode in force stays: a mode change is only reported.
    let mode = old.pool.mode;
    let old_names = worker_names(old, mode);
    let new_names = worker_names(new, mode);
    // Everything a worker process reads at start, beyond its own world.
    let everyone = old.site != new.site
        || old.storage != new.storage
        || old.pool.env != new.pool.env
        // The running workers beat every old/3: a timeout shorter than two
        // of those beats would declare them hung. They restart with the
        // new period.
        || new.pool.heartbeat_timeout < heartbeat_period(old) * 2;
    let policy_changed = policy(old) != policy(new);
    for name in &new_names {
        if !old_names.contains(name) {
            plan.started.push(name.clone());
            continue;
        }
        let own_settings_changed = match mode {
            // The watcher reads the status page for the worlds' names.
            Mode::Pool if name == WATCHER_NAME => {
                worker_names(old, mode) != worker_names(new, mode)
            }
            Mode::Pool => old.world(name) != new.world(name),
            Mode::Single => old.worlds != new.worlds || old.limits != new.limits,
        };
        if everyone || own_settings_changed {
            plan.restarted.push(name.clone());
        } else if policy_changed {
            plan.updated.push(name.clone());
        } else {
            plan.unchanged.push(name.clone());
        }
    }
    plan.stopped = old_names
        .into_iter()
        .filter(|n| !new_names.contains(n))
        .collect();
    plan
}

/// What puts back on the previous config the workers a stopped rollout
/// changed (`done`, from [`super::apply::Outcome`]): those it started are
/// stopped, those it restarted are restarted again (with their previous
/// spec), those it updated are updated again (with the previous policy),
/// those it stopped are started again. Pure.
pub fn undo(done: &Plan) -> Plan {
    Plan {
        started: done.stopped.clone(),
        stopped: done.started.clone(),
        restarted: done.restarted.clone(),
        updated: done.updated.clone(),
        unchanged: Vec::new(),
        needs_restart: Vec::new(),
    }
}

/// The settings that changed but take effect only at the next start.
fn pending(old: &Config, new: &Config) -> Vec<Pending> {
    let mut out = Vec::new();
    let mut push = |key: &str, message: String| {
        out.push(Pending {
            key: key.to_string(),
            message,
        })
    };
    let mode = |m: Mode| match m {
        Mode::Pool => "pool",
        Mode::Single => "single",
    };
    if old.pool.mode != new.pool.mode {
        push(
            "pool.mode",
            format!(
                "runs in {} mode, the file says {}: the mode changes when worldpool run restarts; \
                 until then the worlds are applied in {} mode",
                mode(old.pool.mode),
                mode(new.pool.mode),
                mode(old.pool.mode)
            ),
        );
    }
    if old.cluster != new.cluster {
        push(
            "cluster",
            "[cluster] changed: a node joins or leaves a cluster, and takes new lease timings, \
             when worldpool run restarts"
                .to_string(),
        );
    }
    if old.pool.sample_interval != new.pool.sample_interval {
        push(
            "pool.sample_interval",
            format!(
                "samples every {}, the file says {}",
                pool::units::format_duration(old.pool.sample_interval),
                pool::units::format_duration(new.pool.sample_interval)
            ),
        );
    }
    if old.pool.supervisor_nice != new.pool.supervisor_nice {
        push(
            "pool.supervisor_nice",
            format!(
                "the pool's thread runs at nice {}, the file says {}",
                old.pool.supervisor_nice, new.pool.supervisor_nice
            ),
        );
    }
    if old.api.bind != new.api.bind {
        push(
            "api.bind",
            format!(
                "the API listens on {}, the file says {}",
                old.api.bind, new.api.bind
            ),
        );
    }
    if old.api.allowed_hosts != new.api.allowed_hosts {
        push(
            "api.allowed_hosts",
            format!(
                "the API answers to {:?} besides loopback names, the file says {:?}",
                old.api.allowed_hosts, new.api.allowed_hosts
            ),
        );
    }
    if old.api.enabled != new.api.enabled {
        push(
            "api.enabled",
            format!(
                "the API is {}, the file says enabled = {}",
                if old.api.enabled { "on" } else { "off" },
                new.api.enabled
            ),
        );
    }
    if old.pool.watcher != new.pool.watcher && old.pool.mode == Mode::Pool {
        push(
            "pool.watcher",
            format!(
                "the status watcher is {}, the file says watcher = {}",
                if old.pool.watcher { "on" } else { "off" },
                new.pool.watcher
            ),
        );
    }
    if old.site.budget != new.site.budget {
        push(
            "site.budget",
            format!(
                "requests are budgeted {:?}-wide, the file says {:?}",
                old.site.budget, new.site.budget
            )
            .to_lowercase(),
        );
    }
    if old.log.format != new.log.format {
        push(
            "log.format",
            format!(
                "logs are written as {:?}, the file says {:?}",
                old.log.format, new.log.format
            )
            .to_lowercase(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Three worlds, no status watcher (it has its own test).
    const BASE: &str = r#"
[pool]
watcher = false
backoff_max = "30s"
heartbeat_timeout = "30s"
[api]
bind = "127.0.0.1:5000"
[[worlds]]
name = "A"
guilds = ["G1"]
[[worlds]]
name = "B"
guilds = ["G2"]
[[worlds]]
name = "C"
guilds = ["G3"]
"#;

    fn config(text: &str) -> Config {
        Config::parse(Path::new("test.toml"), text).expect("valid config")
    }

    /// BASE with `from` replaced by `to` (which must occur).
    fn edit(text: &str, from: &str, to: &str) -> String {
        assert!(text.contains(from), "{from} not in the config");
        text.replacen(from, to, 1)
    }

    type Names = &'static [&'static str];

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    struct Case {
        what: &'static str,
        new: String,
        started: &'static [&'static str],
        stopped: &'static [&'static str],
        restarted: &'static [&'static str],
        updated: &'static [&'static str],
        unchanged: &'static [&'static str],
        pending: &'static [&'static str],
    }

    #[test]
    fn plans_by_what_changed() {
        let single = edit(BASE, "[pool]\n", "[pool]\nmode = \"single\"\n");
        let cases = [
            Case {
                what: "nothing",
                new: BASE.to_string(),
                started: &[],
                stopped: &[],
                restarted: &[],
                updated: &[],
                unchanged: &["A", "B", "C"],
                pending: &[],
            },
            Case {
                what: "a world added, one removed, one changed, one unchanged",
                new: edit(
                    &edit(
                        BASE,
                        "name = \"C\"\nguilds = [\"G3\"]",
                        "name = \"D\"\nguilds = [\"G4\"]",
                    ),
                    "guilds = [\"G2\"]",
                    "guilds = [\"G2\", \"G5\"]",
                ),
                started: &["D"],
                stopped: &["C"],
                restarted: &["B"],
                updated: &[],
                unchanged: &["A"],
                pending: &[],
            },
            Case {
                what: "a world's watched players",
                new: edit(
                    BASE,
                    "guilds = [\"G2\"]",
                    "guilds = [\"G2\"]\nwatch = [\"Zé\"]",
                ),
                started: &[],
                stopped: &[],
                restarted: &["B"],
                updated: &[],
                unchanged: &["A", "C"],
                pending: &[],
            },
            Case {
                what: "a world's limits",
                new: edit(
                    BASE,
                    "guilds = [\"G1\"]",
                    "guilds = [\"G1\"]\nlimits = { memory = \"64MiB\" }",
                ),
                started: &[],
                stopped: &[],
                restarted: &["A"],
                updated: &[],
                unchanged: &["B", "C"],
                pending: &[],
            },
            Case {
                what: "[limits] reach every world that does not override them",
                new: edit(
                    &edit(BASE, "[api]", "[limits]\nopen_files = 512\n[api]"),
                    "guilds = [\"G1\"]",
                    "guilds = [\"G1\"]\nlimits = { open_files = 1024 }",
                ),
                started: &[],
                stopped: &[],
                restarted: &["B", "C"],
                updated: &[],
                unchanged: &["A"],
                pending: &[],
            },
            Case {
                what: "the order of the worlds alone",
                new: edit(BASE, "[[worlds]]\nname = \"A\"\nguilds = [\"G1\"]\n", "")
                    + "[[worlds]]\nname = \"A\"\nguilds = [\"G1\"]\n",
                started: &[],
                stopped: &[],
                restarted: &[],
                updated: &[],
                unchanged: &["B", "C", "A"],
                pending: &[],
            },
            Case {
                what: "[site]",
                new: edit(BASE, "[api]", "[site]\npoll_interval = \"5s\"\n[api]"),
                started: &[],
                stopped: &[],
                restarted: &["A", "B", "C"],
                updated: &[],
                unchanged: &[],
                pending: &[],
            },
            Case {
                what: "[storage]",
                new: edit(
                    BASE,
                    "[api]",
                    "[storage]\nurl = \"sqlite://other.db\"\n[api]",
                ),
                started: &[],
                stopped: &[],
                restarted: &["A", "B", "C"],
                updated: &[],
                unchanged: &[],
                pending: &[],
            },
            Case {
                what: "[storage] and a world added: the new one starts",
                new: edit(
                    BASE,
                    "[api]",
                    "[storage]\nurl = \"sqlite://other.db\"\n[api]",
                ) + "[[worlds]]\nname = \"D\"\nguilds = [\"G4\"]\n",
                started: &["D"],
                stopped: &[],
                restarted: &["A", "B", "C"],
                updated: &[],
                unchanged: &[],
                pending: &[],
            },
            Case {
                what: "backoff_max",
                new: edit(BASE, "backoff_max = \"30s\"", "backoff_max = \"5s\""),
                started: &[],
                stopped: &[],
                restarted: &[],
                updated: &["A", "B", "C"],
                unchanged: &[],
                pending: &[],
            },
            Case {
                what: "restart mode, stop_grace, start_timeout",
                new: edit(
                    BASE,
                    "[pool]\n",
                    "[pool]\nrestart = \"on-failure\"\nstop_grace = \"3s\"\nstart_timeout = \"4s\"\n",
                ),
                started: &[],
                stopped: &[],
                restarted: &[],
                updated: &["A", "B", "C"],
                unchanged: &[],
                pending: &[],
            },
            Case {
                what: "a longer heartbeat timeout",
                new: edit(
                    BASE,
                    "heartbeat_timeout = \"30s\"",
                    "heartbeat_timeout = \"60s\"",
                ),
                started: &[],
                stopped: &[],
                restarted: &[],
                updated: &["A", "B", "C"],
                unchanged: &[],
                pending: &[],
            },
            Case {
                what: "a heartbeat timeout still above two running beats (2 × 10s)",
                new: edit(
                    BASE,
                    "heartbeat_timeout = \"30s\"",
                    "heartbeat_timeout = \"20s\"",
                ),
                started: &[],
                stopped: &[],
                restarted: &[],
                updated: &["A", "B", "C"],
                unchanged: &[],
                pending: &[],
            },
            Case {
                what: "a heartbeat timeout under two running beats",
                new: edit(
                    BASE,
                    "heartbeat_timeout = \"30s\"",
                    "heartbeat_timeout = \"19s\"",
                ),
                started: &[],
                stopped: &[],
                restarted: &["A", "B", "C"],
                updated: &[],
                unchanged: &[],
                pending: &[],
            },
            Case {
                what: "a policy change and a world change: the changed world restarts, the others update",
                new: edit(
                    &edit(BASE, "backoff_max = \"30s\"", "backoff_max = \"5s\""),
                    "guilds = [\"G3\"]",
                    "guilds = [\"G6\"]",
                ),
                started: &[],
                stopped: &[],
                restarted: &["C"],
                updated: &["A", "B"],
                unchanged: &[],
                pending: &[],
            },
            Case {
                what: "supervisor-only settings touch no worker",
                new: edit(
                    &edit(
                        BASE,
                        "[pool]\n",
                        "[pool]\nreload_parallel = 5\nwatch_config = true\n",
                    ),
                    "[api]",
                    "[log]\nlevel = \"debug\"\n[api]",
                ),
                started: &[],
                stopped: &[],
                restarted: &[],
                updated: &[],
                unchanged: &["A", "B", "C"],
                pending: &[],
            },
            Case {
                what: "[api] bind, sample_interval, log format: reported only",
                new: edit(
                    &edit(BASE, "127.0.0.1:5000", "127.0.0.1:6000"),
                    "[pool]\n",
                    "[pool]\nsample_interval = \"5s\"\n",
                )
                .replace("[api]", "[log]\nformat = \"json\"\n[api]"),
                started: &[],
                stopped: &[],
                restarted: &[],
                updated: &[],
                unchanged: &["A", "B", "C"],
                pending: &["pool.sample_interval", "api.bind", "log.format"],
            },
            Case {
                what: "[api] enabled",
                new: edit(BASE, "[api]\n", "[api]\nenabled = false\n"),
                started: &[],
                stopped: &[],
                restarted: &[],
                updated: &[],
                unchanged: &["A", "B", "C"],
                pending: &["api.enabled"],
            },
            Case {
                what: "pool → single: reported, worlds applied in pool mode",
                new: edit(&single, "guilds = [\"G1\"]", "guilds = [\"G7\"]"),
                started: &[],
                stopped: &[],
                restarted: &["A"],
                updated: &[],
                unchanged: &["B", "C"],
                pending: &["pool.mode"],
            },
        ];
        let old = config(BASE);
        for case in cases {
            let got = plan(&old, &config(&case.new));
            let pending: Vec<&str> = got.needs_restart.iter().map(|p| p.key.as_str()).collect();
            assert_eq!(got.started, names(case.started), "{}: started", case.what);
            assert_eq!(got.stopped, names(case.stopped), "{}: stopped", case.what);
            assert_eq!(
                got.restarted,
                names(case.restarted),
                "{}: restarted",
                case.what
            );
            assert_eq!(got.updated, names(case.updated), "{}: updated", case.what);
            assert_eq!(
                got.unchanged,
                names(case.unchanged),
                "{}: unchanged",
                case.what
            );
            assert_eq!(pending, case.pending, "{}: needs_restart", case.what);
        }
    }

    #[test]
    fn single_mode_restarts_its_one_worker_for_any_world_change() {
        let single = edit(BASE, "[pool]\n", "[pool]\nmode = \"single\"\n");
        let old = config(&single);
        // (what, new config, restarted, updated, needs_restart, unchanged)
        type Row = (&'static str, String, Names, Names, Names, Names);
        let table: [Row; 6] = [
            ("nothing", single.clone(), &[], &[], &[], &["single"]),
            (
                "a world added",
                single.clone() + "[[worlds]]\nname = \"D\"\nguilds = [\"G4\"]\n",
                &["single"],
                &[],
                &[],
                &[],
            ),
            (
                "a world removed",
                edit(&single, "[[worlds]]\nname = \"C\"\nguilds = [\"G3\"]\n", ""),
                &["single"],
                &[],
                &[],
                &[],
            ),
            (
                "a guild changed",
                edit(&single, "[\"G2\"]", "[\"G2\", \"G9\"]"),
                &["single"],
                &[],
                &[],
                &[],
            ),
            (
                "[limits]",
                edit(&single, "[api]", "[limits]\nmemory = \"128MiB\"\n[api]"),
                &["single"],
                &[],
                &[],
                &[],
            ),
            (
                "backoff_max",
                edit(&single, "backoff_max = \"30s\"", "backoff_max = \"1s\""),
                &[],
                &["single"],
                &[],
                &[],
            ),
        ];
        for (what, text, restarted, updated, pending, unchanged) in table {
            let got = plan(&old, &config(&text));
            assert!(got.started.is_empty() && got.stopped.is_empty(), "{what}");
            assert_eq!(got.restarted, names(restarted), "{what}");
            assert_eq!(got.updated, names(updated), "{what}");
            assert_eq!(got.unchanged, names(unchanged), "{what}");
            let keys: Vec<&str> = got.needs_restart.iter().map(|p| p.key.as_str()).collect();
            assert_eq!(keys, pending, "{what}");
        }
        // single → pool is reported; the one worker keeps every world.
        let got = plan(&old, &config(BASE));
        assert_eq!(got.unchanged, names(&["single"]));
        assert_eq!(got.needs_restart[0].key, "pool.mode");
        assert!(got.needs_restart[0].message.contains("single mode"));
    }

    #[test]
    fn the_status_watcher_follows_the_world_list_and_is_toggled_by_a_restart() {
        let watched = edit(BASE, "watcher = false\n", "");
        let old = config(&watched);
        // A guild changed: only that world; the watcher reads names only.
        let got = plan(&old, &config(&edit(&watched, "[\"G2\"]", "[\"G9\"]")));
        assert_eq!(got.restarted, names(&["B"]));
        assert_eq!(got.unchanged, names(&["A", "C", "watcher"]));
        // A world added: the watcher restarts to read it too.
        let got = plan(
            &old,
            &config(&(watched.clone() + "[[worlds]]\nname = \"D\"\nguilds = [\"G4\"]\n")),
        );
        assert_eq!(got.started, names(&["D"]));
        assert_eq!(got.restarted, names(&["watcher"]));
        // [site] changed: everyone, the watcher included.
        let got = plan(
            &old,
            &config(&edit(&watched, "[api]", "[site]\nrate_limit = 2.0\n[api]")),
        );
        assert_eq!(got.restarted, names(&["A", "B", "C", "watcher"]));
        // Turning the watcher off (or the budget's scope) waits for a
        // restart of worldpool run; nothing else moves.
        let got = plan(
            &old,
            &config(&edit(
                &edit(&watched, "[pool]\n", "[pool]\nwatcher = false\n"),
                "[api]",
                "[site]\nbudget = \"worker\"\n[api]",
            )),
        );
        let keys: Vec<&str> = got.needs_restart.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["pool.watcher", "site.budget"]);
        assert_eq!(got.unchanged, names(&["A", "B", "C", "watcher"]));
    }

    #[test]
    fn every_worker_is_in_exactly_one_list() {
        let old = config(BASE);
        let new = config(
            &edit(BASE, "name = \"C\"", "name = \"E\"")
                .replace("backoff_max = \"30s\"", "backoff_max = \"9s\""),
        );
        let p = plan(&old, &new);
        let mut all: Vec<&String> = p
            .started
            .iter()
            .chain(&p.stopped)
            .chain(&p.restarted)
            .chain(&p.updated)
            .chain(&p.unchanged)
            .collect();
        all.sort();
        assert_eq!(all, ["A", "B", "C", "E"]);
        assert_eq!(p.started, ["E"]);
        assert_eq!(p.stopped, ["C"]);
        assert!(p.spawns());
        assert_eq!(p.summary(), "started [E], stopped [C], updated [A, B]");
    }

    #[test]
    fn effective_keeps_what_needs_a_restart() {
        let old = config(BASE);
        let new = config(
            &edit(
                &edit(BASE, "127.0.0.1:5000", "127.0.0.1:6000"),
                "[pool]\n",
                "[pool]\nmode = \"single\"\nsample_interval = \"5s\"\nreload_parallel = 3\n",
            )
            .replace(
                "[api]",
                "[log]\nformat = \"json\"\nlevel = \"debug\"\n[api]",
            ),
        );
        let e = effective(&old, &new);
        assert_eq!(e.pool.mode, Mode::Pool);
        assert_eq!(e.api.bind, old.api.bind);
        assert_eq!(e.pool.sample_interval, old.pool.sample_interval);
        assert_eq!(e.log.format, old.log.format);
        // Applied live.
        assert_eq!(e.pool.reload_parallel, 3);
        assert_eq!(e.log.level.as_deref(), Some("debug"));
        // Planning again against the effective config still reports them.
        let again = plan(&e, &new);
        let keys: Vec<&str> = again.needs_restart.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "pool.mode",
                "pool.sample_interval",
                "api.bind",
                "log.format"
            ]
        );
        assert_eq!(again.unchanged, names(&["A", "B", "C"]));
    }

    #[test]
    fn undo_reverses_what_a_rollout_did() {
        let list = |l: &[&str]| names(l);
        let done = Plan {
            started: list(&["D"]),
            stopped: list(&["C"]),
            restarted: list(&["A", "watcher"]),
            updated: list(&["B"]),
            unchanged: list(&["E"]),
            needs_restart: vec![Pending {
                key: "api.bind".into(),
                message: "x".into(),
            }],
        };
        let table: [(Plan, Plan); 3] = [
            // Nothing done: nothing to undo.
            (Plan::default(), Plan::default()),
            // A stopped rollout: what it started goes, what it restarted
            // restarts again (with the previous spec).
            (
                Plan {
                    started: list(&["D"]),
                    restarted: list(&["A"]),
                    ..Plan::default()
                },
                Plan {
                    stopped: list(&["D"]),
                    restarted: list(&["A"]),
                    ..Plan::default()
                },
            ),
            // Everything: each list to its inverse; nothing left unchanged
            // or pending.
            (
                done,
                Plan {
                    started: list(&["C"]),
                    stopped: list(&["D"]),
                    restarted: list(&["A", "watcher"]),
                    updated: list(&["B"]),
                    unchanged: vec![],
                    needs_restart: vec![],
                },
            ),
        ];
        for (done, want) in table {
            let back = undo(&done);
            assert_eq!(back, want, "{done:?}");
            // Undoing twice touches the same workers again.
            assert_eq!(undo(&back).restarted, done.restarted);
            assert_eq!(undo(&back).started, done.started);
        }
    }
}
