//! Diagnostics of the TOML text: syntax and type errors with their line,
//! and every unknown key with its path, line and the nearest known key
//! (did you mean).

use std::fmt;

use super::Problem;
use super::raw::{
    RawApi, RawCluster, RawConfig, RawLimits, RawLog, RawPool, RawSite, RawStorage, RawWorld,
};

/// A TOML syntax or type error, at its line.
pub(super) fn toml_problem(text: &str, e: &toml::de::Error) -> Problem {
    let line = e
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    let location = line
        .map(|l| format!("line {l}"))
        .unwrap_or_else(|| "(file)".to_string());
    let message = e.message().trim().to_string();
    let fix = if message.contains("missing field") {
        "add the key; config/worlds.toml documents every key".to_string()
    } else {
        "fix the TOML syntax or the value's type at that line".to_string()
    };
    Problem {
        key: location,
        message,
        fix,
    }
}

/// Where a key sits in the config: `worlds`, `[1]`, `guild`.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// The path of a key, as `serde_ignored` reports the keys no field takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeyPath(Vec<Segment>);

impl KeyPath {
    pub(super) fn of(path: &serde_ignored::Path<'_>) -> KeyPath {
        use serde_ignored::Path;
        match path {
            Path::Root => KeyPath(Vec::new()),
            Path::Seq { parent, index } => {
                let mut p = KeyPath::of(parent);
                p.0.push(Segment::Index(*index));
                p
            }
            Path::Map { parent, key } => {
                let mut p = KeyPath::of(parent);
                p.0.push(Segment::Key(key.clone()));
                p
            }
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => KeyPath::of(parent),
        }
    }

    /// The last key (the unknown one).
    fn last_key(&self) -> String {
        match self.0.last() {
            Some(Segment::Key(k)) => k.clone(),
            Some(Segment::Index(i)) => format!("[{i}]"),
            None => String::new(),
        }
    }

