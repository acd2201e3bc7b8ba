//! The compatibility endpoints in `/api/openapi.json`.

use serde_json::{Map, Value, json};

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn query(name: &str, description: &str, kind: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": kind}})
}

fn time_query(name: &str) -> Value {
    query(
        name,
        "ISO 8601 time (`2026-01-04T19:43`, seconds and offset optional; site-local without an offset). Empty = no bound.",
        "string",
    )
}

fn limit(default: u32) -> Value {
    json!({
        "name": "limit", "in": "query", "required": false,
        "description": format!("Rows, default {default}, capped at {}.", super::COMPAT_MAX_LIMIT),
        "schema": {"type": "integer", "minimum": 1}
    })
}

fn store_errors(mut responses: Map<String, Value>) -> Value {
    responses.insert(
        "400".into(),
        error("A bad parameter or body (named in the message)."),
    );
    responses.insert(
        "422".into(),
        error("Over a cap (`over_cap`): a period longer than 366 days, too many players or deltas; the message names the cap."),
    );
    responses.insert(
        "503".into(),
        error("No store configured, the store is unreachable, or the query was stopped at its deadline."),
    );
    Value::Object(responses)
}

fn responses(code: &str, answer: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(code.into(), answer);
    m
}

fn period_body() -> Value {
    json!({
        "required": false,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Period"}}}
    })
}

