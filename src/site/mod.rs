//! The ranking site: HTTP client, URLs, page parsing. (Stub.)

mod selectors;

pub use selectors::Selectors;