    /// The 1-based line of the key in `doc` (parsed from `text`).
    fn line(&self, text: &str, doc: &toml::de::DeTable<'_>) -> Option<usize> {
        use toml::de::DeValue;
        let mut table = Some(doc);
        let mut array: Option<&[toml::Spanned<DeValue<'_>>]> = None;
        let mut span = None;
        for segment in &self.0 {
            let value = match segment {
                Segment::Key(k) => {
                    let (key, value) =
                        table?.iter().find(|(key, _)| key.get_ref().as_ref() == k)?;
                    span = Some(key.span());
                    value
                }
                Segment::Index(i) => array?.get(*i)?,
            };
            (table, array) = match value.get_ref() {
                DeValue::Table(t) => (Some(t), None),
                DeValue::Array(a) => (None, Some(&a[..])),
                _ => (None, None),
            };
        }
        let start = span?.start.min(text.len());
        Some(text[..start].matches('\n').count() + 1)
    }

    /// The keys known where this key sits (its parent's fields).
    fn known_keys(&self) -> Option<&'static [&'static str]> {
        use Segment::{Index, Key};
        let parent = &self.0[..self.0.len().saturating_sub(1)];
        Some(match parent {
            [] => fields_of::<RawConfig>(),
            [Key(table)] => match table.as_str() {
                "pool" => fields_of::<RawPool>(),
                "limits" => fields_of::<RawLimits>(),
                "site" => fields_of::<RawSite>(),
                "storage" => fields_of::<RawStorage>(),
                "api" => fields_of::<RawApi>(),
                "log" => fields_of::<RawLog>(),
                "cluster" => fields_of::<RawCluster>(),
                _ => return None,
            },
            [Key(worlds), Index(_)] if worlds == "worlds" => fields_of::<RawWorld>(),
            [Key(worlds), Index(_), Key(limits)] if worlds == "worlds" && limits == "limits" => {
                fields_of::<RawLimits>()
            }
            _ => return None,
        })
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// One problem per unknown key, in the order of the file: its path and
/// line, and the nearest known key.
pub(super) fn unknown_key_problems(
    text: &str,
    doc: &toml::de::DeTable<'_>,
    unknown: Vec<KeyPath>,
) -> Vec<Problem> {
    let mut found: Vec<(Option<usize>, Problem)> = unknown
        .into_iter()
        .map(|path| {
            let line = path.line(text, doc);
            let name = path.last_key();
            let key = match line {
                Some(l) => format!("{path} (line {l})"),
                None => path.to_string(),
            };
            let known: Vec<String> = path
                .known_keys()
                .unwrap_or_default()
                .iter()
                .map(|k| k.to_string())
                .collect();
            let fix = match nearest(&name, &known) {
                Some(best) => {
                    format!("did you mean `{best}`? (config/worlds.toml documents every key)")
                }
                None if known.is_empty() => {
                    "remove or rename the key; config/worlds.toml documents every key".to_string()
                }
                None => format!(
                    "remove or rename the key; known keys here: {}",
                    known.join(", ")
                ),
            };
            let problem = Problem {
                key,
                message: format!("unknown key `{name}`"),
                fix,
            };
            (line, problem)
        })
        .collect();
    found.sort_by_key(|(line, _)| line.unwrap_or(usize::MAX));
    found.into_iter().map(|(_, p)| p).collect()
}

/// The field names of a derived `Deserialize` struct: serde hands them to
/// `deserialize_struct`, and this deserializer only listens for them.
fn fields_of<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{Error as _, Visitor, value::Error};
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
            Err(Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Error> {
            *self.0 = fields;
            Err(Error::custom("only the fields were asked for"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// The known key closest to `unknown` (edit distance at most a third of
/// its length, at least 2), if any.
fn nearest<'a>(unknown: &str, known: &'a [String]) -> Option<&'a str> {
    let limit = (unknown.chars().count() / 3).max(2);
    known
        .iter()
        .map(|k| (edit_distance(unknown, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::edit_distance;
    use crate::config::parse_test as parse;

    #[test]
    fn unknown_keys_name_the_table_the_line_and_the_nearest_key() {
        let table = [
            (
                "[pool]\nmoed = \"pool\"\n[[worlds]]\nname=\"A\"\nguilds=[\"G\"]\n",
                "pool.moed (line 2)",
                Some("mode"),
            ),
            (
                "[pool]\nmod = \"pool\"\n[[worlds]]\nname=\"A\"\nguilds=[\"G\"]\n",
                "pool.mod (line 2)",
                Some("mode"),
            ),
            (
                "[[worlds]]\nname=\"A\"\nguilds=[\"G\"]\n[[worlds]]\nname=\"B\"\nguild=[\"G\"]\n",
                "worlds[1].guild (line 6)",
                Some("guilds"),
            ),
            (
                "[[worlds]]\nname=\"A\"\nguilds=[\"G\"]\nlimits = { open_file = 100 }\n",
                "worlds[0].limits.open_file (line 4)",
                Some("open_files"),
            ),
            (
                "[site]\nzzzzzz = 1\n[[worlds]]\nname=\"A\"\nguilds=[\"G\"]\n",
                "site.zzzzzz (line 2)",
                None,
            ),
        ];
        for (text, key, hint) in table {
            let err = parse(text).expect_err("unknown key");
            assert_eq!(err.problems.len(), 1, "{:?}", err.problems);
            let p = &err.problems[0];
            assert_eq!(p.key, key, "{p:?}");
            match hint {
                Some(h) => assert!(p.fix.contains(&format!("did you mean `{h}`")), "{p:?}"),
                None => assert!(p.fix.contains("known keys here"), "{p:?}"),
            }
        }
    }

    #[test]
    fn every_unknown_key_is_reported_at_once() {
        let err = parse(
            "polo = 1\n[pool]\nrestrat = \"always\"\nmoed = \"pool\"\n\
             [api]\nbnd = \"127.0.0.1:1\"\n[[worlds]]\nname = \"A\"\nguilds = [\"G\"]\n\
             limits = { memroy = \"1GiB\" }\n[[worlds]]\nname = \"B\"\nguilds = [\"G\"]\n\
             zzzzzz = 1\n",
        )
        .expect_err("unknown keys");
        let got: Vec<(&str, &str, &str)> = err
            .problems
            .iter()
            .map(|p| (p.key.as_str(), p.message.as_str(), p.fix.as_str()))
            .collect();
        let unknown = [
            ("polo (line 1)", "polo", Some("pool")),
            ("pool.restrat (line 3)", "restrat", Some("restart")),
            ("pool.moed (line 4)", "moed", Some("mode")),
            ("api.bnd (line 6)", "bnd", Some("bind")),
            (
                "worlds[0].limits.memroy (line 10)",
                "memroy",
                Some("memory"),
            ),
            ("worlds[1].zzzzzz (line 14)", "zzzzzz", None),
        ];
        assert_eq!(got.len(), unknown.len(), "{got:#?}");
        for ((key, message, fix), (want_key, name, hint)) in got.iter().zip(unknown) {
            assert_eq!(*key, want_key, "{got:#?}");
            assert_eq!(*message, format!("unknown key `{name}`"));
            match hint {
                Some(h) => assert!(fix.starts_with(&format!("did you mean `{h}`?")), "{fix}"),
                None => assert!(fix.contains("known keys here: name, guilds"), "{fix}"),
            }
        }
        // A value of the wrong type stops the reading: it is reported with
        // the unknown keys read before it (a table's keys are read in
        // alphabetical order).
        let err = parse("[pool]\nbackof_max = \"1s\"\nmax_restarts = \"many\"\n").expect_err("bad");
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["pool.backof_max (line 2)", "line 3"],
            "{:?}",
            err.problems
        );
    }

    #[test]
    fn edit_distances() {
        for (a, b, d) in [
            ("mod", "mode", 1),
            ("moed", "mode", 2),
            ("", "ab", 2),
            ("São", "Sao", 1),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} {b}");
        }
    }
}