/// Paths of the compatibility endpoints.
pub(in crate::api) fn paths() -> Map<String, Value> {
    let world = query("world", "Only this world (empty = every world).", "string");
    let guild = query("guild", "Only this guild (empty = every guild).", "string");
    let mut p = Map::new();
    p.insert("/api/delta".into(), json!({"get": {
        "operationId": "deltaFeed", "tags": ["compatibility"],
        "summary": "The live delta feed: newest update first, then by name.",
        "parameters": [limit(super::DELTA_DEFAULT_LIMIT), world, guild],
        "responses": store_errors(responses("200", ok("Deltas.", json!({"type": "object", "required": ["deltas"], "properties": {"deltas": {"type": "array", "items": {"$ref": "#/components/schemas/FeedDelta"}}}}))))
    }}));
    p.insert("/api/recent-updates".into(), json!({"get": {
        "operationId": "recentUpdates", "tags": ["compatibility"],
        "summary": "The latest delta rows (the replaced system's records, with its `update time` column).",
        "parameters": [limit(super::RECENT_DEFAULT_LIMIT)],
        "responses": store_errors(responses("200", ok("Delta rows.", json!({"type": "array", "items": {"$ref": "#/components/schemas/RecentUpdate"}}))))
    }}));
    p.insert("/api/top-players".into(), json!({"get": {
        "operationId": "topPlayers", "tags": ["compatibility"],
        "summary": "Players by experience gained over the period, largest first.",
        "parameters": [limit(super::TOP_DEFAULT_LIMIT), time_query("datetime1"), time_query("datetime2")],
        "responses": store_errors(responses("200", ok("Top players.", json!({"type": "array", "items": {"type": "object", "required": ["name", "total_exp"], "properties": {"name": {"type": "string"}, "total_exp": {"type": "integer"}}}}))))
    }}));
    p.insert("/api/rankings-table".into(), json!({"post": {
        "operationId": "rankingsTable", "tags": ["compatibility"],
        "summary": "Every player's deltas over the period, aggregated; largest total first.",
        "requestBody": period_body(),
        "responses": store_errors(responses("200", ok("Rankings.", json!({"type": "object", "required": ["rankings"], "properties": {"rankings": {"type": "array", "items": {"$ref": "#/components/schemas/Ranking"}}}}))))
    }}));
    p.insert("/api/players".into(), json!({"get": {
        "operationId": "players", "tags": ["compatibility"],
        "summary": "Names of the players with deltas, sorted.",
        "parameters": [query("world", "Only this world.", "string"), query("guild", "Only this guild.", "string")],
        "responses": store_errors(responses("200", ok("Names.", json!({"type": "array", "items": {"type": "string"}}))))
    }}));
    p.insert("/api/date-range".into(), json!({"get": {
        "operationId": "dateRange", "tags": ["compatibility"],
        "summary": "First and last update times of the deltas (null without deltas).",
        "parameters": [query("world", "Only this world.", "string"), query("guild", "Only this guild.", "string")],
        "responses": store_errors(responses("200", ok("The range.", json!({"type": "object", "required": ["min", "max"], "properties": {"min": {"$ref": "#/components/schemas/LegacyTime"}, "max": {"$ref": "#/components/schemas/LegacyTime"}}}))))
    }}));
    p.insert("/api/graph".into(), json!({"post": {
        "operationId": "graph", "tags": ["compatibility"],
        "summary": "The named players' experience over the period: `graph`, the replaced system's Plotly figure as JSON text (bars per update), `figure`, worldpool's cumulative figure; their statistics, and where each stands among its world's players.",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GraphRequest"}}}},
        "responses": store_errors(responses("200", ok("Graph, statistics, comparison.", json!({"$ref": "#/components/schemas/GraphAnswer"}))))
    }}));
    p.insert("/api/player-graph/{name}".into(), json!({"get": {
        "operationId": "playerGraph", "tags": ["compatibility"],
        "summary": "One player's experience: `graph`, the replaced system's Plotly figure as JSON text; `figure`, worldpool's cumulative figure.",
        "parameters": [
            {"name": "name", "in": "path", "required": true, "description": "Player name, URL-encoded.", "schema": {"type": "string"}},
            time_query("datetime1"), time_query("datetime2")
        ],
        "responses": store_errors(responses("200", ok("The graph.", json!({"type": "object", "required": ["graph", "player", "figure"], "properties": {"graph": {"$ref": "#/components/schemas/PlotlyFigureText"}, "player": {"type": "string"}, "figure": {"$ref": "#/components/schemas/PlotlyFigure"}}}))))
    }}));
    let details = |d: &str| ok(d, json!({"$ref": "#/components/schemas/PlayerDetails"}));
    p.insert("/api/player-details/{name}".into(), json!({"get": {
        "operationId": "playerDetails", "tags": ["compatibility"],
        "summary": "The player page's tables, read live from the site by a worker (a grant of the pool's budget), kept 60 s; a watched player's numbers are recorded. Every answer has `success`; a failure adds `error`, `message` and `status`.",
        "parameters": [
            {"name": "name", "in": "path", "required": true, "description": "Player name, URL-encoded.", "schema": {"type": "string"}},
            query("world", "The player's world (any case). Default: where it is watched, else where the store has it.", "string")
        ],
        "responses": {
            "200": details("The tables."),
            "400": details("A bad name (`bad_parameter`)."),
            "404": details("The site does not know the player (`unknown_player`), or no such world (`unknown_world`)."),
            "502": details("The site failed after the client's retries (`site_error`; `response_status` is its status)."),
            "503": details("No world worker is running (`no_worker`)."),
            "504": details("No worker answered in time (`worker_timeout`).")
        }
    }}));
    p.insert("/api/status-data".into(), json!({"get": {
        "operationId": "statusData", "tags": ["compatibility"],
        "summary": "The last parsed status page of each world, kept by the workers at each check.",
        "responses": {
            "200": ok("Status data.", json!({"$ref": "#/components/schemas/StatusData"})),
            "404": error("No worker has checked the status page yet."),
            "503": error("No store configured, or the store is unreachable.")
        }
    }}));
    p.insert("/api/scraping-config".into(), json!({
        "get": {
            "operationId": "scrapingConfig", "tags": ["compatibility"],
            "summary": "The configured worlds and guilds (from the config file).",
            "responses": {"200": ok("Worlds.", json!({"type": "array", "items": {"type": "object", "required": ["world", "guilds"], "properties": {"world": {"type": "string"}, "guilds": {"type": "array", "items": {"type": "string"}}}}}))}
        },
        "post": {
            "operationId": "setScrapingConfig", "tags": ["compatibility"],
            "summary": "Refused: the world list lives in the config file ([[worlds]]); edit it, then `worldpool reload` or restart.",
            "responses": {"405": error("Always; the message says where the world list lives.")}
        }
    }));
    p.insert("/api/manual-update".into(), json!({"post": {
        "operationId": "manualUpdate", "tags": ["compatibility"],
        "summary": "Ask every worker (or `?world=`) to check the site now. With a token configured it needs it: `Authorization: Bearer <WORLDPOOL_API_TOKEN>` (or `password` in a JSON or form body, as the replaced system took it); without one, on a loopback bind, clients of this machine need none.",
        "security": [{"bearer": []}],
        "parameters": [query("world", "Only this world's worker.", "string")],
        "responses": {
            "202": ok("Requested.", json!({"type": "object", "required": ["success", "message", "worlds", "busy"], "properties": {"success": {"type": "boolean"}, "message": {"type": "string"}, "worlds": {"type": "array", "items": {"type": "string"}, "description": "Workers asked to check now."}, "busy": {"type": "array", "items": {"type": "string"}, "description": "Workers skipped: already scraping."}}})),
            "401": error("Missing or wrong token."),
            "403": error("No token configured and not served on loopback (`control_disabled`), or a page of another origin (`foreign_origin`)."),
            "404": error("Unknown world."),
            "409": error("That worker (or every worker) is already scraping, or none is running."),
            "501": error("This pool cannot deliver the request to workers yet."),
            "503": error("The pool is shutting down.")
        }
    }}));
    p.insert("/api/console-stream".into(), json!({"get": {
        "operationId": "consoleStream", "tags": ["compatibility"],
        "summary": "Server-Sent Events of the workers' log lines: unnamed events (`onmessage`) whose data is the text line `[YYYY-MM-DD HH:MM:SS] [LEVEL] [world] message`, the first being `[CONNECTED] Console stream started`; with `?format=json`, a ConsoleLine as JSON instead (no CONNECTED line). Keep-alive comments; a client that falls 1024 lines behind gets `event: lagged` and is disconnected.",
        "parameters": [query("format", "`text` (default) or `json`.", "string")],
        "responses": {
            "200": {"description": "An event stream.", "content": {"text/event-stream": {"schema": {"oneOf": [{"type": "string"}, {"$ref": "#/components/schemas/ConsoleLine"}]}}}},
            "400": error("`format` is neither `text` nor `json`.")
        }
    }}));
    for (path, id, columns) in [
        (
            "/api/download/deltas",
            "downloadDeltas",
            "name,deltaexp,update time,world,guild",
        ),
        (
            "/api/download/exps",
            "downloadExps",
            "name,exp,last update,world,guild",
        ),
    ] {
        p.insert(path.into(), json!({"get": {
            "operationId": id, "tags": ["compatibility"],
            "summary": format!("CSV with the columns `{columns}` (times `YYYY-MM-DD HH:MM:SS`, site-local), streamed; text cells starting with `=`, `+`, `-`, `@`, tab or CR get a leading `'`."),
            "responses": {
                "200": {"description": "CSV.", "content": {"text/csv": {"schema": {"type": "string"}}}},
                "429": error("`[api] max_exports` downloads run already; retry after `Retry-After` seconds."),
                "503": error("No store configured.")
            }
        }}));
    }
    let token_errors = |ok_answer: Value, extra: &[(&str, &str)]| {
        let mut r = Map::new();
        r.insert("200".into(), ok_answer);
        r.insert(
            "400".into(),
            error("A body without a valid `name` or `world`."),
        );
        r.insert("401".into(), error("Missing or wrong token."));
        r.insert("403".into(), error("No token configured and not served on loopback (`control_disabled`), or a page of another origin (`foreign_origin`)."));
        r.insert("404".into(), error("The world is not configured."));
        r.insert(
            "503".into(),
            error("No store configured, or the store is unreachable."),
        );
        for (code, what) in extra {
            r.insert((*code).into(), error(what));
        }
        Value::Object(r)
    };
    let changed = json!({"$ref": "#/components/schemas/VipChanged"});
    p.insert("/api/vip/list".into(), json!({"get": {
        "operationId": "vipList", "tags": ["compatibility", "vip"],
        "summary": "The watched players: the config's (`[[worlds]] watch`) and those added over the API.",
        "parameters": [query("world", "Only this world.", "string")],
        "responses": store_errors(responses("200", ok("Watched players.", json!({"type": "object", "required": ["vips"], "properties": {"vips": {"type": "array", "items": {"$ref": "#/components/schemas/Vip"}}}}))))
    }}));
    p.insert("/api/vip/add".into(), json!({"post": {
        "operationId": "vipAdd", "tags": ["compatibility", "vip"],
        "summary": "Watch a player of a world (stored; survives restarts). The world's worker is asked to read its page at once (`checked_now`); a pool that cannot deliver that reads it at the worker's next check. Needs the token (bearer header, or `password` in the body).",
        "security": [{"bearer": []}],
        "requestBody": {"required": true, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/VipRequest"}},
            "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/VipRequest"}}
        }},
        "responses": token_errors(ok("Watched (`changed` false: it already was).", changed.clone()), &[])
    }}));
    p.insert("/api/vip/remove".into(), json!({"post": {
        "operationId": "vipRemove", "tags": ["compatibility", "vip"],
        "summary": "Stop watching a player added over the API (its history is kept). Needs the token.",
        "security": [{"bearer": []}],
        "requestBody": {"required": true, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/VipRequest"}},
            "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/VipRequest"}}
        }},
        "responses": token_errors(ok("Removed.", changed), &[
            ("404", "The world is not configured, or the player is not watched."),
            ("409", "The player is watched by the config file: edit [[worlds]] watch.")
        ])
    }}));
    p.insert("/api/vip/deltas".into(), json!({"get": {
        "operationId": "vipDeltas", "tags": ["compatibility", "vip"],
        "summary": "The watched players' deltas, newest first.",
        "parameters": [limit(super::vip::VIP_DELTAS_DEFAULT_LIMIT), query("name", "Only this player.", "string"), query("world", "Only this world.", "string")],
        "responses": store_errors(responses("200", ok("Deltas.", json!({"type": "object", "required": ["deltas"], "properties": {"deltas": {"type": "array", "items": {"$ref": "#/components/schemas/VipDelta"}}}}))))
    }}));
    p.insert("/api/vip/graph".into(), json!({"post": {
        "operationId": "vipGraph", "tags": ["compatibility", "vip"],
        "summary": "A watched player's deltas oldest first with running totals, and their statistics.",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/VipGraphRequest"}}}},
        "responses": store_errors(responses("200", ok("Graph data and statistics.", json!({"$ref": "#/components/schemas/VipGraph"}))))
    }}));
    makers_and_uploads(&mut p);
    p.insert("/healthz".into(), json!({"get": {
        "operationId": "healthz", "tags": ["compatibility"],
        "summary": "The pool's health in the replaced system's shape: `degraded` when a worker is fatal or backing off or the store does not answer (`reason` says which), `unhealthy` when no worker process is alive and some have failed.",
        "responses": {
            "200": ok("Healthy or degraded.", json!({"$ref": "#/components/schemas/Health"})),
            "503": ok("Unhealthy.", json!({"$ref": "#/components/schemas/Health"}))
        }
    }}));
    p.insert("/memusage".into(), json!({"get": {
        "operationId": "memusage", "tags": ["compatibility"],
        "summary": "Memory of the pool (supervisor + live workers: RSS and PSS sums) and of the machine (/proc/meminfo), in the replaced system's shape.",
        "responses": {
            "200": ok("Memory.", json!({"$ref": "#/components/schemas/MemUsage"})),
            "500": error("/proc could not be read.")
        }
    }}));
    p.insert("/health".into(), json!({"get": {
        "operationId": "health", "tags": ["compatibility"],
        "summary": "The replaced system's health check.",
        "responses": {"200": ok("Healthy.", json!({"type": "object", "required": ["status", "timestamp"], "properties": {"status": {"type": "string", "enum": ["healthy"]}, "timestamp": {"$ref": "#/components/schemas/LegacyTime"}}}))}
    }}));
    p
}

