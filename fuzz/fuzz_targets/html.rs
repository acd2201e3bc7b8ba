//! Both parsers on arbitrary HTML built from the pages' own vocabulary
//! (tags, classes, texts of both layouts), nested as the bytes say.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use worldpool::site::Compiled;

#[path = "common.rs"]
mod common;

static SELECTORS: LazyLock<[Compiled; 2]> = LazyLock::new(common::selectors);

fuzz_target!(|data: &[u8]| {
    let html = common::html_from(data);
    common::status(&html, &SELECTORS[..]);
    common::guild(&html, &SELECTORS[..]);
});
