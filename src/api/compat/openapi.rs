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

/// Paths of the compatibility endpoints.
pub(in crate::api) fn paths() -> Map<String, Value> {
    let mut p = Map::new();
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
    p
}

/// Schemas of the compatibility endpoints.
pub(in crate::api) fn schemas() -> Map<String, Value> {
    let time = json!({"$ref": "#/components/schemas/LegacyTime"});
    let mut s = Map::new();
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
