//! `worldpool reload`: ask a running `worldpool run` to reload its config
//! (`POST /api/reload`) and print what it did.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use serde::Deserialize;

use crate::config::{API_TOKEN_ENV, Problem};
use crate::reload::{Pending, Plan};

/// `worldpool reload`.
#[derive(Debug, Clone, Args)]
pub struct ReloadArgs {
    /// Base URL of the API.
    #[arg(long, default_value = "http://127.0.0.1:5000", env = "WORLDPOOL_API")]
    pub api: String,
    /// The control token (default: the environment variable
    /// WORLDPOOL_API_TOKEN, as the supervisor reads it).
    #[arg(long, env = API_TOKEN_ENV, hide_env_values = true)]
    pub token: Option<String>,
}

/// The answer to an applied reload (what the command prints of it).
#[derive(Debug, Clone, Deserialize)]
pub struct Applied {
    /// The config file.
    pub file: String,
    /// What was done.
    pub plan: PlanAnswer,
    /// What did not go as planned.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Milliseconds.
    #[serde(default)]
    pub took_ms: u64,
}

/// [`Plan`] as the API sends it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PlanAnswer {
    #[serde(default)]
    started: Vec<String>,
    #[serde(default)]
    stopped: Vec<String>,
    #[serde(default)]
    restarted: Vec<String>,
    #[serde(default)]
    updated: Vec<String>,
    #[serde(default)]
    unchanged: Vec<String>,
    #[serde(default)]
    needs_restart: Vec<PendingAnswer>,
}

#[derive(Debug, Clone, Deserialize)]
struct PendingAnswer {
    key: String,
    message: String,
}

impl From<PlanAnswer> for Plan {
    fn from(p: PlanAnswer) -> Plan {
        Plan {
            started: p.started,
            stopped: p.stopped,
            restarted: p.restarted,
            updated: p.updated,
            unchanged: p.unchanged,
            needs_restart: p
                .needs_restart
                .into_iter()
                .map(|n| Pending {
                    key: n.key,
                    message: n.message,
                })
                .collect(),
        }
    }
}

/// A refused reload (422).
#[derive(Debug, Clone, Deserialize)]
pub struct Refused {
    /// The config file.
    #[serde(default)]
    pub file: String,
    /// Every problem.
    #[serde(default)]
    pub problems: Vec<ProblemAnswer>,
    /// The summary.
    #[serde(default)]
    pub message: String,
    /// The worker that did not come back `running` (a rolled-back reload).
    #[serde(default)]
    pub worker: Option<WorkerAnswer>,
}

/// [`crate::reload::NotRunning`] as the API sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct WorkerAnswer {
    worker: String,
}

/// [`Problem`] as the API sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct ProblemAnswer {
    key: String,
    message: String,
    fix: String,
}

/// Render an applied reload (pure, for tests).
pub fn render_applied(a: &Applied) -> String {
    let plan: Plan = a.plan.clone().into();
    let mut out = format!("reloaded {} in {} ms\n", a.file, a.took_ms);
    let dash = |l: &[String]| {
        if l.is_empty() {
            "-".to_string()
        } else {
            l.join(", ")
        }
    };
    for (label, list) in [
        ("started", &plan.started),
        ("stopped", &plan.stopped),
        ("restarted", &plan.restarted),
        ("updated", &plan.updated),
        ("unchanged", &plan.unchanged),
    ] {
        let _ = writeln!(out, "  {label:<10} {}", dash(list));
    }
    for p in &plan.needs_restart {
        let _ = writeln!(
            out,
            "  needs a restart of worldpool run: {}: {}",
            p.key, p.message
        );
    }
    for w in &a.warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    out
}

/// Render a refused reload like `check-config` prints problems (pure).
pub fn render_refused(r: &Refused) -> String {
    let problems: Vec<Problem> = r
        .problems
        .iter()
        .map(|p| Problem {
            key: p.key.clone(),
            message: p.message.clone(),
            fix: p.fix.clone(),
        })
        .collect();
    if problems.is_empty() {
        return format!("reload refused: {}\n", r.message);
    }
    if let Some(w) = &r.worker {
        let mut out = format!("{}: reload rolled back at worker `{}`\n", r.file, w.worker);
        for p in &problems {
            let _ = writeln!(out, "  {}\n  fix: {}", p.message, p.fix);
        }
        out.push_str("nothing changed: the config in force keeps running\n");
        return out;
    }
    let error = crate::config::ConfigError {
        path: r.file.clone().into(),
        problems,
    };
    format!("{error}nothing changed: the config in force keeps running\n")
}

