//! `worldpool scrape-once --explain`: what every `[site.selectors]` key
//! matches on the live pages, like `scrapy parse`: counts and first values,
//! the world titles found, the routine rows and their parsed times, and for
//! a selector that matched nothing, the nearest elements that do exist (by
//! tag and class), so a user fixing a redesign sees which key broke and
//! what to write instead.
//!
//! [`explain_status`], [`explain_guild`] and [`explain_player`] are pure
//! (page text in, report out), a file each; [`explain_world`] fetches the
//! pages of one world (its watched players' too). The report types are in
//! `report`, the nearest elements in `nearest`.

mod guild;
mod matched;
mod nearest;
mod player;
mod report;
mod status;
mod world;

pub use guild::explain_guild;
pub use player::explain_player;
pub use report::{Explain, PageReport, SelectorReport};
pub use status::explain_status;
pub use world::explain_world;

#[cfg(test)]
mod tests;
