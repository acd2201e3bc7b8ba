//! The status page parser on arbitrary bytes (both layouts' selectors).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use worldpool::site::Compiled;

#[path = "common.rs"]
mod common;

static SELECTORS: LazyLock<[Compiled; 2]> = LazyLock::new(common::selectors);

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    common::status(&text, &SELECTORS[..]);
});
