//! `worldpool import`: read a replaced system's data — its data folder or
//! its SQLite file — and write it into the store in one transaction.
//!
//! **A data folder** holds any of (each optional, at least one present):
//!
//! | file | columns (header row; `_` and spaces are the same, case ignored) |
//! |---|---|
//! | `exps.csv` | `name, exp, last update[, world, guild]` |
//! | `deltas.csv` | `name, deltaexp, update time[, world, guild]` |
//! | `vips.txt` | `name,world` per line (a `name,world` header is skipped) |
//! | `vipsdata.csv` | `name, world, today_exp \| raw_xp, today_online \| online_minutes[, date][, update_time]` |
//! | `deltavip.csv` | `name, world[, date], delta_exp, delta_online, update_time` |
//! | `last_reset.txt` | `YYYY-MM-DD`: the day of the last daily reset |
//! | `ref_main_maker.csv` | `main, main_world, maker, maker_world`: the makers and their mains |
//!
//! `exp` may also be `experience`, `deltaexp` may be `delta`. Old CSVs
//! without `world`/`guild` take `--default-world`/`--default-guild`; without
//! them the import fails naming the file and the first line lacking one.
//!
//! **A SQLite file** (recognised by its header) holds the tables `players`
//! (`name, exp, last_update, world, guild`), `deltas` (`name, deltaexp,
//! update_time, world, guild`), `vips` (`name, world`), `vip_data` (`name,
//! world, today_exp, today_online[, date, update_time]`), `vip_deltas`
//! (`name, world, date, delta_exp, delta_online, update_time`), `makers`
//! (`name, world`), `maker_data` and `maker_deltas` (the makers' reads, the
//! columns of `vip_data` and `vip_deltas`), with the same aliases; `status_data` and `scraping_config` are counted, not imported
//! (the status page is kept again at the next check; the world list lives in
//! the config file). A `last_reset.txt` and a `ref_main_maker.csv` beside
//! the file are read too.
//!
//! **One file's bytes** ([`run_file`], what `POST /api/upload/…` does): a
//! CSV of one of the kinds above ([`CsvFile`]), read by the same code, with
//! the same errors, written the same way.
//!
//! **Values.** Experience is a whole number (`123` or `123.0`); online time
//! is minutes (rounded). Times are read by [`crate::legacy::parse_time`]:
//! naive times are site-local (`[site] utc_offset`). A daily VIP row without
//! `update_time` takes the file's modification time, and without `date` the
//! day of its update time. A bad value fails the whole import naming file,
//! line (or table and row) and column; nothing is written.
//!
//! **What is written** (see [`crate::store::import`]): players by (world,
//! name), the newest row wins; deltas by (world, name, update time), each
//! world's deltas chained to the world's previous update time in the file;
//! one run per imported update (`source = 'import'`); watched players; VIP
//! data; makers (a maker listed twice with two different mains is an error
//! naming the second line); the reset state of every imported world (the
//! last reset boundary from `last_reset.txt` at `[site] reset_time`, the
//! last update from the data). Running it twice writes nothing the second
//! time.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, Utc};

use crate::legacy;
use crate::store::{
    ImportBatch, ImportDelta, ImportMaker, ImportPlayer, ImportWritten, Store, StoreError,
    VipDaily, VipDelta,
};

/// What to import and how to read it.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// A data folder or a SQLite file.
    pub from: PathBuf,
    /// World of rows that have none.
    pub default_world: Option<String>,
    /// Guild of rows that have none.
    pub default_guild: Option<String>,
    /// The site's time zone: naive times are read in it.
    pub site_offset: FixedOffset,
    /// Local time of the daily reset, minutes after midnight.
    pub reset_minutes: u32,
}

/// Why an import failed (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file or folder that cannot be read.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// A value that cannot be read.
    #[error("{place}, column `{column}`: {message}")]
    BadValue {
        /// `deltas.csv line 17` or `old.db table deltas row 17`.
        place: String,
        /// The column.
        column: String,
        /// What is wrong.
        message: String,
    },
    /// A required column is missing.
    #[error("{file}: no `{column}` column (found: {found})")]
    MissingColumn {
        /// The file (and table).
        file: String,
        /// The column.
        column: String,
        /// The columns that are there.
        found: String,
    },
    /// A row without world or guild, and no default for it.
    #[error(
        "{place} has no `{column}` and no default was given: pass --default-{column} NAME \
         (an upload: a `{column}` form field) (old files without world/guild columns need both \
         defaults)"
    )]
    NoDefault {
        /// The first such line.
        place: String,
        /// `world` or `guild`.
        column: String,
    },
    /// Nothing importable at that path.
    #[error(
        "{path}: nothing to import: expected a data folder with exps.csv, deltas.csv, vips.txt, \
         vipsdata.csv, deltavip.csv, last_reset.txt or ref_main_maker.csv, or the replaced \
         system's SQLite file"
    )]
    Nothing {
        /// The path.
        path: String,
    },
    /// The store refused or failed: nothing was written.
    #[error("writing into the store failed, nothing was imported: {0}")]
    Store(#[from] StoreError),
}

