//! An offline copy of the ranking site (axum on 127.0.0.1), and `worldpool demo`.
//!
//! Library API for tests, benchmarks and the demo: [`DemoSite::start`] with
//! [`DemoSiteOptions`]; [`DemoSite::advance`] makes one site update;
//! [`DemoSite::set_fault`] injects 503s, slow answers, truncated HTML, 429
//! with `Retry-After` (also over HTTP: `POST /_faults` with e.g.
//! `{"kind":"status503","times":2}` or
//! `{"kind":"too_many_requests","times":1,"retry_after":"2"}`,
//! `DELETE /_faults`, `POST /_advance`, `POST /_reset`). It counts every
//! page request ([`DemoSite::requests_by_path`],
//! [`DemoSite::peak_per_second`], [`DemoSite::peak_in_flight`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::FixedOffset;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::Mode;
use crate::site::Clock;

pub mod counter;
mod data;
pub mod render;

pub use data::{Data, MakerOf, Sizing};
pub use render::Layout;

/// The profile that reads [`Layout::Alt`] (its `[site.selectors]` go into
/// [`DemoSite::config_toml`] for that layout).
pub const ALT_LAYOUT_PROFILE: &str = include_str!("../../config/examples/alt-layout.toml");

/// A fault the site injects into its answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// The status page answers 503 this many times.
    Status503 {
        /// How many answers.
        times: u32,
    },
    /// Guild pages answer 503 this many times.
    Guild503 {
        /// How many answers.
        times: u32,
    },
    /// Every answer waits this long first.
    Slow {
        /// Milliseconds.
        millis: u64,
    },
    /// Guild pages are cut in the middle this many times.
    TruncatedHtml {
        /// How many answers.
        times: u32,
    },
    /// Player pages answer 503 this many times.
    Player503 {
        /// How many answers.
        times: u32,
    },
    /// Pages answer `429 Too Many Requests` with this `Retry-After`
    /// (seconds, or an HTTP date) this many times.
    TooManyRequests {
        /// How many answers.
        times: u32,
        /// The `Retry-After` header's value.
        retry_after: String,
        /// Only requests of this path (`/guild.php`); every page when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
}

/// Options of [`DemoSite::start`].
#[derive(Debug, Clone)]
pub struct DemoSiteOptions {
    /// Port on 127.0.0.1 (0 = a free one).
    pub port: u16,
    /// Latency added to every answer.
    pub latency: Duration,
    /// Auto-advance period (`None`: only [`DemoSite::advance`]).
    pub tick: Option<Duration>,
    /// A generated dataset; `None` is the hand-made realistic one.
    pub sized: Option<Sizing>,
    /// The clock of the status page times.
    pub now: Clock,
    /// The site's UTC offset in minutes (default -180).
    pub utc_offset_minutes: i32,
    /// The page layout.
    pub layout: Layout,
    /// Pages each guild of a generated dataset is split into (`rel="next"`).
    pub guild_pages: usize,
}

impl Default for DemoSiteOptions {
    fn default() -> Self {
        DemoSiteOptions {
            port: 0,
            latency: Duration::ZERO,
            tick: None,
            sized: None,
            now: Clock::System,
            utc_offset_minutes: -180,
            layout: Layout::Table,
            guild_pages: 1,
        }
    }
}

#[derive(Debug, Default)]
struct Faults {
    status503: u32,
    guild503: u32,
    slow: Duration,
    truncated: u32,
    player503: u32,
}

#[derive(Debug)]
struct Shared {
    data: Mutex<Data>,
    faults: Mutex<Faults>,
    served: AtomicU64,
    /// Player page requests by lowercase name.
    player_hits: Mutex<HashMap<String, u64>>,
    latency: Duration,
    clock: Clock,
    layout: Layout,
    counter: Arc<counter::Counter>,
}

impl Shared {
    fn data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn set_fault(&self, fault: Fault) {
        let mut f = self.faults();
        match fault {
            Fault::Status503 { times } => f.status503 = times,
            Fault::Guild503 { times } => f.guild503 = times,
            Fault::Slow { millis } => f.slow = Duration::from_millis(millis),
            Fault::TruncatedHtml { times } => f.truncated = times,
            Fault::Player503 { times } => f.player503 = times,
            Fault::TooManyRequests {
                times,
                retry_after,
                path,
            } => self.counter.set_too_many(times, retry_after, path),
        }
    }
    fn advance(&self) -> u64 {
        let now = self.clock.now();
        let mut d = self.data();
        let names: Vec<String> = d.worlds.iter().map(|w| w.name.clone()).collect();
        for n in &names {
            d.advance_world(n, now);
        }
        d.worlds.iter().map(|w| w.advances).max().unwrap_or(0)
    }
}

