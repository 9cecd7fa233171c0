//! `.pls` / `.m3u` / `.xspf` playlists: `radio::playlist::playlist_kind` and `first_entry` on fuzzer
//! URLs, content types and bodies.
//!
//! Invariants: no panic; an entry, when found, is an http(s) URL that parses again (the stream
//! client parses it for the next hop).
#![no_main]

use async_net_core::radio::playlist::{PlaylistKind, first_entry, playlist_kind};
use libfuzzer_sys::{
    arbitrary::{self, Arbitrary},
    fuzz_target,
};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    kind: u8,
    url: &'a str,
    content_type: &'a str,
    body: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let _ = playlist_kind(input.url, input.content_type);
    let kind = match input.kind % 3 {
        0 => PlaylistKind::Pls,
        1 => PlaylistKind::M3u,
        _ => PlaylistKind::Xspf,
    };
    for base in [input.url, "http://radio.example:8000/dir/list.pls"] {
        if let Some(entry) = first_entry(kind, input.body, base) {
            assert!(entry.starts_with("http://") || entry.starts_with("https://"), "{entry}");
            let scheme = async_net_core::fuzzing::url_scheme(&entry).expect("an entry parses again");
            assert!(scheme == "http" || scheme == "https", "{entry}");
        }
    }
});
