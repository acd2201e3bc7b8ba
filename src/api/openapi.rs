//! The OpenAPI 3 description served at `/api/openapi.json` (hand-written,
//! built once).

use std::sync::OnceLock;

use serde_json::{Value, json};

/// The document as JSON bytes.
pub fn document() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_vec(&spec()).unwrap_or_else(|_| b"{}".to_vec()))
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn world_param() -> Value {
    json!({
        "name": "world", "in": "path", "required": true,
        "description": "World (worker) name, URL-encoded (spaces and accents allowed).",
        "schema": {"type": "string"}
    })
}

fn control_op(verb: &str, summary: &str) -> Value {
    json!({
        "post": {
            "operationId": format!("{verb}Worker"),
            "summary": summary,
            "description": "Queued per worker: never refused because another request for the same worker is in progress. With a token configured, needs `Authorization: Bearer <WORLDPOOL_API_TOKEN>`; without one, on a loopback bind, clients of this machine need none.",
            "security": [{"bearer": []}],
            "parameters": [world_param()],
            "responses": {
                "202": json_response("The action ran; the resulting state.", json!({"$ref": "#/components/schemas/ControlResult"})),
                "401": error_response("Missing or wrong token."),
                "403": error_response("No token configured and the API not served on loopback only (`control_disabled`: set WORLDPOOL_API_TOKEN), or, without a token, a page of another origin (`foreign_origin`)."),
                "404": error_response("Unknown world."),
                "503": error_response("The pool is shutting down.")
            }
        }
    })
}

fn paging_params(extra: &[(&str, &str)]) -> Value {
    let mut params: Vec<Value> = extra
        .iter()
        .map(|(name, desc)| {
            json!({"name": name, "in": "query", "required": false, "description": desc, "schema": {"type": "string"}})
        })
        .collect();
    params.push(json!({
        "name": "limit", "in": "query", "required": false,
        "description": format!("Rows per page, default {}, capped at {}.", super::DEFAULT_LIMIT, super::MAX_LIMIT),
        "schema": {"type": "integer", "minimum": 1}
    }));
    params.push(json!({
        "name": "before", "in": "query", "required": false,
        "description": "Only rows with an id below this (use `next_before` of the previous page).",
        "schema": {"type": "integer", "minimum": 1}
    }));
    Value::Array(params)
}

fn ts() -> Value {
    json!({"type": "string", "format": "date-time", "nullable": true})
}

fn spec() -> Value {
    let mut doc = base();
    if let Some(paths) = doc["paths"].as_object_mut() {
        paths.extend(super::compat::openapi::paths());
        paths.extend(reload_paths());
        paths.extend(super::budget::openapi_paths());
    }
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        schemas.extend(super::compat::openapi::schemas());
        schemas.extend(reload_schemas());
        schemas.extend(super::budget::openapi_schemas());
        if let Some(worker) = schemas
            .get_mut("Worker")
            .and_then(|w| w["properties"].as_object_mut())
        {
            worker.extend(super::budget::openapi_worker_fields());
        }
    }
    if let Some(worker) = doc["components"]["schemas"]["Worker"]["properties"].as_object_mut() {
        worker.insert("policy".into(), json!({"type": "object", "description": "Only on /api/workers/{world}: restart policy and timeouts in effect (durations in seconds): {restart: {mode, min_uptime, backoff: {initial, multiplier, max, jitter}, max_restarts, window, fatal_retry}, stop_grace, start_timeout, heartbeat_timeout}. A reload changes it without restarting the worker."}));
    }
    doc
}

/// `POST /api/reload`.
fn reload_paths() -> serde_json::Map<String, Value> {
    let doc = json!({
    "/api/reload": {"post": {
        "operationId": "reload",
        "summary": "Reload the config file: validate it completely, then start added worlds, stop removed ones, restart changed ones and apply new restart policies without a restart. Queued: answers once this reload was applied. With a token configured, needs `Authorization: Bearer <WORLDPOOL_API_TOKEN>`; without one, on a loopback bind, clients of this machine need none.",
        "security": [{"bearer": []}],
        "responses": {
            "200": json_response("Applied: the plan.", json!({"$ref": "#/components/schemas/ReloadReport"})),
            "401": error_response("Missing or wrong token."),
            "403": error_response("No token configured and the API not served on loopback only (`control_disabled`: set WORLDPOOL_API_TOKEN), or, without a token, a page of another origin (`foreign_origin`)."),
            "422": json_response("The new config is invalid; nothing changed.", json!({"$ref": "#/components/schemas/InvalidConfig"})),
            "501": error_response("This server has no config to reload."),
            "503": error_response("The pool is shutting down.")
        }
    }}
    });
    doc.as_object().cloned().unwrap_or_default()
}

