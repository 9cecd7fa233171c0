//! What the station answers at each path: the audio streams (icecast, SHOUTcast, chunked and the
//! broken ones), the playlists that point to them, redirects, a web page, and each stream's
//! response head.

use super::NAME;
use super::mp3::Mp3;

/// The routes, for `testbed radio-station` (which prints them) and these docs.
pub const ROUTES: &[(&str, &str)] = &[
    ("/stream.mp3", "icecast-style stream (also /); ICY metadata with `Icy-MetaData: 1`"),
    ("/shoutcast", "the same stream as a SHOUTcast v1 server sends it (`ICY 200 OK`)"),
    ("/chunked.mp3", "the same stream over HTTP/1.1 with `Transfer-Encoding: chunked`"),
    ("/station.pls", "PLS playlist pointing to /stream.mp3"),
    ("/station.m3u", "M3U playlist pointing to /stream.mp3"),
    ("/relative.m3u", "M3U playlist with the relative entry `stream.mp3`"),
    ("/redirect", "302 to /stream.mp3"),
    ("/loop", "302 to itself"),
    ("/html", "an HTML page (not audio)"),
    ("/garbage.mp3", "stream with 3000 random bytes every 2 s and half a frame every 3 s"),
    ("/truncated.mp3", "about 2 s of audio at once, cut in the middle of a frame"),
    ("/missing", "404 (as is any unknown path)"),
];

/// The kinds of audio stream the station serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// `/stream.mp3`: icecast-style.
    Icecast,
    /// `/shoutcast`: SHOUTcast v1 (`ICY 200 OK`).
    Shoutcast,
    /// `/chunked.mp3`: HTTP/1.1, chunked.
    Chunked,
    /// `/garbage.mp3`: random bytes and half frames.
    Garbage,
    /// `/truncated.mp3`: 2 s, then a cut.
    Truncated,
}

impl StreamKind {
    /// Whether the kind sends ICY metadata to clients that ask for it.
    pub fn has_metadata(self) -> bool {
        matches!(self, StreamKind::Icecast | StreamKind::Shoutcast | StreamKind::Chunked)
    }
}

/// What a path is answered with.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// An audio stream.
    Stream(StreamKind),
    /// A text body; `{BASE}` stands for `http://127.0.0.1:PORT`.
    Text { content_type: &'static str, body: &'static str },
    /// A `302` to this location.
    Redirect(&'static str),
    /// A `404`.
    NotFound,
}

const PLS: &str =
    "[playlist]\nNumberOfEntries=1\nFile1={BASE}/stream.mp3\nTitle1=async-net demo station\nLength1=-1\nVersion=2\n";
const M3U: &str =
    "#EXTM3U\n# The local demo station of godot-async-net\n#EXTINF:-1,async-net demo station\n{BASE}/stream.mp3\n";
const RELATIVE_M3U: &str = "#EXTM3U\n#EXTINF:-1,async-net demo station (relative entry)\nstream.mp3\n";
const HTML: &str = "<!DOCTYPE html>\n<html><head><title>async-net demo station</title></head>\n<body><h1>async-net demo station</h1><p>This is a web page, not a stream: listen at <a href=\"/stream.mp3\">/stream.mp3</a>.</p></body></html>\n";

/// The route of `path`.
pub fn route(path: &str) -> Route {
    match path {
        "/" | "/stream.mp3" => Route::Stream(StreamKind::Icecast),
        "/shoutcast" => Route::Stream(StreamKind::Shoutcast),
        "/chunked.mp3" => Route::Stream(StreamKind::Chunked),
        "/garbage.mp3" => Route::Stream(StreamKind::Garbage),
        "/truncated.mp3" => Route::Stream(StreamKind::Truncated),
        "/station.pls" => Route::Text { content_type: "audio/x-scpls", body: PLS },
        "/station.m3u" => Route::Text { content_type: "audio/x-mpegurl", body: M3U },
        "/relative.m3u" => Route::Text { content_type: "audio/x-mpegurl", body: RELATIVE_M3U },
        "/html" => Route::Text { content_type: "text/html; charset=utf-8", body: HTML },
        "/redirect" => Route::Redirect("/stream.mp3"),
        "/loop" => Route::Redirect("/loop"),
        _ => Route::NotFound,
    }
}

/// The response head of a stream (status line and headers, with the blank line).
pub fn stream_head(kind: StreamKind, metaint: Option<usize>, audio: &Mp3, port: u16) -> String {
    let mut head = String::new();
    let mut line = |l: String| {
        head.push_str(&l);
        head.push_str("\r\n");
    };
    let (rate, br, channels) = (audio.sample_rate, audio.bitrate_kbps, audio.channels);
    if kind == StreamKind::Shoutcast {
        // As SHOUTcast v1 sends it: no HTTP version, lowercase content-type.
        line("ICY 200 OK".into());
        line("icy-notice1: <BR>This stream requires Winamp<BR>".into());
        line("icy-notice2: SHOUTcast Distributed Network Audio Server/Linux v1.9.8<BR>".into());
        line(format!("icy-name: {NAME}"));
        line("icy-genre: Demo".into());
        line(format!("icy-url: http://127.0.0.1:{port}/"));
        line("content-type: audio/mpeg".into());
        line("icy-pub: 0".into());
    } else {
        line(if kind == StreamKind::Chunked { "HTTP/1.1 200 OK" } else { "HTTP/1.0 200 OK" }.into());
        line("Server: async-net demo station (testbed)".into());
        line("Content-Type: audio/mpeg".into());
        line("Cache-Control: no-cache, no-store".into());
        if kind == StreamKind::Chunked {
            line("Transfer-Encoding: chunked".into());
            line("Connection: close".into());
        }
        line(format!("icy-name: {NAME}"));
        line("icy-genre: Demo".into());
        line("icy-description: The local test and demo station of godot-async-net".into());
        line("icy-pub: 0".into());
        line(format!("ice-audio-info: ice-samplerate={rate};ice-bitrate={br};ice-channels={channels}"));
    }
    line(format!("icy-br: {br}"));
    if let Some(metaint) = metaint {
        line(format!("icy-metaint: {metaint}"));
    }
    line(String::new());
    head
}
