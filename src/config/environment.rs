//! What a valid config is checked against on this machine, beyond the
//! file: the OS hard limits its workers inherit, and the API token a
//! non-loopback `api.bind` needs.

use std::net::SocketAddr;

use pool::Limits;

use super::{Config, ConfigError, Mode, Problem};

/// Environment variable holding the API's control token.
pub const API_TOKEN_ENV: &str = "WORLDPOOL_API_TOKEN";

/// What a config is checked against on this machine (beyond the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// Hard RLIMIT_CPU in seconds (`None` = unlimited).
    pub cpu_hard: Option<u64>,
    /// Hard RLIMIT_DATA in bytes (`None` = unlimited).
    pub data_hard: Option<u64>,
    /// Hard RLIMIT_NOFILE (`None` = unlimited).
    pub nofile_hard: Option<u64>,
    /// Whether [`API_TOKEN_ENV`] holds a non-empty token.
    pub api_token_set: bool,
}

impl Environment {
    /// This process's hard limits (which its workers inherit) and token.
    pub fn current() -> Environment {
        use rlimit::Resource;
        let hard = |r: Resource| match rlimit::getrlimit(r) {
            Ok((_, hard)) if hard != rlimit::INFINITY => Some(hard),
            _ => None,
        };
        Environment {
            cpu_hard: hard(Resource::CPU),
            data_hard: hard(Resource::DATA),
            nofile_hard: hard(Resource::NOFILE),
            api_token_set: std::env::var(API_TOKEN_ENV).is_ok_and(|t| !t.trim().is_empty()),
        }
    }
}

impl Config {
    /// What would go wrong on a machine: a limit above the OS hard limit
    /// (every spawn of that worker would be refused), a non-loopback
    /// `api_bind` without a token (`worldpool run` refuses to serve it).
    /// Every problem, with key and fix.
    pub fn check_environment(
        &self,
        env: &Environment,
        api_bind: Option<SocketAddr>,
    ) -> Result<(), ConfigError> {
        let mut problems = self.limit_problems(env);
        problems.extend(bind_problem(env, api_bind));
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                path: self.path.clone(),
                problems,
            })
        }
    }

    /// Limits above the OS hard limits, per world (or `[limits]` in single
    /// mode).
    pub fn limit_problems(&self, env: &Environment) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut check = |key: String, what: &str, value: u64, shown: String, hard: Option<u64>| {
            if let Some(hard) = hard
                && value > hard
            {
                problems.push(Problem {
                    key,
                    message: format!(
                        "{shown} is above this machine's hard limit of {hard} for {what}: \
                         every start of the worker would be refused"
                    ),
                    fix: format!(
                        "use at most {hard}, or raise the hard limit of the user that runs \
                         worldpool (ulimit -H, limits.conf or the service manager)"
                    ),
                });
            }
        };
        let mut sets: Vec<(String, &Limits)> = vec![("limits".to_string(), &self.limits)];
        if self.pool.mode == Mode::Pool {
            sets = self
                .worlds
                .iter()
                .enumerate()
                .map(|(i, w)| (format!("worlds[{i}] ({}) limits", w.name), &w.limits))
                .collect();
        }
        for (prefix, limits) in sets {
            if let Some(cpu) = limits.cpu_time {
                // The pool sets soft = ceil(seconds), hard = soft + 1.
                let hard_needed = cpu.as_secs_f64().ceil().max(1.0) as u64 + 1;
                check(
                    format!("{prefix}.cpu_time"),
                    "RLIMIT_CPU (seconds)",
                    hard_needed,
                    format!("{}s (+1s hard)", hard_needed - 1),
                    env.cpu_hard,
                );
            }
            if let Some(mem) = limits.memory {
                check(
                    format!("{prefix}.memory"),
                    "RLIMIT_DATA (bytes)",
                    mem,
                    format!("{mem} bytes"),
                    env.data_hard,
                );
            }
            if let Some(files) = limits.open_files {
                check(
                    format!("{prefix}.open_files"),
                    "RLIMIT_NOFILE",
                    files,
                    files.to_string(),
                    env.nofile_hard,
                );
            }
        }
        problems
    }
}

/// A non-loopback API address without a control token.
pub fn bind_problem(env: &Environment, api_bind: Option<SocketAddr>) -> Option<Problem> {
    let bind = api_bind?;
    (!bind.ip().is_loopback() && !env.api_token_set).then(|| Problem {
        key: "api.bind".into(),
        message: format!(
            "{bind} is not a loopback address and {API_TOKEN_ENV} is not set: \
             `worldpool run` refuses to serve the API there"
        ),
        fix: format!(
            "set {API_TOKEN_ENV} to a secret, or bind \"127.0.0.1:{}\"",
            bind.port()
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::Environment;
    use crate::config::parse_test as parse;

    #[test]
    fn environment_checks_limits_and_bind() {
        let c = parse(
            "[api]\nbind = \"0.0.0.0:5000\"\n[[worlds]]\nname = \"A\"\nguilds = [\"G\"]\n\
             [[worlds]]\nname = \"B\"\nguilds = [\"G\"]\nlimits = { open_files = 900000, cpu_time = \"1h\" }\n",
        )
        .expect("valid file");
        let env = Environment {
            cpu_hard: Some(600),
            data_hard: None,
            nofile_hard: Some(20000),
            api_token_set: false,
        };
        let err = c
            .check_environment(&env, Some(c.api.bind))
            .expect_err("over the hard limits");
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "worlds[1] (B) limits.cpu_time",
                "worlds[1] (B) limits.open_files",
                "api.bind"
            ]
        );
        let nofile = &err.problems[1];
        assert!(
            nofile.message.contains("900000") && nofile.message.contains("20000"),
            "{nofile:?}"
        );
        let ok_env = Environment {
            nofile_hard: Some(1_000_000),
            cpu_hard: None,
            api_token_set: true,
            ..env
        };
        c.check_environment(&ok_env, Some(c.api.bind))
            .expect("within the limits, token set");
        // A loopback bind needs no token.
        c.check_environment(
            &Environment {
                api_token_set: false,
                ..ok_env
            },
            Some(SocketAddr::from(([127, 0, 0, 1], 5000))),
        )
        .expect("loopback");
    }
}
