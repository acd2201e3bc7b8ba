//! The demo site on 127.0.0.1 with a temporary directory for a run against
//! it: the set-up most end-to-end tests start from.

use worldpool::demo_site::{DemoSite, DemoSiteOptions};

/// A demo site, a temporary directory, and the URL of a SQLite store in it
/// (`DIR/wp.db`) for the site's config (`site.config_toml(&url, mode)`).
pub struct Demo {
    pub site: DemoSite,
    pub dir: tempfile::TempDir,
    pub url: String,
}

impl Demo {
    /// Start the site with `options`.
    pub async fn start(options: DemoSiteOptions) -> Demo {
        let site = DemoSite::start(options).await.expect("demo site starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/wp.db", dir.path().display());
        Demo { site, dir, url }
    }
}