/// Schemas of the compatibility endpoints.
pub(in crate::api) fn schemas() -> Map<String, Value> {
    let time = json!({"$ref": "#/components/schemas/LegacyTime"});
    let mut s = Map::new();
    s.insert("LegacyTime".into(), json!({
        "type": "string", "nullable": true,
        "description": "The site's local wall time without offset, as the replaced system wrote it: `2026-01-04T19:43:00`.",
        "example": "2026-01-04T19:43:00"
    }));
    s.insert(
        "FeedDelta".into(),
        json!({"type": "object",
        "required": ["name", "deltaexp", "update_time", "prev_update_time", "world", "guild"],
        "properties": {
            "name": {"type": "string"}, "deltaexp": {"type": "integer"},
            "update_time": time, "prev_update_time": time,
            "world": {"type": "string"}, "guild": {"type": "string"}
        }}),
    );
    s.insert("RecentUpdate".into(), json!({"type": "object",
        "required": ["name", "deltaexp", "update time", "update_time", "prev_update_time", "world", "guild"],
        "properties": {
            "name": {"type": "string"}, "deltaexp": {"type": "integer"},
            "update time": time, "update_time": time, "prev_update_time": time,
            "world": {"type": "string"}, "guild": {"type": "string"}
        }}));
    s.insert("Ranking".into(), json!({"type": "object",
        "required": ["name", "total_exp", "updates", "avg_exp", "max_exp", "min_exp"],
        "properties": {
            "name": {"type": "string"}, "total_exp": {"type": "integer"}, "updates": {"type": "integer"},
            "avg_exp": {"type": "number", "description": "Rounded to 2 decimals."},
            "max_exp": {"type": "integer"}, "min_exp": {"type": "integer"}
        }}));
    s.insert("Period".into(), json!({"type": "object", "properties": {
        "datetime1": {"type": "string", "nullable": true, "description": "From (inclusive); empty or null = no bound."},
        "datetime2": {"type": "string", "nullable": true, "description": "To (inclusive); empty or null = no bound."}
    }}));
    s.insert("GraphRequest".into(), json!({"type": "object", "required": ["names"], "properties": {
        "names": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": super::GRAPH_MAX_NAMES},
        "datetime1": {"type": "string", "nullable": true},
        "datetime2": {"type": "string", "nullable": true}
    }}));
    s.insert("PlotlyFigureText".into(), json!({"type": "string",
        "description": "A Plotly figure `{data: [traces], layout}` serialized as JSON text, as the replaced system sent it (`fig.to_json()`; its pages `JSON.parse` it and call `Plotly.newPlot(el, fig.data, fig.layout)`). Traces: per player a `bar` of the experience gained at each update and a `scatter` spline over it (`<name> (trend)`); `x` are category labels naming the period each bar covers (`10:00-10:10`; two or more updates without gain fold into one bar); with no data, no trace and the title `No data available`."}));
    s.insert("PlotlyFigure".into(), json!({"type": "object", "required": ["data", "layout"], "properties": {
        "data": {"type": "array", "items": {"type": "object", "required": ["x", "y", "name", "type", "mode"], "properties": {
            "x": {"type": "array", "items": {"type": "string", "format": "date-time"}, "description": "Update times, RFC 3339 with the site's offset."},
            "y": {"type": "array", "items": {"type": "integer"}, "description": "Experience gained since the start of the period, at each update."},
            "name": {"type": "string"},
            "type": {"type": "string", "enum": ["scatter"]},
            "mode": {"type": "string"}
        }}},
        "layout": {"type": "object"}
    }}));
    s.insert("GraphAnswer".into(), json!({"type": "object", "required": ["graph", "stats", "comparison", "figure"], "properties": {
        "graph": {"$ref": "#/components/schemas/PlotlyFigureText"},
        "figure": {"$ref": "#/components/schemas/PlotlyFigure"},
        "stats": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "Total EXP": {"type": "integer"}, "Average EXP": {"type": "number"},
            "Updates": {"type": "integer"}, "Max EXP": {"type": "integer"}, "Min EXP": {"type": "integer"}
        }}},
        "comparison": {"type": "array", "items": {"type": "object",
            "required": ["name", "rank", "total_players", "percentile", "total_exp_period", "current_total_exp"],
            "properties": {
                "name": {"type": "string"},
                "rank": {"type": "integer", "description": "1 = most experience in the period among the players of its world."},
                "total_players": {"type": "integer"},
                "percentile": {"type": "number", "description": "(1 - rank / total_players) × 100, one decimal."},
                "total_exp_period": {"type": "integer"},
                "current_total_exp": {"type": "integer", "description": "Its latest stored experience (0 if none)."}
            }}}
    }}));
    s.insert("PlayerDetails".into(), json!({"type": "object", "required": ["success", "name", "world", "response_status", "tables"], "properties": {
        "success": {"type": "boolean"}, "name": {"type": "string"},
        "world": {"type": "string", "nullable": true, "description": "The world the page was read for."},
        "response_status": {"type": "integer", "nullable": true, "description": "The site's HTTP status (null: not reached)."},
        "tables": {"type": "array", "items": {"type": "object", "required": ["columns", "data"], "properties": {
            "columns": {"type": "array", "items": {"type": "string"}},
            "data": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}, "description": "Rows, newest first on the real site, cells as the site shows them."}
        }}},
        "truncated_rows": {"type": "integer", "description": "Oldest rows left out to fit 60 KiB (absent: none)."},
        "recorded": {"type": "object", "description": "A watched player's read recorded: `outcome` is baseline, rebased, unchanged, delta or already_stored."},
        "error": {"type": "string"}, "message": {"type": "string"}, "status": {"type": "integer"}
    }}));
    s.insert("StatusData".into(), json!({"type": "object", "required": ["fetch_time", "worlds"], "properties": {
        "fetch_time": time,
        "worlds": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "object",
            "required": ["rotina", "last update", "time_outdated", "status"],
            "properties": {
                "rotina": {"type": "string"}, "last update": time,
                "time_outdated": {"type": "string"}, "status": {"type": "string"}
            }}}}
    }}));
    s.insert("Vip".into(), json!({"type": "object", "required": ["name", "world", "source", "added_at"], "properties": {
        "name": {"type": "string"}, "world": {"type": "string"},
        "source": {"type": "string", "enum": ["config", "api"]},
        "added_at": {"type": "string", "format": "date-time", "nullable": true, "description": "When it was added over the API (null for the config's)."}
    }}));
    s.insert("VipRequest".into(), json!({"type": "object", "required": ["name", "world"], "properties": {
        "name": {"type": "string", "description": "Player name as the site spells it (compared ignoring case)."},
        "world": {"type": "string", "description": "A configured world (compared ignoring case)."},
        "password": {"type": "string", "description": "The token, when not sent as a bearer header."}
    }}));
    s.insert("VipChanged".into(), json!({"type": "object", "required": ["success", "message", "name", "world", "changed", "checked_now"], "properties": {
        "success": {"type": "boolean"}, "message": {"type": "string"},
        "name": {"type": "string", "description": "The name as stored (the existing spelling when it was watched already)."},
        "world": {"type": "string"},
        "changed": {"type": "boolean", "description": "add: newly watched; remove: removed."},
        "checked_now": {"type": "boolean", "description": "add: the world's worker was asked to read it now."}
    }}));
    s.insert("VipDelta".into(), json!({"type": "object",
        "required": ["name", "world", "delta_exp", "delta_online", "update_time", "prev_update_time", "date"],
        "properties": {
            "name": {"type": "string"}, "world": {"type": "string"},
            "delta_exp": {"type": "integer", "description": "Raw experience gained since the player's previous read."},
            "delta_online": {"type": "integer", "description": "Minutes online since the previous read."},
            "update_time": time, "prev_update_time": time,
            "date": {"type": "string", "format": "date", "description": "The site's day (YYYY-MM-DD)."}
        }}));
    s.insert("VipGraphRequest".into(), json!({"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "world": {"type": "string", "nullable": true, "description": "Only this world (empty = every world)."}
    }}));
    s.insert("VipGraph".into(), json!({"type": "object", "required": ["success", "name", "world", "graph_data", "stats", "points"], "properties": {
        "success": {"type": "boolean"}, "name": {"type": "string"}, "world": {"type": "string", "nullable": true},
        "graph_data": {"type": "string", "description": "The replaced system's Plotly figure as JSON text: `EXP Gain` bars and an `EXP Trend` spline on `y`, `Online Time (min)` on `y2` (hover: online minutes / minutes since the previous read); periods labelled as in PlotlyFigureText."},
        "points": {"type": "array", "description": "worldpool's form: each read, oldest first, with running totals.", "items": {"type": "object",
            "required": ["update_time", "date", "delta_exp", "delta_online", "total_exp", "total_online"],
            "properties": {
                "update_time": time, "date": {"type": "string", "format": "date"},
                "delta_exp": {"type": "integer"}, "delta_online": {"type": "integer"},
                "total_exp": {"type": "integer", "description": "Experience gained since the first point."},
                "total_online": {"type": "integer", "description": "Minutes online since the first point."}
            }}},
        "stats": {"type": "object", "required": ["total_exp", "avg_exp", "max_exp", "total_online", "avg_online", "updates"], "properties": {
            "total_exp": {"type": "integer"}, "avg_exp": {"type": "number", "description": "Per update, 2 decimals."},
            "max_exp": {"type": "integer"}, "total_online": {"type": "integer"},
            "avg_online": {"type": "number", "description": "Per update, 2 decimals."}, "updates": {"type": "integer"}
        }}
    }}));
    s.insert("Health".into(), json!({"type": "object", "required": ["status", "checks", "timestamp"], "properties": {
        "status": {"type": "string", "enum": ["healthy", "degraded", "unhealthy"]},
        "reason": {"type": "string", "description": "Why not healthy: each fatal or backing-off worker, the store; absent when healthy."},
        "timestamp": {"type": "string", "format": "date-time"},
        "checks": {"type": "object", "properties": {
            "scraper_alive": {"type": "boolean", "description": "Some worker process exists."},
            "scraper_state": {"type": "string"},
            "workers": {"type": "integer"}, "workers_running": {"type": "integer"},
            "workers_backoff": {"type": "integer"}, "workers_fatal": {"type": "integer"},
            "store": {"type": "string", "enum": ["ok", "unreachable", "not_configured"]},
            "database_accessible": {"type": "boolean"},
            "last_update": {"type": "string", "nullable": true, "description": "Newest update of the deltas, site-local."}
        }}
    }}));
    let mb = |d: &str| json!({"type": "number", "description": d});
    s.insert("MemUsage".into(), json!({"type": "object", "required": ["process", "system"], "properties": {
        "process": {"type": "object", "required": ["rss_bytes", "rss_mb", "percent", "pss_bytes", "pss_mb", "pss_percent", "processes"], "properties": {
            "rss_bytes": {"type": "integer", "description": "RSS of the supervisor plus every live worker (shared pages count once per process)."},
            "rss_mb": mb("The same in MiB, 2 decimals."),
            "percent": mb("rss_bytes / the machine's memory × 100, 2 decimals."),
            "pss_bytes": {"type": "integer", "description": "PSS sum: what the pool really costs."},
            "pss_mb": mb("In MiB."), "pss_percent": mb("Of the machine's memory."),
            "processes": {"type": "integer"},
            "supervisor_rss_bytes": {"type": "integer"}, "supervisor_pss_bytes": {"type": "integer"}
        }},
        "system": {"type": "object", "properties": {
            "total_bytes": {"type": "integer"}, "total_mb": mb("MemTotal in MiB."), "total_gb": mb("In GiB."),
            "available_bytes": {"type": "integer"}, "available_mb": mb("MemAvailable in MiB."), "available_gb": mb("In GiB."),
            "used_bytes": {"type": "integer"}, "used_mb": mb("Total − available, MiB."), "used_gb": mb("In GiB."),
            "percent": mb("Used / total × 100.")
        }}
    }}));
    s.insert("ConsoleLine".into(), json!({"type": "object", "properties": {
        "time": time, "world": {"type": "string"},
        "level": {"type": "string", "enum": ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]},
        "message": {"type": "string"}, "stream": {"type": "string"},
        "line": {"type": "string", "description": "`[YYYY-MM-DD HH:MM:SS] [LEVEL] [world] message`."}
    }}));
    makers_and_uploads_schemas(&mut s);
    s
}