/// What was read, ready to be written.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The rows to write.
    pub batch: ImportBatch,
    /// Rows read per table (before removing duplicates).
    pub read: BTreeMap<&'static str, usize>,
    /// Things worth telling (skipped tables, duplicates dropped).
    pub notes: Vec<String>,
}

/// The outcome of an import.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Where it came from.
    pub from: PathBuf,
    /// Nothing was written (dry run).
    pub dry_run: bool,
    /// Rows read per table.
    pub read: BTreeMap<&'static str, usize>,
    /// Rows written (or, in a dry run, that would be).
    pub written: ImportWritten,
    /// Notes.
    pub notes: Vec<String>,
}

/// Read `options.from` and write it into `store` in one transaction (rolled
/// back with `dry_run`).
pub async fn run(
    store: &Store,
    options: &ImportOptions,
    dry_run: bool,
) -> Result<Summary, ImportError> {
    let opts = options.clone();
    let loaded = tokio::task::spawn_blocking(move || read(&opts))
        .await
        .map_err(|e| ImportError::Read {
            path: options.from.display().to_string(),
            message: format!("reader task failed: {e}"),
        })??;
    let written = store.import(&loaded.batch, dry_run).await?;
    Ok(Summary {
        from: options.from.clone(),
        dry_run,
        read: loaded.read,
        written,
        notes: loaded.notes,
    })
}

/// One CSV file of a replaced system's data folder, read on its own (an
/// upload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvFile {
    /// `exps.csv`: the players' latest experience.
    Exps,
    /// `deltas.csv`: the deltas.
    Deltas,
    /// `vipsdata.csv`: the watched players' daily numbers.
    VipsData,
    /// `deltavip.csv`: the watched players' deltas.
    DeltaVip,
    /// `ref_main_maker.csv`: the makers and their mains.
    MainMakers,
}

impl CsvFile {
    /// Its name in a data folder.
    pub fn file_name(self) -> &'static str {
        match self {
            CsvFile::Exps => "exps.csv",
            CsvFile::Deltas => "deltas.csv",
            CsvFile::VipsData => "vipsdata.csv",
            CsvFile::DeltaVip => "deltavip.csv",
            CsvFile::MainMakers => "ref_main_maker.csv",
        }
    }

    fn kind(self) -> Kind {
        match self {
            CsvFile::Exps => Kind::Players,
            CsvFile::Deltas => Kind::Deltas,
            CsvFile::VipsData => Kind::VipDaily,
            CsvFile::DeltaVip => Kind::VipDeltas,
            CsvFile::MainMakers => Kind::MainMakers,
        }
    }

    /// The store table its rows are counted under in [`Summary::read`].
    pub fn table(self) -> &'static str {
        self.kind().table()
    }
}

/// Read one CSV file's bytes as `file` (errors name it `name`) and write it
/// into `store` in one transaction (rolled back with `dry_run`): the same
/// reading, checks and writing as a data folder's file. `options.from` is
/// not read.
pub async fn run_file(
    store: &Store,
    file: CsvFile,
    name: &str,
    bytes: impl AsRef<[u8]> + Send + 'static,
    options: &ImportOptions,
    dry_run: bool,
) -> Result<Summary, ImportError> {
    let (opts, label) = (options.clone(), name.to_string());
    let loaded =
        tokio::task::spawn_blocking(move || read_file(file, &label, bytes.as_ref(), &opts))
            .await
            .map_err(|e| ImportError::Read {
                path: name.to_string(),
                message: format!("reader task failed: {e}"),
            })??;
    let written = store.import(&loaded.batch, dry_run).await?;
    Ok(Summary {
        from: PathBuf::from(name),
        dry_run,
        read: loaded.read,
        written,
        notes: loaded.notes,
    })
}

/// Read one CSV file's bytes as `file` (no store involved); errors name it
/// `name`.
pub fn read_file(
    file: CsvFile,
    name: &str,
    bytes: &[u8],
    options: &ImportOptions,
) -> Result<Loaded, ImportError> {
    let mut r = Reader::new(options);
    r.csv_from(name, name, bytes, None, file.kind())?;
    Ok(r.finish())
}