/// A running demo site.
#[derive(Debug)]
pub struct DemoSite {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// A player's numbers of the day as its page shows them (for tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoDay {
    /// The day.
    pub date: chrono::NaiveDate,
    /// Raw experience of the day.
    pub raw_xp: i64,
    /// Minutes online that day.
    pub online_minutes: i64,
}

/// One player as the site shows it (for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoPlayer {
    /// Guild.
    pub guild: String,
    /// Name.
    pub name: String,
    /// Experience gained today.
    pub experience: i64,
}

impl DemoSite {
    /// Bind 127.0.0.1 and serve.
    pub async fn start(options: DemoSiteOptions) -> anyhow::Result<DemoSite> {
        let offset = FixedOffset::east_opt(options.utc_offset_minutes * 60)
            .ok_or_else(|| anyhow::anyhow!("bad utc offset"))?;
        let now = options.now.now();
        let data = match options.sized {
            Some(size) => {
                let mut d = Data::sized(size, now, offset);
                if options.guild_pages > 1 {
                    let per_page = size.players_per_guild.div_ceil(options.guild_pages).max(1);
                    for g in d.worlds.iter_mut().flat_map(|w| w.guilds.iter_mut()) {
                        g.page_size = Some(per_page);
                    }
                }
                d
            }
            None => Data::realistic(now, offset),
        };
        let shared = Arc::new(Shared {
            data: Mutex::new(data),
            faults: Mutex::new(Faults::default()),
            served: AtomicU64::new(0),
            player_hits: Mutex::new(HashMap::new()),
            latency: options.latency,
            clock: options.now.clone(),
            layout: options.layout,
            counter: Arc::new(counter::Counter::default()),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port)).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let app = app(shared.clone());
        let token = stop.clone();
        let ticker = options.tick.map(|period| {
            let shared = shared.clone();
            let token = stop.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = token.cancelled() => break,
                        _ = tokio::time::sleep(period) => { shared.advance(); }
                    }
                }
            })
        });
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "demo site stopped with an error");
            }
            if let Some(t) = ticker {
                t.abort();
            }
        });
        tracing::info!(%addr, "demo site listening");
        Ok(DemoSite {
            addr,
            shared,
            stop,
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// One site update for every world; returns the number of updates so far.
    pub fn advance(&self) -> u64 {
        self.shared.advance()
    }

    /// One site update of one world; false when there is no such world.
    pub fn advance_world(&self, name: &str) -> bool {
        let now = self.shared.clock.now();
        self.shared.data().advance_world(name, now)
    }

    /// World names, in order.
    pub fn world_names(&self) -> Vec<String> {
        self.shared
            .data()
            .worlds
            .iter()
            .map(|w| w.name.clone())
            .collect()
    }

    /// Guilds of a world as a config lists them (unknown guilds included).
    pub fn guilds_of(&self, world: &str) -> Vec<String> {
        let d = self.shared.data();
        d.world(world)
            .map(|w| {
                w.guilds
                    .iter()
                    .map(|g| g.name.clone())
                    .chain(w.unknown_guilds.iter().cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `Daily Raw Ranking` time of a world.
    pub fn update_time(&self, world: &str) -> Option<chrono::DateTime<FixedOffset>> {
        self.shared.data().world(world).map(|w| w.update_time)
    }

    /// Every (guild, player) row the site shows for a world, guilds in order.
    pub fn players(&self, world: &str) -> Vec<DemoPlayer> {
        let d = self.shared.data();
        let Some(w) = d.world(world) else {
            return Vec::new();
        };
        w.guilds
            .iter()
            .flat_map(|g| {
                g.members.iter().filter_map(|n| {
                    w.players.get(n).map(|m| DemoPlayer {
                        guild: g.name.clone(),
                        name: n.clone(),
                        experience: m.experience,
                    })
                })
            })
            .collect()
    }

    /// A player's numbers of the day, as its page shows them (`None`: the
    /// site does not know the name).
    pub fn player_day(&self, name: &str) -> Option<DemoDay> {
        let d = self.shared.data();
        d.player(name).map(|(w, m)| DemoDay {
            date: w.day,
            raw_xp: m.experience,
            online_minutes: m.online_minutes,
        })
    }

    /// Players of a world that are in none of its guilds.
    pub fn guildless(&self, world: &str) -> Vec<String> {
        let d = self.shared.data();
        d.world(world)
            .map(|w| {
                w.players
                    .keys()
                    .filter(|n| !w.guilds.iter().any(|g| g.members.contains(n)))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The players [`DemoSite::config_toml`] watches in a world.
    pub fn watched(&self, world: &str) -> Vec<String> {
        self.shared
            .data()
            .world(world)
            .map(|w| w.watch.clone())
            .unwrap_or_default()
    }

    /// The makers of a world (realistic dataset).
    pub fn makers(&self, world: &str) -> Vec<MakerOf> {
        self.shared
            .data()
            .world(world)
            .map(|w| w.makers.clone())
            .unwrap_or_default()
    }

    /// Every world's makers as the replaced system's `ref_main_maker.csv`
    /// (`main,main_world,maker,maker_world`): what `worldpool demo` imports.
    pub fn main_makers_csv(&self) -> String {
        let d = self.shared.data();
        let mut out = csv::Writer::from_writer(Vec::new());
        let mut rows = vec![["main", "main_world", "maker", "maker_world"].map(String::from)];
        for w in &d.worlds {
            for m in &w.makers {
                rows.push([
                    m.main.clone(),
                    m.main_world.clone(),
                    m.name.clone(),
                    w.name.clone(),
                ]);
            }
        }
        for row in rows {
            // Writing into memory cannot fail.
            let _ = out.write_record(&row);
        }
        out.into_inner()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Requests of a player's page so far (names compared ignoring case).
    pub fn player_page_hits(&self, name: &str) -> u64 {
        let hits = self
            .shared
            .player_hits
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        hits.get(&name.trim().to_lowercase()).copied().unwrap_or(0)
    }

    /// Inject a fault.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.set_fault(fault);
    }

    /// Remove every fault.
    pub fn clear_faults(&self) {
        *self.shared.faults() = Faults::default();
        self.shared.counter.set_too_many(0, String::new(), None);
    }

    /// Requests per path (`/status`, `/guild.php`, …) since the start or
    /// the last [`reset_counters`](Self::reset_counters).
    pub fn requests_by_path(&self) -> std::collections::BTreeMap<String, u64> {
        self.shared.counter.by_path()
    }

    /// Most requests that arrived within any one second (a sliding
    /// window, not calendar seconds).
    pub fn peak_per_second(&self) -> u64 {
        self.shared.counter.peak_in_window(Duration::from_secs(1))
    }

    /// Most requests in flight at once.
    pub fn peak_in_flight(&self) -> u64 {
        self.shared.counter.peak_in_flight()
    }

    /// Every request's arrival, oldest first.
    pub fn arrivals(&self) -> Vec<counter::Arrival> {
        self.shared.counter.arrivals()
    }

    /// When each `429` fault answer was sent.
    pub fn too_many_sent(&self) -> Vec<std::time::Instant> {
        self.shared.counter.too_many_sent()
    }

    /// Forget every count (faults stay).
    pub fn reset_counters(&self) {
        self.shared.counter.reset();
    }

    /// Requests answered so far.
    pub fn requests_served(&self) -> u64 {
        self.shared.served.load(Ordering::Relaxed)
    }

    /// The daily reset: every counter zeroed (the next update shows it).
    pub fn trigger_reset(&self) {
        self.shared.data().reset();
    }

    /// The layout it serves.
    pub fn layout(&self) -> Layout {
        self.shared.layout
    }

    /// A full worldpool config pointing at this site: its worlds, guilds
    /// and (realistic dataset) two watched players per world, a short poll
    /// interval, quick retries, and for
    /// [`Layout::Alt`] the `[site.selectors]` of
    /// `config/examples/alt-layout.toml` (the table layout reads with the
    /// defaults).
    pub fn config_toml(&self, storage_url: &str, mode: Mode) -> String {
        let d = self.shared.data();
        let offset = d.offset.local_minus_utc() / 60;
        let mut out = format!(
            "# Generated by the worldpool demo site.\n[pool]\nmode = \"{}\"\nstop_grace = \"5s\"\n\n[site]\nbase_url = \"{}\"\nrequest_timeout = \"5s\"\nrate_limit = 0.0\nmax_concurrent = 4\nretries = 3\nretry_backoff = \"50ms\"\npoll_interval = \"1s\"\npoll_jitter = 0.2\nutc_offset = \"{}{:02}:{:02}\"\n\n[storage]\nurl = {}\n\n",
            match mode {
                Mode::Pool => "pool",
                Mode::Single => "single",
            },
            self.base_url(),
            if offset < 0 { "-" } else { "+" },
            offset.abs() / 60,
            offset.abs() % 60,
            toml_str(storage_url),
        );
        if self.shared.layout == Layout::Alt {
            out.push_str(&alt_selectors_toml());
        }
        for w in &d.worlds {
            let guilds: Vec<String> = w
                .guilds
                .iter()
                .map(|g| toml_str(&g.name))
                .chain(w.unknown_guilds.iter().map(|g| toml_str(g)))
                .collect();
            out.push_str(&format!(
                "[[worlds]]\nname = {}\nguilds = [{}]\n",
                toml_str(&w.name),
                guilds.join(", ")
            ));
            if !w.watch.is_empty() {
                let watch: Vec<String> = w.watch.iter().map(|n| toml_str(n)).collect();
                out.push_str(&format!("watch = [{}]\n", watch.join(", ")));
            }
            out.push('\n');
        }
        out
    }

    /// Stop serving and wait for the server task.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// `[site.selectors]` of [`ALT_LAYOUT_PROFILE`], as TOML.
pub fn alt_selectors_toml() -> String {
    let selectors = toml::from_str::<toml::Table>(ALT_LAYOUT_PROFILE)
        .ok()
        .and_then(|t| t.get("site")?.get("selectors")?.as_table().cloned())
        .unwrap_or_default();
    let body = toml::to_string(&selectors).unwrap_or_default();
    format!("[site.selectors]\n{body}\n")
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The router.
fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/guild.php", get(guild))
        .route("/player", get(player))
        .route("/_faults", post(post_fault).delete(delete_faults))
        .route("/_advance", post(post_advance))
        .route("/_reset", post(post_reset))
        .layer(axum::middleware::from_fn_with_state(
            shared.counter.clone(),
            counter::count,
        ))
        .with_state(shared)
}

async fn before(shared: &Shared) {
    shared.served.fetch_add(1, Ordering::Relaxed);
    let slow = shared.faults().slow;
    let wait = shared.latency + slow;
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

fn take(counter: &mut u32) -> bool {
    if *counter > 0 {
        *counter -= 1;
        true
    } else {
        false
    }
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    before(&shared).await;
    if take(&mut shared.faults().status503) {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    let now = shared.clock.now();
    let page = render::status_page(&shared.data(), now, shared.layout);
    Html(page).into_response()
}

async fn guild(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    before(&shared).await;
    if take(&mut shared.faults().guild503) {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    let truncate = take(&mut shared.faults().truncated);
    let page = {
        let d = shared.data();
        let world = q.get("world").and_then(|w| d.world(w));
        let want = q.get("guild").map(|g| g.trim().to_lowercase());
        let guild = world.and_then(|w| {
            w.guilds
                .iter()
                .find(|g| Some(g.name.to_lowercase()) == want)
        });
        let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        render::guild_page_in(
            shared.layout,
            world,
            guild.filter(|_| world.is_some()),
            page,
        )
    };
    if truncate {
        let mut cut = page.len() * 3 / 5;
        while !page.is_char_boundary(cut) {
            cut -= 1;
        }
        return Html(page[..cut].to_string()).into_response();
    }
    Html(page).into_response()
}

async fn player(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    before(&shared).await;
    let name = q.get("name").cloned().unwrap_or_default();
    {
        let mut hits = shared.player_hits.lock().unwrap_or_else(|e| e.into_inner());
        *hits.entry(name.trim().to_lowercase()).or_insert(0) += 1;
    }
    if take(&mut shared.faults().player503) {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    let page = {
        let d = shared.data();
        render::player_page(shared.layout, d.player(&name), name.trim())
    };
    Html(page).into_response()
}

async fn post_fault(
    State(shared): State<Arc<Shared>>,
    axum::Json(fault): axum::Json<Fault>,
) -> StatusCode {
    shared.set_fault(fault);
    StatusCode::NO_CONTENT
}

async fn delete_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    *shared.faults() = Faults::default();
    shared.counter.set_too_many(0, String::new(), None);
    StatusCode::NO_CONTENT
}

async fn post_advance(State(shared): State<Arc<Shared>>) -> String {
    format!("{}\n", shared.advance())
}

async fn post_reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.data().reset();
    StatusCode::NO_CONTENT
}