/// `/api/makers/…` and `/api/upload/…`.
fn makers_and_uploads(p: &mut Map<String, Value>) {
    let name = query("name", "Only this maker.", "string");
    let world = query("world", "Only this world.", "string");
    p.insert("/api/makers/list".into(), json!({"get": {
        "operationId": "makersList", "tags": ["compatibility", "makers"],
        "summary": "The makers (characters read like watched players, tied to a main character), by world then name.",
        "parameters": [world.clone()],
        "responses": store_errors(responses("200", ok("Makers.", json!({"type": "object", "required": ["makers"], "properties": {"makers": {"type": "array", "items": {"$ref": "#/components/schemas/Maker"}}}}))))
    }}));
    p.insert("/api/makers/main".into(), json!({"get": {
        "operationId": "makersMain", "tags": ["compatibility", "makers"],
        "summary": "The rows of `ref_main_maker.csv` as stored: each maker whose main character is known.",
        "responses": store_errors(responses("200", ok("Main characters and their makers.", json!({"type": "object", "required": ["main_makers"], "properties": {"main_makers": {"type": "array", "items": {"$ref": "#/components/schemas/MainMaker"}}}}))))
    }}));
    p.insert("/api/makers/deltas".into(), json!({"get": {
        "operationId": "makersDeltas", "tags": ["compatibility", "makers"],
        "summary": "The makers' deltas with minutes online (`delta_online` ≠ 0), newest first.",
        "parameters": [limit(super::vip::VIP_DELTAS_DEFAULT_LIMIT), name, world],
        "responses": store_errors(responses("200", ok("Deltas.", json!({"type": "object", "required": ["deltas"], "properties": {"deltas": {"type": "array", "items": {"$ref": "#/components/schemas/VipDelta"}}}}))))
    }}));
    p.insert("/api/makers/graph".into(), json!({"post": {
        "operationId": "makersGraph", "tags": ["compatibility", "makers"],
        "summary": "A character's reads as a Plotly figure serialized as a string (`JSON.parse(graph_data)` gives `{data, layout}`: experience bars, minutes online line), with statistics. A character without reads gets an empty figure.",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/VipRequest"}}}},
        "responses": store_errors(responses("200", ok("Figure and statistics.", json!({"$ref": "#/components/schemas/MakerGraph"}))))
    }}));
    for (path, id, file) in [
        ("/api/upload/deltas", "uploadDeltas", "deltas.csv"),
        ("/api/upload/exps", "uploadExps", "exps.csv"),
        ("/api/upload/makers", "uploadMakers", "ref_main_maker.csv"),
    ] {
        let mut r = responses(
            "200",
            ok(
                "Imported.",
                json!({"$ref": "#/components/schemas/Uploaded"}),
            ),
        );
        r.insert("400".into(), error("Not a multipart form, no `file`, not a `.csv`, or a bad line (file, line and column named); nothing written."));
        r.insert(
            "401".into(),
            error("A token is configured and `password` (or the bearer header) is not it."),
        );
        r.insert(
            "413".into(),
            error(&format!(
                "The body is larger than {} MiB.",
                super::upload::UPLOAD_MAX_BYTES / (1024 * 1024)
            )),
        );
        r.insert(
            "503".into(),
            error("No store configured, or the store is unreachable."),
        );
        p.insert(path.into(), json!({"post": {
            "operationId": id, "tags": ["compatibility", "uploads"],
            "summary": format!("Import a `{file}` through the code of `worldpool import`: one transaction, rows already stored are not written again, a bad line fails the whole upload. With a token configured `password` must be it; without one (loopback only) any password is accepted."),
            "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary", "description": format!("The CSV ({file}).")},
                "password": {"type": "string", "description": "The token (`WORLDPOOL_API_TOKEN`)."},
                "world": {"type": "string", "description": "World of rows without one (old files)."},
                "guild": {"type": "string", "description": "Guild of rows without one (old files)."}
            }}}}},
            "responses": Value::Object(r)
        }}));
    }
}

