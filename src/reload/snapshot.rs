//! The config the workers read: a private copy of each validated config.
//!
//! A worker process reads its config file when it starts, and it starts
//! again after every crash. Pointing it at the operator's file would let an
//! edit that was never reloaded (or one that was refused) reach a worker
//! that happens to restart. So `worldpool run` keeps a copy of every config
//! it validated, in a private temporary directory removed when it stops,
//! named by a hash of the text, and gives workers that path: a worker
//! always starts with the config its supervisor validated and applied.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash as _, Hasher as _};
use std::io::Write as _;
use std::path::PathBuf;

use crate::config::Config;

/// The directory of copies (removed on drop).
#[derive(Debug)]
pub struct Snapshots {
    dir: tempfile::TempDir,
}

impl Snapshots {
    /// A new private directory under the system's temporary directory.
    pub fn new() -> std::io::Result<Snapshots> {
        let dir = tempfile::Builder::new()
            .prefix("worldpool-config-")
            .tempdir()?;
        Ok(Snapshots { dir })
    }

    /// Keep a copy of `text` (idempotent: the name is a hash of it).
    pub fn write(&self, text: &str) -> std::io::Result<PathBuf> {
        let mut hasher = DefaultHasher::new();
        text.hash(&mut hasher);
        let path = self
            .dir
            .path()
            .join(format!("config-{:016x}.toml", hasher.finish()));
        if !path.exists() {
            // Written whole, then renamed: a worker never reads half a file.
            let mut tmp = tempfile::NamedTempFile::new_in(self.dir.path())?;
            tmp.write_all(text.as_bytes())?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path).map_err(|e| e.error)?;
        }
        Ok(path)
    }

    /// `config` as the workers get it: the same settings, read from a
    /// copy of `text` (the text `config` was parsed from).
    pub fn for_workers(&self, config: &Config, text: &str) -> std::io::Result<Config> {
        let mut out = config.clone();
        out.path = self.write(text)?;
        Ok(out)
    }

    /// The config `worldpool run` starts with, for its workers: the file is
    /// read again and copied when it still says what `config` says. If it
    /// changed since it was loaded (or cannot be copied), the workers read
    /// the file itself, as they would without copies; that is logged.
    pub fn initial(&self, config: &Config) -> Config {
        let copied = std::fs::read_to_string(&config.path)
            .ok()
            .filter(|text| Config::parse(&config.path, text).is_ok_and(|c| &c == config))
            .map(|text| self.for_workers(config, &text));
        match copied {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                tracing::warn!(error = %e, dir = %self.dir.path().display(),
                    "cannot keep a copy of the config; workers read the file itself");
                config.clone()
            }
            None => {
                tracing::warn!(config = %config.path.display(),
                    "the config file changed while starting; workers read the file itself \
                     until the next reload");
                config.clone()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_named_by_content_and_read_back() {
        let s = Snapshots::new().expect("temp dir");
        let a = s.write("a = 1\n").expect("written");
        let again = s.write("a = 1\n").expect("written");
        let b = s.write("a = 2\n").expect("written");
        assert_eq!(a, again);
        assert_ne!(a, b);
        assert_eq!(std::fs::read_to_string(&b).expect("read"), "a = 2\n");
        let dir = a.parent().expect("dir").to_path_buf();
        drop(s);
        assert!(!dir.exists(), "removed with the Snapshots");
    }

    #[test]
    fn the_initial_copy_follows_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("worlds.toml");
        let text = "[[worlds]]\nname = \"A\"\nguilds = [\"G\"]\n";
        std::fs::write(&path, text).expect("written");
        let config = Config::load(&path).expect("valid");
        let s = Snapshots::new().expect("temp dir");
        let copy = s.initial(&config);
        assert_ne!(copy.path, config.path);
        assert_eq!(std::fs::read_to_string(&copy.path).expect("copy"), text);
        // The file changed after loading: the workers read the file.
        std::fs::write(&path, text.replace("\"G\"", "\"H\"")).expect("edited");
        assert_eq!(s.initial(&config).path, config.path);
    }
}