/// Read a data folder or a SQLite file (no store involved).
pub fn read(options: &ImportOptions) -> Result<Loaded, ImportError> {
    let path = &options.from;
    let meta = std::fs::metadata(path).map_err(|e| ImportError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let mut r = Reader::new(options);
    if meta.is_dir() {
        r.folder(path)?;
    } else if is_sqlite(path) {
        r.sqlite(path)?;
        if let Some(dir) = path.parent() {
            let reset = dir.join("last_reset.txt");
            if reset.is_file() {
                r.last_reset(&reset)?;
            }
            let makers = dir.join(CsvFile::MainMakers.file_name());
            if makers.is_file() {
                r.csv(&makers, Kind::MainMakers)?;
            }
        }
    } else {
        return Err(ImportError::Nothing {
            path: path.display().to_string(),
        });
    }
    if r.files == 0 {
        return Err(ImportError::Nothing {
            path: path.display().to_string(),
        });
    }
    Ok(r.finish())
}

fn is_sqlite(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"SQLite format 3\0"
}

/// Header names as the replaced system varied them: case, `_` or space.
fn normal(name: &str) -> String {
    name.trim().to_lowercase().replace('_', " ")
}

/// A table's columns, found by any of their names.
struct Columns {
    file: String,
    names: Vec<String>,
}

impl Columns {
    fn new(file: &str, names: Vec<String>) -> Columns {
        Columns {
            file: file.to_string(),
            names: names.iter().map(|n| normal(n)).collect(),
        }
    }

    fn find(&self, aliases: &[&str]) -> Option<usize> {
        aliases
            .iter()
            .find_map(|a| self.names.iter().position(|n| *n == normal(a)))
    }

    fn need(&self, aliases: &[&str]) -> Result<usize, ImportError> {
        self.find(aliases)
            .ok_or_else(|| ImportError::MissingColumn {
                file: self.file.clone(),
                column: aliases[0].to_string(),
                found: self
                    .names
                    .iter()
                    .filter(|n| !n.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// One row being read, with where it is for error messages.
struct RowRef<'a> {
    place: String,
    cells: &'a [String],
}

impl RowRef<'_> {
    fn cell(&self, i: Option<usize>) -> Option<&str> {
        i.and_then(|i| self.cells.get(i))
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    fn text(&self, i: usize, column: &str) -> Result<String, ImportError> {
        self.cell(Some(i))
            .map(String::from)
            .ok_or_else(|| self.bad(column, "is empty"))
    }

    fn bad(&self, column: &str, message: impl Into<String>) -> ImportError {
        ImportError::BadValue {
            place: self.place.clone(),
            column: column.to_string(),
            message: message.into(),
        }
    }

    fn int(&self, i: usize, column: &str) -> Result<i64, ImportError> {
        let text = self.text(i, column)?;
        parse_int(&text).ok_or_else(|| self.bad(column, format!("`{text}` is not a whole number")))
    }

    fn minutes(&self, i: usize, column: &str) -> Result<i64, ImportError> {
        let text = self.text(i, column)?;
        text.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && x.abs() < 1e12)
            .map(|x| x.round() as i64)
            .ok_or_else(|| self.bad(column, format!("`{text}` is not a number of minutes")))
    }

    fn time(
        &self,
        i: usize,
        column: &str,
        site: FixedOffset,
    ) -> Result<DateTime<FixedOffset>, ImportError> {
        let text = self.text(i, column)?;
        legacy::parse_time(&text, site).ok_or_else(|| {
            self.bad(
                column,
                format!("`{text}` is not {}", legacy::ACCEPTED_TIMES),
            )
        })
    }

    fn date(&self, i: usize, column: &str, site: FixedOffset) -> Result<NaiveDate, ImportError> {
        let text = self.text(i, column)?;
        NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .ok()
            .or_else(|| legacy::parse_time(&text, site).map(|t| t.date_naive()))
            .ok_or_else(|| self.bad(column, format!("`{text}` is not a date (YYYY-MM-DD)")))
    }
}

/// `123`, `-5`, `123.0` (pandas writes floats when a column had gaps).
fn parse_int(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().or_else(|| {
        text.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e15)
            .map(|x| x as i64)
    })
}

struct Reader<'o> {
    options: &'o ImportOptions,
    files: usize,
    loaded: Loaded,
    reset_day: Option<NaiveDate>,
    /// Each maker's main as first read, and where: a second, different
    /// main is an error.
    mains: HashMap<(String, String), ((String, String), String)>,
}

/// The columns of each kind of table, by its aliases.
const NAME: &[&str] = &["name"];
const WORLD: &[&str] = &["world"];
const GUILD: &[&str] = &["guild"];
const EXP: &[&str] = &["exp", "experience"];
const LAST_UPDATE: &[&str] = &["last update", "update time"];
const DELTAEXP: &[&str] = &["deltaexp", "delta"];
const UPDATE_TIME: &[&str] = &["update time", "last update"];
const TODAY_EXP: &[&str] = &["today exp", "raw xp"];
const TODAY_ONLINE: &[&str] = &["today online", "online minutes"];
const DATE: &[&str] = &["date"];
const DELTA_EXP: &[&str] = &["delta exp"];
const DELTA_ONLINE: &[&str] = &["delta online"];
const MAIN: &[&str] = &["main"];
const MAIN_WORLD: &[&str] = &["main world"];
const MAKER: &[&str] = &["maker"];
const MAKER_WORLD: &[&str] = &["maker world"];

impl<'o> Reader<'o> {
    fn new(options: &'o ImportOptions) -> Reader<'o> {
        Reader {
            options,
            files: 0,
            loaded: Loaded::default(),
            reset_day: None,
            mains: HashMap::new(),
        }
    }

    fn site(&self) -> FixedOffset {
        self.options.site_offset
    }

    fn count(&mut self, table: &'static str, n: usize) {
        *self.loaded.read.entry(table).or_insert(0) += n;
    }

    /// World and guild of a row: its cells, else the defaults, else an
    /// error naming the row.
    fn place_of(
        &self,
        row: &RowRef<'_>,
        cols: &Columns,
        want_guild: bool,
    ) -> Result<(String, String), ImportError> {
        let pick = |aliases: &[&str], default: &Option<String>, what: &str| {
            row.cell(cols.find(aliases))
                .map(String::from)
                .or_else(|| default.clone())
                .ok_or_else(|| ImportError::NoDefault {
                    place: row.place.clone(),
                    column: what.to_string(),
                })
        };
        let world = pick(WORLD, &self.options.default_world, "world")?;
        let guild = if want_guild {
            pick(GUILD, &self.options.default_guild, "guild")?
        } else {
            String::new()
        };
        Ok((world, guild))
    }

    fn folder(&mut self, dir: &Path) -> Result<(), ImportError> {
        let file = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
        if let Some(p) = file("exps.csv") {
            self.csv(&p, Kind::Players)?;
        }
        if let Some(p) = file("deltas.csv") {
            self.csv(&p, Kind::Deltas)?;
        }
        if let Some(p) = file("vips.txt") {
            self.vips_txt(&p)?;
        }
        if let Some(p) = file("vipsdata.csv") {
            self.csv(&p, Kind::VipDaily)?;
        }
        if let Some(p) = file("deltavip.csv") {
            self.csv(&p, Kind::VipDeltas)?;
        }
        if let Some(p) = file("last_reset.txt") {
            self.last_reset(&p)?;
        }
        if let Some(p) = file(CsvFile::MainMakers.file_name()) {
            self.csv(&p, Kind::MainMakers)?;
        }
        Ok(())
    }

    fn csv(&mut self, path: &Path, kind: Kind) -> Result<(), ImportError> {
        let file = std::fs::File::open(path).map_err(|e| ImportError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let shown = path.display().to_string();
        self.csv_from(&file_name(path), &shown, file, modified(path), kind)
    }

    /// Read a CSV of `kind` from `source`: rows are named `{name} line N`,
    /// read errors `{shown}`; `mtime` stands in for missing read times.
    fn csv_from(
        &mut self,
        name: &str,
        shown: &str,
        source: impl std::io::Read,
        mtime: Option<DateTime<Utc>>,
        kind: Kind,
    ) -> Result<(), ImportError> {
        let read_err = |e: &dyn fmt::Display| ImportError::Read {
            path: shown.to_string(),
            message: e.to_string(),
        };
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(source);
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| read_err(&e))?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_string())
            .collect();
        let cols = Columns::new(name, header);
        let table = TableReader::new(kind, &cols, mtime)?;
        self.files += 1;
        let mut cells = Vec::new();
        let mut n = 0;
        for record in reader.records() {
            let record = record.map_err(|e| read_err(&e))?;
            cells.clear();
            // A cell defused against formulas by an export loses the
            // one quote the export added.
            cells.extend(
                record
                    .iter()
                    .map(|c| crate::legacy::csv_cell_read(c).to_string()),
            );
            if cells.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            let line = record.position().map_or(0, |p| p.line());
            let row = RowRef {
                place: format!("{name} line {line}"),
                cells: &cells,
            };
            table.row(self, &row, &cols)?;
            n += 1;
        }
        self.count(kind.table(), n);
        Ok(())
    }

    fn vips_txt(&mut self, path: &Path) -> Result<(), ImportError> {
        let name = file_name(path);
        let text = std::fs::read_to_string(path).map_err(|e| ImportError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        self.files += 1;
        let mut n = 0;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim().trim_start_matches('\u{feff}');
            if line.is_empty() || (i == 0 && normal(line).replace(' ', "") == "name,world") {
                continue;
            }
            let (who, world) = match line.rsplit_once(',') {
                Some((who, world)) if !world.trim().is_empty() => {
                    (who.trim().to_string(), world.trim().to_string())
                }
                _ => match &self.options.default_world {
                    Some(w) => (line.trim_end_matches(',').trim().to_string(), w.clone()),
                    None => {
                        return Err(ImportError::NoDefault {
                            place: format!("{name} line {}", i + 1),
                            column: "world".to_string(),
                        });
                    }
                },
            };
            if who.is_empty() {
                return Err(ImportError::BadValue {
                    place: format!("{name} line {}", i + 1),
                    column: "name".to_string(),
                    message: "is empty".to_string(),
                });
            }
            self.loaded.batch.watched.push((world, who));
            n += 1;
        }
        self.count("watched_players", n);
        Ok(())
    }

    fn last_reset(&mut self, path: &Path) -> Result<(), ImportError> {
        let name = file_name(path);
        let text = std::fs::read_to_string(path).map_err(|e| ImportError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        self.files += 1;
        let day = text.trim().trim_start_matches('\u{feff}');
        if day.is_empty() {
            return Ok(());
        }
        let date = NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .ok()
            .or_else(|| legacy::parse_time(day, self.site()).map(|t| t.date_naive()))
            .ok_or_else(|| ImportError::BadValue {
                place: format!("{name} line 1"),
                column: "date".to_string(),
                message: format!("`{day}` is not a date (YYYY-MM-DD)"),
            })?;
        self.reset_day = Some(date);
        self.count("world_state", 1);
        Ok(())
    }

    fn sqlite(&mut self, path: &Path) -> Result<(), ImportError> {
        use rusqlite::types::ValueRef;
        let file = file_name(path);
        let err = |e: rusqlite::Error| ImportError::Read {
            path: path.display().to_string(),
            message: format!("sqlite: {e}"),
        };
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        let tables: HashSet<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .and_then(|mut s| {
                s.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<_, _>>()
            })
            .map_err(err)?;
        self.files += 1;
        let mtime = modified(path);
        for (table, kind) in [
            ("players", Kind::Players),
            ("deltas", Kind::Deltas),
            ("vips", Kind::Watched),
            ("vip_data", Kind::VipDaily),
            ("vip_deltas", Kind::VipDeltas),
            ("makers", Kind::Makers),
            ("maker_data", Kind::VipDaily),
            ("maker_deltas", Kind::VipDeltas),
        ] {
            if !tables.contains(table) {
                continue;
            }
            let label = format!("{file} table {table}");
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid"))
                .map_err(err)?;
            let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
            let width = names.len();
            let cols = Columns::new(&label, names);
            let reader = TableReader::new(kind, &cols, mtime)?;
            let mut rows = stmt.query([]).map_err(err)?;
            let mut cells = Vec::with_capacity(width);
            let mut n = 0;
            while let Some(r) = rows.next().map_err(err)? {
                cells.clear();
                for i in 0..width {
                    cells.push(match r.get_ref(i).map_err(err)? {
                        ValueRef::Null => String::new(),
                        ValueRef::Integer(v) => v.to_string(),
                        ValueRef::Real(v) => v.to_string(),
                        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                        ValueRef::Blob(_) => "<blob>".to_string(),
                    });
                }
                n += 1;
                let row = RowRef {
                    place: format!("{label} row {n}"),
                    cells: &cells,
                };
                reader.row(self, &row, &cols)?;
            }
            self.count(kind.table(), n);
        }
        for skipped in ["status_data", "scraping_config"] {
            if tables.contains(skipped) {
                let n: i64 = conn
                    .query_row(&format!("SELECT COUNT(*) FROM \"{skipped}\""), [], |r| {
                        r.get(0)
                    })
                    .map_err(err)?;
                let why = if skipped == "status_data" {
                    "the status page is kept again at the next check"
                } else {
                    "the world list lives in the config file ([[worlds]])"
                };
                self.loaded
                    .notes
                    .push(format!("{skipped}: {n} rows not imported: {why}"));
            }
        }
        Ok(())
    }

    /// Dedupe, chain deltas to their world's previous update, add the reset
    /// state.
    fn finish(mut self) -> Loaded {
        let site = self.site();
        let b = &mut self.loaded.batch;

        // Players: the newest row of each (world, name).
        let mut newest: HashMap<(String, String), usize> = HashMap::new();
        let mut keep = Vec::with_capacity(b.players.len());
        for p in b.players.drain(..) {
            let key = (p.world.clone(), p.name.clone());
            match newest.get(&key) {
                Some(&i) => {
                    let kept: &mut ImportPlayer = &mut keep[i];
                    if p.update_time > kept.update_time {
                        *kept = p;
                    }
                }
                None => {
                    newest.insert(key, keep.len());
                    keep.push(p);
                }
            }
        }
        let dropped = newest.len();
        b.players = keep;
        let read_players = self.loaded.read.get("players").copied().unwrap_or(0);
        if read_players > dropped {
            self.loaded.notes.push(format!(
                "players: {} rows repeat a (world, name): the newest of each is kept",
                read_players - dropped
            ));
        }

        // Deltas: one per (world, name, update time), the first seen.
        let mut seen = HashSet::new();
        let before = b.deltas.len();
        b.deltas
            .retain(|d| seen.insert((d.world.clone(), d.name.clone(), d.update_time.timestamp())));
        if b.deltas.len() < before {
            self.loaded.notes.push(format!(
                "deltas: {} duplicate rows (same world, name and update time) skipped",
                before - b.deltas.len()
            ));
        }
        let mut updates: BTreeMap<&str, BTreeSet<DateTime<FixedOffset>>> = BTreeMap::new();
        for d in &b.deltas {
            updates
                .entry(d.world.as_str())
                .or_default()
                .insert(d.update_time);
        }
        let previous: HashMap<(String, i64), DateTime<FixedOffset>> = updates
            .iter()
            .flat_map(|(world, times)| {
                times
                    .iter()
                    .zip(times.iter().skip(1))
                    .map(|(prev, t)| ((world.to_string(), t.timestamp()), *prev))
            })
            .collect();
        for d in &mut b.deltas {
            d.previous_update_time = previous
                .get(&(d.world.clone(), d.update_time.timestamp()))
                .copied();
        }

        // Watched players once each.
        let mut seen = HashSet::new();
        b.watched.retain(|w| seen.insert(w.clone()));

        // VIP daily rows: the newest read of each (world, name, day).
        let mut by_day: BTreeMap<(String, String, NaiveDate), VipDaily> = BTreeMap::new();
        for d in b.vip_daily.drain(..) {
            let key = (d.world.clone(), d.name.clone(), d.date);
            match by_day.get(&key) {
                Some(old) if old.update_time >= d.update_time => {}
                _ => {
                    by_day.insert(key, d);
                }
            }
        }
        b.vip_daily = by_day.into_values().collect();

        // VIP deltas: once per (world, name, update time), chained per player.
        let mut seen = HashSet::new();
        b.vip_deltas
            .retain(|d| seen.insert((d.world.clone(), d.name.clone(), d.update_time.timestamp())));
        b.vip_deltas.sort_by(|a, c| {
            (&a.world, &a.name, a.update_time).cmp(&(&c.world, &c.name, c.update_time))
        });
        let mut last: Option<(String, String, DateTime<FixedOffset>)> = None;
        for d in &mut b.vip_deltas {
            if d.prev_update_time.is_none()
                && let Some((w, n, t)) = &last
                && *w == d.world
                && *n == d.name
            {
                d.prev_update_time = Some(*t);
            }
            last = Some((d.world.clone(), d.name.clone(), d.update_time));
        }

        // Makers once each, a known main over an unknown one.
        let mut at: HashMap<(String, String), usize> = HashMap::new();
        let mut makers: Vec<ImportMaker> = Vec::with_capacity(b.makers.len());
        for m in b.makers.drain(..) {
            match at.get(&(m.world.clone(), m.name.clone())) {
                Some(&i) => {
                    if m.main.is_some() {
                        makers[i].main = m.main;
                    }
                }
                None => {
                    at.insert((m.world.clone(), m.name.clone()), makers.len());
                    makers.push(m);
                }
            }
        }
        b.makers = makers;

        // Reset state of every imported world.
        if let Some(day) = self.reset_day {
            let minutes = self.options.reset_minutes;
            let reset = NaiveTime::from_hms_opt(minutes / 60 % 24, minutes % 60, 0)
                .unwrap_or(NaiveTime::MIN);
            if let Some(boundary) = day.and_time(reset).and_local_timezone(site).single() {
                let mut worlds: BTreeSet<String> = b
                    .players
                    .iter()
                    .map(|p| p.world.clone())
                    .chain(b.deltas.iter().map(|d| d.world.clone()))
                    .collect();
                if worlds.is_empty()
                    && let Some(w) = &self.options.default_world
                {
                    worlds.insert(w.clone());
                }
                if worlds.is_empty() {
                    self.loaded.notes.push(
                        "last_reset.txt: no world to apply it to (no players or deltas, no \
                         --default-world)"
                            .to_string(),
                    );
                }
                b.resets = worlds.into_iter().map(|w| (w, boundary)).collect();
            }
        }
        self.loaded
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Players,
    Deltas,
    Watched,
    VipDaily,
    VipDeltas,
    /// The old SQLite file's `makers` (name, world; no main).
    Makers,
    /// `ref_main_maker.csv`.
    MainMakers,
}

impl Kind {
    fn table(self) -> &'static str {
        match self {
            Kind::Players => "players",
            Kind::Deltas => "deltas",
            Kind::Watched => "watched_players",
            Kind::VipDaily => "vip_daily",
            Kind::VipDeltas => "vip_deltas",
            Kind::Makers | Kind::MainMakers => "makers",
        }
    }
}

/// Column positions of one table, resolved once from its header.
enum TableReader {
    Players {
        name: usize,
        exp: usize,
        time: usize,
    },
    Deltas {
        name: usize,
        delta: usize,
        time: usize,
    },
    Watched {
        name: usize,
    },
    VipDaily {
        name: usize,
        xp: usize,
        online: usize,
        date: Option<usize>,
        time: Option<usize>,
        fallback: Option<DateTime<Utc>>,
    },
    VipDeltas {
        name: usize,
        date: Option<usize>,
        xp: usize,
        online: usize,
        time: usize,
    },
    Makers {
        name: usize,
    },
    MainMakers {
        main: usize,
        main_world: usize,
        maker: usize,
        maker_world: usize,
    },
}

impl TableReader {
    fn new(
        kind: Kind,
        cols: &Columns,
        mtime: Option<DateTime<Utc>>,
    ) -> Result<TableReader, ImportError> {
        Ok(match kind {
            Kind::Players => TableReader::Players {
                name: cols.need(NAME)?,
                exp: cols.need(EXP)?,
                time: cols.need(LAST_UPDATE)?,
            },
            Kind::Deltas => TableReader::Deltas {
                name: cols.need(NAME)?,
                delta: cols.need(DELTAEXP)?,
                time: cols.need(UPDATE_TIME)?,
            },
            Kind::Watched => TableReader::Watched {
                name: cols.need(NAME)?,
            },
            Kind::VipDaily => TableReader::VipDaily {
                name: cols.need(NAME)?,
                xp: cols.need(TODAY_EXP)?,
                online: cols.need(TODAY_ONLINE)?,
                date: cols.find(DATE),
                time: cols.find(UPDATE_TIME),
                fallback: mtime,
            },
            Kind::VipDeltas => TableReader::VipDeltas {
                name: cols.need(NAME)?,
                date: cols.find(DATE),
                xp: cols.need(DELTA_EXP)?,
                online: cols.need(DELTA_ONLINE)?,
                time: cols.need(UPDATE_TIME)?,
            },
            Kind::Makers => TableReader::Makers {
                name: cols.need(NAME)?,
            },
            Kind::MainMakers => TableReader::MainMakers {
                main: cols.need(MAIN)?,
                main_world: cols.need(MAIN_WORLD)?,
                maker: cols.need(MAKER)?,
                maker_world: cols.need(MAKER_WORLD)?,
            },
        })
    }

    fn row(&self, r: &mut Reader<'_>, row: &RowRef<'_>, cols: &Columns) -> Result<(), ImportError> {
        let site = r.site();
        match *self {
            TableReader::Players { name, exp, time } => {
                let (world, guild) = r.place_of(row, cols, true)?;
                let player = ImportPlayer {
                    name: row.text(name, "name")?,
                    experience: row.int(exp, "exp")?,
                    update_time: row.time(time, "last update", site)?,
                    world,
                    guild,
                };
                r.loaded.batch.players.push(player);
            }
            TableReader::Deltas { name, delta, time } => {
                let (world, guild) = r.place_of(row, cols, true)?;
                let d = ImportDelta {
                    name: row.text(name, "name")?,
                    delta: row.int(delta, "deltaexp")?,
                    update_time: row.time(time, "update time", site)?,
                    previous_update_time: None,
                    world,
                    guild,
                };
                r.loaded.batch.deltas.push(d);
            }
            TableReader::Watched { name } => {
                let (world, _) = r.place_of(row, cols, false)?;
                let who = row.text(name, "name")?;
                r.loaded.batch.watched.push((world, who));
            }
            TableReader::VipDaily {
                name,
                xp,
                online,
                date,
                time,
                fallback,
            } => {
                let (world, _) = r.place_of(row, cols, false)?;
                let update_time = match time.filter(|&i| row.cell(Some(i)).is_some()) {
                    Some(i) => row.time(i, "update_time", site)?,
                    None => fallback.unwrap_or_else(Utc::now).with_timezone(&site),
                };
                let date = match date.filter(|&i| row.cell(Some(i)).is_some()) {
                    Some(i) => row.date(i, "date", site)?,
                    None => update_time.date_naive(),
                };
                let d = VipDaily {
                    name: row.text(name, "name")?,
                    raw_xp: row.int(xp, "today_exp")?,
                    online_minutes: row.minutes(online, "today_online")?,
                    date,
                    update_time,
                    world,
                };
                r.loaded.batch.vip_daily.push(d);
            }
            TableReader::VipDeltas {
                name,
                date,
                xp,
                online,
                time,
            } => {
                let (world, _) = r.place_of(row, cols, false)?;
                let update_time = row.time(time, "update_time", site)?;
                let date = match date.filter(|&i| row.cell(Some(i)).is_some()) {
                    Some(i) => row.date(i, "date", site)?,
                    None => update_time.date_naive(),
                };
                let d = VipDelta {
                    name: row.text(name, "name")?,
                    delta_exp: row.int(xp, "delta_exp")?,
                    delta_online: row.minutes(online, "delta_online")?,
                    date,
                    update_time,
                    prev_update_time: None,
                    world,
                };
                r.loaded.batch.vip_deltas.push(d);
            }
            TableReader::Makers { name } => {
                let (world, _) = r.place_of(row, cols, false)?;
                let name = row.text(name, "name")?;
                r.loaded.batch.makers.push(ImportMaker {
                    world,
                    name,
                    main: None,
                });
            }
            TableReader::MainMakers {
                main,
                main_world,
                maker,
                maker_world,
            } => {
                let m = ImportMaker {
                    name: row.text(maker, "maker")?,
                    world: row.text(maker_world, "maker_world")?,
                    main: Some((row.text(main_world, "main_world")?, row.text(main, "main")?)),
                };
                let key = (m.world.clone(), m.name.clone());
                let this = m.main.clone().unwrap_or_default();
                match r.mains.get(&key) {
                    Some((first, place)) if *first != this => {
                        return Err(row.bad(
                            "main",
                            format!(
                                "`{}` of {} is the maker of `{}` of {} at {place}: a maker has one \
                                 main",
                                key.1, key.0, first.1, first.0
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        r.mains.insert(key, (this, row.place.clone()));
                    }
                }
                r.loaded.batch.makers.push(m);
            }
        }
        Ok(())
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn modified(path: &Path) -> Option<DateTime<Utc>> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .map(DateTime::<Utc>::from)
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would write"
        } else {
            "written"
        };
        writeln!(
            f,
            "{} {}",
            if self.dry_run {
                "Dry run (nothing written): importing"
            } else {
                "Imported"
            },
            self.from.display()
        )?;
        let w = &self.written;
        let sum = |m: &BTreeMap<String, usize>| m.values().sum::<usize>();
        let rows: [(&str, Option<usize>, usize); 8] = [
            (
                "players",
                self.read.get("players").copied(),
                sum(&w.players),
            ),
            ("deltas", self.read.get("deltas").copied(), sum(&w.deltas)),
            ("runs", None, sum(&w.runs)),
            (
                "watched_players",
                self.read.get("watched_players").copied(),
                w.watched,
            ),
            (
                "vip_daily",
                self.read.get("vip_daily").copied(),
                w.vip_daily,
            ),
            (
                "vip_deltas",
                self.read.get("vip_deltas").copied(),
                w.vip_deltas,
            ),
            ("makers", self.read.get("makers").copied(), w.makers),
            (
                "world_state",
                self.read.get("world_state").copied(),
                w.world_states,
            ),
        ];
        writeln!(f, "{:<16} {:>10} {:>12}", "table", "read", verb)?;
        for (table, read, written) in rows {
            let read = read.map_or("-".to_string(), |n| n.to_string());
            writeln!(f, "{table:<16} {read:>10} {written:>12}")?;
        }
        let worlds: BTreeSet<&String> = w
            .players
            .keys()
            .chain(w.deltas.keys())
            .chain(w.runs.keys())
            .collect();
        if !worlds.is_empty() {
            writeln!(f, "per world ({verb}):")?;
            writeln!(
                f,
                "{:<24} {:>10} {:>10} {:>8}",
                "world", "players", "deltas", "runs"
            )?;
            for world in worlds {
                let get = |m: &BTreeMap<String, usize>| m.get(world).copied().unwrap_or(0);
                writeln!(
                    f,
                    "{world:<24} {:>10} {:>10} {:>8}",
                    get(&w.players),
                    get(&w.deltas),
                    get(&w.runs)
                )?;
            }
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_headers() {
        assert_eq!(parse_int("123"), Some(123));
        assert_eq!(parse_int("-5"), Some(-5));
        assert_eq!(parse_int("123.0"), Some(123));
        assert_eq!(parse_int("12.5"), None);
        assert_eq!(parse_int("12a"), None);
        assert_eq!(parse_int("1.234.567"), None);
        let cols = Columns::new(
            "x.csv",
            vec!["Name".into(), "update_time".into(), "".into()],
        );
        assert_eq!(cols.find(UPDATE_TIME), Some(1));
        assert_eq!(cols.find(NAME), Some(0));
        let e = cols.need(EXP).expect_err("no exp").to_string();
        assert!(
            e.contains("x.csv") && e.contains("`exp`") && e.contains("name, update time"),
            "{e}"
        );
    }
}
