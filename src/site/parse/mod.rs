//! Page parsing: status page → per-world update times; guild page → rows;
//! player page → a watched player's numbers of the day. A file per page
//! (`status`, `guild`, `player`); numbers and the completeness check
//! in `common`, text helpers in `site::text`.
//!
//! Every function here is synchronous and drops the `scraper::Html` before
//! returning (it is not `Send`), so callers can `.await` freely afterwards.
//! What is read where is configured by [`Selectors`](super::Selectors).

mod common;
mod guild;
mod player;
mod status;

pub use super::text::clean_text;
pub(crate) use common::complete_check;
pub use common::{parse_number, parse_number_parts};
pub(crate) use guild::closed_unless_ranking;
pub use guild::{GuildPage, GuildPageKind, PlayerRow, closes_document, extract_guild, parse_guild};
pub use player::{
    PlayerDay, PlayerPage, extract_player, parse_day, parse_duration_minutes, parse_player,
};
pub(crate) use player::{day_table, player_rows, player_tables};
pub(crate) use status::{Entry, read_entry, scan_status};
pub use status::{
    RoutineStatus, WorldStatus, extract_status, parse_site_time, parse_status,
    routine_display_name, world_of_title,
};
