//! `.pls`, `.m3u` / `.m3u8` and `.xspf` playlists, which station directories
//! (and icecast itself, for every mount) hand out instead of the stream URL:
//! recognising one (content type, else the URL's extension) and picking its
//! first http(s) entry. [`super::http::open`] follows that entry as one more hop.
//! XSPF is XML, read with `roxmltree` (no DTD, so no entity expansion).

use url::Url;

/// A playlist format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaylistKind {
    Pls,
    M3u,
    /// XML Shareable Playlist Format: `<track><location>` elements.
    Xspf,
}

/// The playlist format of a response, from its content type, else from the URL path's extension.
///
/// The extension is only looked at when the content type says nothing (``, `text/plain`,
/// `application/octet-stream`): a server that labels its response `audio/mpeg` is believed.
pub fn playlist_kind(url: &str, content_type: &str) -> Option<PlaylistKind> {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "audio/x-scpls" | "audio/scpls" | "application/pls+xml" => return Some(PlaylistKind::Pls),
        "audio/x-mpegurl" | "audio/mpegurl" | "application/x-mpegurl" | "application/vnd.apple.mpegurl" => {
            return Some(PlaylistKind::M3u);
        }
        "application/xspf+xml" => return Some(PlaylistKind::Xspf),
        "" | "text/plain" | "application/octet-stream" => {}
        _ => return None,
    }
    let path = match Url::parse(url) {
        Ok(parsed) => parsed.path().to_ascii_lowercase(),
        // Not a full URL: the part before any query or fragment.
        Err(_) => url.split(['?', '#']).next().unwrap_or("").to_ascii_lowercase(),
    };
    if path.ends_with(".pls") {
        Some(PlaylistKind::Pls)
    } else if path.ends_with(".m3u") || path.ends_with(".m3u8") {
        Some(PlaylistKind::M3u)
    } else if path.ends_with(".xspf") {
        Some(PlaylistKind::Xspf)
    } else {
        None
    }
}

/// The first entry of a playlist that is an http(s) URL, resolved against `base_url` when relative
/// (only an http(s) `base_url`; otherwise only absolute entries count).
///
/// PLS: the `FileN=` lines, lowest `N` first (keys in any case). M3U: the lines that are
/// neither empty nor `#` comments, in order. XSPF: the `<location>` of each `<track>`, in
/// order (a document that is not well-formed XML, or has a DTD, has none). A byte order
/// mark, CRLF line ends and spaces around lines are tolerated; entries of other schemes
/// (`file:`, `rtsp:`, Windows paths) are skipped.
pub fn first_entry(kind: PlaylistKind, body: &str, base_url: &str) -> Option<String> {
    let body = body.trim_start_matches('\u{feff}');
    let lines = body.lines().map(|line| line.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}'));
    let xspf;
    let entries: Vec<&str> = match kind {
        PlaylistKind::Pls => {
            let mut files: Vec<(u64, &str)> = lines
                .filter_map(|line| {
                    let (key, value) = line.split_once('=')?;
                    let key = key.trim();
                    let number = key.get(..4).filter(|k| k.eq_ignore_ascii_case("file")).and(key.get(4..))?;
                    Some((number.trim().parse().ok()?, value.trim()))
                })
                .collect();
            files.sort_by_key(|&(number, _)| number); // stable: a repeated N keeps file order
            files.into_iter().map(|(_, value)| value).collect()
        }
        PlaylistKind::M3u => lines.filter(|line| !line.is_empty() && !line.starts_with('#')).collect(),
        PlaylistKind::Xspf => {
            xspf = xspf_locations(body);
            xspf.iter().map(|location| location.trim()).collect()
        }
    };
    // Only an http(s) base: that is all a stream client has, and joining onto other schemes
    // (`file:` with drive letters) reaches a debug assertion inside the url crate.
    let base = Url::parse(base_url).ok().filter(|base| matches!(base.scheme(), "http" | "https"));
    entries.into_iter().filter(|entry| !entry.is_empty()).find_map(|entry| {
        let url = match &base {
            Some(base) => base.join(entry).ok()?,
            None => Url::parse(entry).ok()?,
        };
        matches!(url.scheme(), "http" | "https").then(|| url.to_string())
    })
}

