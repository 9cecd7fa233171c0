//! CONTRACT STUB (helper A replaces the bodies; keep the public signatures).
//! `.pls` and `.m3u` / `.m3u8` playlists: the first playable entry.

/// A playlist format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaylistKind {
    Pls,
    M3u,
}

/// The playlist format of a response, from its content type, else from the URL path's extension.
pub fn playlist_kind(url: &str, content_type: &str) -> Option<PlaylistKind> {
    let _ = (url, content_type);
    todo!()
}

/// The first entry of a playlist that is an http(s) URL, resolved against `base_url` when relative.
pub fn first_entry(kind: PlaylistKind, body: &str, base_url: &str) -> Option<String> {
    let _ = (kind, body, base_url);
    todo!()
}