/// 0 with the plan printed, 2 with every problem of a refused config (or
/// the worker a rolled-back rollout stopped at), 1
/// when the API cannot be reached or refuses the request.
pub async fn run(args: ReloadArgs) -> anyhow::Result<ExitCode> {
    let base = args.api.trim_end_matches('/');
    let token = args
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let hint = crate::api::client::UNREACHABLE_HINT;
    let mut client = crate::api::client::HttpClient::new(base)?;
    let (status, body) = client
        .post("/api/reload", token)
        .await
        .with_context(|| format!("cannot reach the worldpool API at {base} ({hint})"))?;
    let body = String::from_utf8_lossy(&body).into_owned();
    match status.as_u16() {
        200 => {
            let applied: Applied = serde_json::from_str(&body).with_context(|| {
                format!("{base}/api/reload did not answer with a reload report")
            })?;
            print!("{}", render_applied(&applied));
            Ok(ExitCode::SUCCESS)
        }
        422 => {
            let refused: Refused = serde_json::from_str(&body).unwrap_or(Refused {
                file: String::new(),
                problems: Vec::new(),
                message: body.chars().take(500).collect(),
                worker: None,
            });
            eprint!("{}", render_refused(&refused));
            Ok(ExitCode::from(2))
        }
        _ => {
            let message = crate::api::client::error_message(body.as_bytes());
            eprintln!("the API at {base} answered {status}: {message}");
            Ok(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_and_refused_render() {
        let applied: Applied = serde_json::from_value(serde_json::json!({
            "trigger": "api", "file": "w.toml", "took_ms": 12, "warnings": ["x slow"],
            "plan": {"started": ["D"], "stopped": ["C"], "restarted": ["B"], "updated": [],
                     "unchanged": ["A"],
                     "needs_restart": [{"key": "api.bind", "message": "listens on a"}]}
        }))
        .expect("answer");
        let text = render_applied(&applied);
        for want in [
            "reloaded w.toml in 12 ms",
            "  started    D",
            "  stopped    C",
            "  restarted  B",
            "  updated    -",
            "  unchanged  A",
            "needs a restart of worldpool run: api.bind: listens on a",
            "warning: x slow",
        ] {
            assert!(text.contains(want), "{want} in:\n{text}");
        }
        let refused: Refused = serde_json::from_value(serde_json::json!({
            "error": "invalid_config", "status": 422, "message": "m", "file": "w.toml",
            "problems": [{"key": "pool.moed (line 2)", "message": "unknown key `moed`", "fix": "did you mean `mode`?"}]
        }))
        .expect("answer");
        let text = render_refused(&refused);
        assert!(text.contains("w.toml: 1 problem in the config"), "{text}");
        assert!(
            text.contains("w.toml: pool.moed (line 2): unknown key `moed`"),
            "{text}"
        );
        assert!(text.contains("fix: did you mean `mode`?"), "{text}");
        assert!(text.contains("nothing changed"), "{text}");
        let rolled: Refused = serde_json::from_value(serde_json::json!({
            "error": "reload_rolled_back", "status": 422, "message": "m", "file": "w.toml",
            "worker": {"worker": "B", "state": "backoff", "last_exit": "exited with status 1",
                       "message": "worker `B` did not come back running after its restart"},
            "problems": [{"key": "worker `B`",
                          "message": "worker `B` did not come back running after its restart: backoff (last exit: exited with status 1)",
                          "fix": "the workers this reload changed (B) are back on the config in force"}]
        }))
        .expect("answer");
        let text = render_refused(&rolled);
        assert!(
            text.contains("w.toml: reload rolled back at worker `B`"),
            "{text}"
        );
        assert!(text.contains("(last exit: exited with status 1)"), "{text}");
        assert!(
            text.contains("fix: the workers this reload changed (B)"),
            "{text}"
        );
        assert!(text.contains("nothing changed"), "{text}");
    }
}