/// The `<location>` texts of an XSPF document's tracks, in document order.
fn xspf_locations(body: &str) -> Vec<String> {
    let Ok(document) = roxmltree::Document::parse(body) else {
        return Vec::new();
    };
    document
        .descendants()
        .filter(|node| node.has_tag_name("location") && node.parent().is_some_and(|p| p.has_tag_name("track")))
        .filter_map(|node| node.text().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_content_type_then_extension() {
        let kind = playlist_kind;
        assert_eq!(kind("http://h/x", "audio/x-scpls"), Some(PlaylistKind::Pls));
        assert_eq!(kind("http://h/x", "Audio/SCPLS; charset=utf-8"), Some(PlaylistKind::Pls));
        assert_eq!(kind("http://h/x", "application/pls+xml"), Some(PlaylistKind::Pls));
        assert_eq!(kind("http://h/x", "audio/x-mpegurl"), Some(PlaylistKind::M3u));
        assert_eq!(kind("http://h/x", "audio/mpegurl"), Some(PlaylistKind::M3u));
        assert_eq!(kind("http://h/x", "application/x-mpegurl"), Some(PlaylistKind::M3u));
        assert_eq!(kind("http://h/x", "application/vnd.apple.mpegurl"), Some(PlaylistKind::M3u));
        assert_eq!(kind("http://h/listen.PLS?sid=1", ""), Some(PlaylistKind::Pls));
        assert_eq!(kind("http://h/a.m3u", "text/plain"), Some(PlaylistKind::M3u));
        assert_eq!(kind("http://h/a.m3u8#x", "application/octet-stream"), Some(PlaylistKind::M3u));
        assert_eq!(kind("http://h/a.m3u", "audio/mpeg"), None, "a stated audio type wins");
        assert_eq!(kind("http://h/a.pls", "text/html"), None);
        assert_eq!(kind("http://h/stream?f=a.pls", ""), None, "the query is not the path");
        assert_eq!(kind("http://h/stream", ""), None);
        assert_eq!(kind("http://h/x", "application/xspf+xml"), Some(PlaylistKind::Xspf));
        assert_eq!(kind("http://h/live.mp3.xspf", ""), Some(PlaylistKind::Xspf));
        assert_eq!(kind("/rel/a.pls", ""), Some(PlaylistKind::Pls));
    }

    #[test]
    fn pls_entries() {
        let body = "\u{feff}[playlist]\r\nNumberOfEntries=3\r\n File3 = http://c/3 \r\nTitle1=One\r\n\
                    file2=file:///local.mp3\r\nFILE1=rtsp://a/1\r\nFile10=http://z\r\nVersion=2\r\n";
        assert_eq!(first_entry(PlaylistKind::Pls, body, "http://base/list.pls").as_deref(), Some("http://c/3"));
        let relative = "[playlist]\nFile1=stream\nFile2=http://x/";
        assert_eq!(
            first_entry(PlaylistKind::Pls, relative, "http://base/dir/list.pls").as_deref(),
            Some("http://base/dir/stream")
        );
        assert_eq!(
            first_entry(PlaylistKind::Pls, "File1=/root", "https://b:8443/d/l.pls").as_deref(),
            Some("https://b:8443/root")
        );
        assert_eq!(first_entry(PlaylistKind::Pls, "[playlist]\nFile1=file:///x\n", "http://b/"), None);
        assert_eq!(first_entry(PlaylistKind::Pls, "", "http://b/"), None);
    }

    /// Found by `cargo xtask fuzz --target playlist`: joining `.%2E` onto this `file:` base
    /// trips a debug assertion inside the url crate (2.5.8). Entries are only resolved against
    /// an http(s) base, which is all a stream client ever has; here there is none.
    #[test]
    fn fuzz_regression_a_non_http_base_is_not_joined() {
        let base = "file:/\0\0\0\0\0\0\0I//G:?\\\0///?/////////";
        let body = "\n\n.%2E\n\0\0\\Y\0\\Yr'\\;";
        assert_eq!(first_entry(PlaylistKind::M3u, body, base), None);
        assert_eq!(first_entry(PlaylistKind::M3u, "http://abs/x\n", base).as_deref(), Some("http://abs/x"));
        assert_eq!(first_entry(PlaylistKind::Pls, "File1=rel", "ftp://b/list.pls"), None);
    }

    #[test]
    fn m3u_entries() {
        let body = "#EXTM3U\r\n\r\n#EXTINF:-1,Station\r\n  C:\\music\\a.mp3\r\nhttps://s/live  \r\nhttp://s/2\r\n";
        assert_eq!(first_entry(PlaylistKind::M3u, body, "http://b/x.m3u").as_deref(), Some("https://s/live"));
        assert_eq!(
            first_entry(PlaylistKind::M3u, "\u{feff}live.mp3\n", "http://b/dir/x.m3u").as_deref(),
            Some("http://b/dir/live.mp3")
        );
        assert_eq!(first_entry(PlaylistKind::M3u, "http://abs/only", "not a url").as_deref(), Some("http://abs/only"));
        assert_eq!(first_entry(PlaylistKind::M3u, "relative", "not a url"), None);
        assert_eq!(first_entry(PlaylistKind::M3u, "#EXTM3U\n# only comments\n", "http://b/"), None);
    }

    /// What icecast 2.4 serves at `<mount>.xspf` (its own xspf.xsl), and hostile documents.
    #[test]
    fn xspf_entries() {
        let icecast = r#"<?xml version="1.0" encoding="UTF-8"?>
<playlist xmlns="http://xspf.org/ns/0/" version="1">
  <title/>
  <creator/>
  <trackList>
    <track>
      <location>http://127.0.0.1:8000/live.mp3</location>
      <title>Tone</title>
      <annotation>Stream Title: async-net test</annotation>
      <info>http://127.0.0.1:8000/</info>
    </track>
  </trackList>
</playlist>"#;
        assert_eq!(
            first_entry(PlaylistKind::Xspf, icecast, "http://127.0.0.1:8000/live.mp3.xspf").as_deref(),
            Some("http://127.0.0.1:8000/live.mp3")
        );
        let relative = "<playlist><trackList><track><location> file:///x.mp3 </location></track>\
                        <track><location>b.ogg</location></track></trackList></playlist>";
        assert_eq!(first_entry(PlaylistKind::Xspf, relative, "http://h/d/p.xspf").as_deref(), Some("http://h/d/b.ogg"));
        // Only a track's location: the playlist's own <location> or <info> is no stream.
        let outside = "<playlist><location>http://not/this</location><trackList/></playlist>";
        assert_eq!(first_entry(PlaylistKind::Xspf, outside, "http://h/"), None);
        let entities = r#"<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>
<playlist><trackList><track><location>http://h/&b;</location></track></trackList></playlist>"#;
        assert_eq!(first_entry(PlaylistKind::Xspf, entities, "http://h/"), None, "a DTD is refused");
        assert_eq!(first_entry(PlaylistKind::Xspf, "<playlist><trackList><track>", "http://h/"), None);
        assert_eq!(first_entry(PlaylistKind::Xspf, "not xml", "http://h/"), None);
    }
}