fn makers_and_uploads_schemas(s: &mut Map<String, Value>) {
    s.insert("Maker".into(), json!({"type": "object", "required": ["name", "world"], "properties": {
        "name": {"type": "string"}, "world": {"type": "string"},
        "main": {"type": "string", "nullable": true, "description": "Its main character (null: not known)."},
        "main_world": {"type": "string", "nullable": true}
    }}));
    s.insert("MainMaker".into(), json!({"type": "object", "required": ["main", "main_world", "maker", "maker_world"], "properties": {
        "main": {"type": "string"}, "main_world": {"type": "string"},
        "maker": {"type": "string"}, "maker_world": {"type": "string"}
    }}));
    s.insert("MakerGraph".into(), json!({"type": "object", "required": ["success", "name", "world", "graph_data", "stats"], "properties": {
        "success": {"type": "boolean"}, "name": {"type": "string"}, "world": {"type": "string"},
        "graph_data": {"type": "string", "description": "A Plotly figure `{data, layout}` serialized as JSON."},
        "stats": {"type": "object", "required": ["total_exp", "avg_exp", "max_exp", "total_online", "avg_online", "updates"]}
    }}));
    s.insert("Uploaded".into(), json!({"type": "object", "required": ["success", "records", "written", "message"], "properties": {
        "success": {"type": "boolean"},
        "records": {"type": "integer", "description": "Rows read from the file."},
        "written": {"type": "integer", "description": "Rows written (the others were stored already)."},
        "message": {"type": "string"}
    }}));
}
