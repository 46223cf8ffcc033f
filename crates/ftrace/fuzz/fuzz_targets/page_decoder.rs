//! The ring-buffer page decoder on arbitrary pages: it must never panic, never loop, and every
//! record it yields must lie inside the page.
#![no_main]

use libfuzzer_sys::fuzz_target;
use virtflow_ftrace::dat::page::{PageCursor, PageLayout};
use virtflow_ftrace::record::Endian;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, page)) = data.split_first() else {
        return;
    };
    let long = if mode & 1 == 0 { 8 } else { 4 };
    let layout = PageLayout {
        endian: if mode & 2 == 0 {
            Endian::Little
        } else {
            Endian::Big
        },
        commit_size: long,
        commit_offset: 8,
        data_offset: 8 + long,
    };
    let Ok(mut cursor) = PageCursor::new(page, &layout) else {
        return;
    };
    // Every record takes at least 4 bytes: a page yields at most len / 4 of them.
    for _ in 0..=page.len() / 4 {
        match cursor.next_record(page) {
            Ok(Some(r)) => assert!(r.start + r.len <= page.len()),
            Ok(None) | Err(_) => return,
        }
    }
    panic!("the page decoder did not finish");
});