/// The reload report and the 422 body.
fn reload_schemas() -> serde_json::Map<String, Value> {
    let doc = json!({
    "ReloadReport": {"type": "object", "properties": {
        "trigger": {"type": "string", "enum": ["sighup", "api", "watch"]},
        "file": {"type": "string"},
        "plan": {"type": "object", "properties": {
            "started": {"type": "array", "items": {"type": "string"}},
            "stopped": {"type": "array", "items": {"type": "string"}},
            "restarted": {"type": "array", "items": {"type": "string"}},
            "updated": {"type": "array", "items": {"type": "string"}},
            "unchanged": {"type": "array", "items": {"type": "string"}},
            "needs_restart": {"type": "array", "items": {"type": "object", "properties": {
                "key": {"type": "string"}, "message": {"type": "string"}
            }}}
        }},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "took_ms": {"type": "integer"}
    }},
    "InvalidConfig": {"type": "object", "properties": {
        "error": {"type": "string", "enum": ["invalid_config", "reload_rolled_back"]},
        "message": {"type": "string"},
        "status": {"type": "integer"},
        "file": {"type": "string"},
        "problems": {"type": "array", "items": {"type": "object", "properties": {
            "key": {"type": "string"}, "message": {"type": "string"}, "fix": {"type": "string"}
        }}},
        "worker": {"type": "object", "description": "reload_rolled_back: the worker that did not come back running.", "properties": {
            "worker": {"type": "string"}, "state": {"type": "string"},
            "last_exit": {"type": "string", "nullable": true}, "message": {"type": "string"}
        }}
    }}
    });
    doc.as_object().cloned().unwrap_or_default()
}

fn base() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "worldpool API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Status and control of the worldpool process pool, and the data API of the system it replaces (tag `compatibility`). Read endpoints need no credentials. Errors are always `{error, message, status}`."
        },
        "paths": {
            "/api/workers": {"get": {
                "operationId": "listWorkers", "summary": "Every worker, in config order.",
                "responses": {"200": json_response("Workers.", json!({"type": "array", "items": {"$ref": "#/components/schemas/Worker"}}))}
            }},
            "/api/workers/{world}": {"get": {
                "operationId": "getWorker", "summary": "One worker, with its recent exits.",
                "parameters": [world_param()],
                "responses": {
                    "200": json_response("The worker.", json!({"$ref": "#/components/schemas/Worker"})),
                    "400": error_response("The name is not valid URL-encoded UTF-8."),
                    "404": error_response("Unknown world.")
                }
            }},
            "/api/workers/{world}/restart": control_op("restart", "Restart a worker."),
            "/api/workers/{world}/stop": control_op("stop", "Stop a worker; it stays stopped until started."),
            "/api/workers/{world}/start": control_op("start", "Start a stopped or fatal worker."),
            "/api/scraper-status": {"get": {
                "operationId": "scraperStatus",
                "summary": "Status of the pool as a whole, compatible with the replaced scraper's endpoint.",
                "responses": {"200": json_response("Status.", json!({"$ref": "#/components/schemas/ScraperStatus"}))}
            }},
            "/api/events": {"get": {
                "operationId": "events",
                "summary": "Server-Sent Events: started, ready, exited, backoff, fatal, stopped, phase, run_finished (and other worker events). A consumer that falls behind gets a `lagged` event and is disconnected.",
                "parameters": [
                    {"name": "world", "in": "query", "required": false, "description": "Only this worker's events.", "schema": {"type": "string"}},
                    {"name": "samples", "in": "query", "required": false, "description": "Also send a `samples` event every this many seconds (0.2 to 60): `{event, at, workers}` with the workers as /api/workers shows them.", "schema": {"type": "number", "minimum": 0.2, "maximum": 60}}
                ],
                "responses": {
                    "200": {"description": "An event stream; each `data` is the event as JSON with an `event` tag.", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                    "400": error_response("Unknown query parameter."),
                    "404": error_response("Unknown world.")
                }
            }},
            "/api/runs": {"get": {
                "operationId": "listRuns", "summary": "Scrape runs, newest first.",
                "parameters": paging_params(&[("world", "Only this world.")]),
                "responses": {
                    "200": json_response("A page of runs.", json!({"$ref": "#/components/schemas/RunPage"})),
                    "400": error_response("A bad parameter (named in the message)."),
                    "503": error_response("No store configured, or the store is unreachable.")
                }
            }},
            "/api/deltas": {"get": {
                "operationId": "listDeltas", "summary": "Experience deltas, newest first.",
                "parameters": paging_params(&[("world", "Only this world."), ("guild", "Only this guild.")]),
                "responses": {
                    "200": json_response("A page of deltas.", json!({"$ref": "#/components/schemas/DeltaPage"})),
                    "400": error_response("A bad parameter (named in the message)."),
                    "503": error_response("No store configured, or the store is unreachable.")
                }
            }},
            "/api/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document.",
                "responses": {"200": {"description": "OpenAPI 3 JSON.", "content": {"application/json": {}}}}
            }},
            "/metrics": {"get": {
                "operationId": "metrics",
                "summary": "Prometheus text: per worker up, state, restarts, exits by reason, CPU, RSS, uptime, last success/check; runs by status, rows and deltas per world; pool totals.",
                "responses": {"200": {"description": "Prometheus text format 0.0.4.", "content": {"text/plain": {"schema": {"type": "string"}}}}}
            }},
            "/readyz": {"get": {
                "operationId": "readyz", "summary": "Ready: no worker fatal and the store (if any) answers.",
                "responses": {
                    "200": json_response("Ready.", json!({"type": "object", "properties": {"status": {"type": "string"}, "store": {"type": "string", "enum": ["ok", "not_configured"]}}})),
                    "503": json_response("Not ready; `reasons` lists why.", json!({"$ref": "#/components/schemas/NotReady"}))
                }
            }}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "The value of WORLDPOOL_API_TOKEN."}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message", "status"], "properties": {
                    "error": {"type": "string", "description": "Machine-readable code, e.g. unknown_worker, bad_parameter, unauthorized."},
                    "message": {"type": "string"},
                    "status": {"type": "integer", "description": "The HTTP status."}
                }},
                "NotReady": {"type": "object", "properties": {
                    "error": {"type": "string", "enum": ["not_ready"]},
                    "message": {"type": "string"},
                    "reasons": {"type": "array", "items": {"type": "string"}},
                    "store": {"type": "string", "enum": ["ok", "not_configured", "unreachable"]}
                }},
                "ExitRecord": {"type": "object", "properties": {
                    "code": {"type": "integer", "nullable": true},
                    "signal": {"type": "integer", "nullable": true},
                    "reason": {"type": "string", "enum": ["exited", "crashed", "cpu_limit", "memory_limit", "hung", "stopped", "spawn_failed"]},
                    "at": {"type": "string", "format": "date-time"},
                    "uptime_s": {"type": "number"},
                    "error": {"type": "string", "description": "Only for spawn_failed: the OS error."}
                }},
                "Limits": {"type": "object", "properties": {
                    "cpu_time": {"type": "number", "nullable": true, "description": "CPU seconds (RLIMIT_CPU)."},
                    "memory": {"type": "integer", "nullable": true, "description": "Bytes (RLIMIT_DATA)."},
                    "open_files": {"type": "integer", "nullable": true}
                }},
                "Worker": {"type": "object", "properties": {
                    "world": {"type": "string"},
                    "pid": {"type": "integer", "nullable": true},
                    "state": {"type": "string", "enum": ["starting", "running", "backoff", "stopping", "stopped", "fatal"]},
                    "phase": {"type": "string", "nullable": true, "enum": ["idle", "checking", "scraping", "sleeping", null]},
                    "since": {"type": "string", "format": "date-time"},
                    "started_at": ts(),
                    "uptime_s": {"type": "number", "nullable": true},
                    "restarts": {"type": "integer"},
                    "consecutive_failures": {"type": "integer"},
                    "last_exit": {"allOf": [{"$ref": "#/components/schemas/ExitRecord"}], "nullable": true},
                    "next_restart_at": ts(),
                    "fatal_reason": {"type": "string", "nullable": true},
                    "last_check": ts(),
                    "last_success": ts(),
                    "last_error": {"type": "string", "nullable": true},
                    "rows_last_run": {"type": "integer", "nullable": true},
                    "cpu_percent": {"type": "number", "nullable": true},
                    "rss_bytes": {"type": "integer", "nullable": true},
                    "pss_bytes": {"type": "integer", "nullable": true, "description": "proportional set size: shared pages divided among the processes mapping them"},
                    "limits": {"$ref": "#/components/schemas/Limits"},
                    "last_heartbeat": ts(),
                    "exits_by_reason": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "recent_exits": {"type": "array", "items": {"$ref": "#/components/schemas/ExitRecord"}, "description": "Only on /api/workers/{world}."},
                    "watched": {"allOf": [{"$ref": "#/components/schemas/Watched"}], "nullable": true, "description": "The worker's watched players, from its `vip_pass` events; null until its first pass over them."},
                    "unknown_guilds": {"type": "array", "items": {"type": "string"}, "description": "Configured guilds the site did not know in the last stored run of the worker's world(s), stored with zero rows."}
                }},
                "Watched": {"type": "object", "required": ["count", "last_fetch", "update_time", "fetched", "failed", "unknown"], "properties": {
                    "count": {"type": "integer", "description": "Players watched (config and API) over the worker's worlds."},
                    "last_fetch": ts(),
                    "update_time": {"type": "string", "format": "date-time", "nullable": true, "description": "The world update the last pass read for, with the site's offset."},
                    "fetched": {"type": "integer", "description": "Player pages read since the pool started."},
                    "failed": {"type": "integer", "description": "Player pages that failed since the pool started."},
                    "unknown": {"type": "array", "items": {"type": "string"}, "description": "Players the site did not know in the last pass."}
                }},
                "ControlResult": {"type": "object", "properties": {
                    "world": {"type": "string"},
                    "action": {"type": "string", "enum": ["restart", "stop", "start"]},
                    "state": {"type": "string", "enum": ["starting", "running", "backoff", "stopping", "stopped", "fatal"]}
                }},
                "ScraperStatus": {"type": "object", "properties": {
                    "running": {"type": "boolean"},
                    "state": {"type": "string", "description": "Busiest phase among running workers (scraping > checking > sleeping > idle); `stopped` when none runs."},
                    "last_check": {"type": "string", "nullable": true, "description": "The latest status-page check any worker reported, site-local without offset like the replaced system (`2026-01-04T19:43:05.123000`); `/api/workers` has each worker's in UTC."},
                    "process_alive": {"type": "boolean"},
                    "pid": {"type": "integer", "description": "The supervisor's pid."},
                    "last_update": {"type": "string", "nullable": true, "description": "Newest update time of the stored deltas, site-local `2026-01-04T19:43:00`."},
                    "workers": {"type": "object", "properties": {
                        "total": {"type": "integer"}, "starting": {"type": "integer"}, "running": {"type": "integer"},
                        "backoff": {"type": "integer"}, "stopping": {"type": "integer"}, "stopped": {"type": "integer"}, "fatal": {"type": "integer"}
                    }}
                }},
                "Run": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "world": {"type": "string"},
                    "update_time": {"type": "string", "format": "date-time"},
                    "started_at": {"type": "string", "format": "date-time"},
                    "finished_at": ts(),
                    "status": {"type": "string"}, "rows": {"type": "integer"}, "deltas": {"type": "integer"},
                    "error": {"type": "string", "nullable": true}
                }},
                "Delta": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "world": {"type": "string"}, "name": {"type": "string"},
                    "guild": {"type": "string"}, "delta": {"type": "integer"},
                    "update_time": {"type": "string", "format": "date-time"},
                    "previous_update_time": ts()
                }},
                "RunPage": {"type": "object", "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Run"}},
                    "next_before": {"type": "integer", "nullable": true}
                }},
                "DeltaPage": {"type": "object", "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Delta"}},
                    "next_before": {"type": "integer", "nullable": true}
                }}
            }
        }
    })
}
