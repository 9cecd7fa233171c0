//! The route table of an `HttpServer`: handler routes by method, WebSocket
//! endpoints and served folders, matched by `matchit`. Patterns are written
//! the Godot user's way (`/players/:id`, `/files/*path`) and translated to
//! matchit's (`/players/{id}`, `/files/{*path}`).

use std::{collections::HashMap, path::PathBuf, sync::Arc, time::Duration};

use percent_encoding::percent_decode_str;

/// Names a handler route or a WebSocket endpoint (the glue keeps what belongs to it).
pub type RouteId = u64;

/// A folder served under a URL prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The prefix, starting with `/` and without a trailing one (`""` for the root).
    pub prefix: String,
    /// The folder, made absolute and resolved (symbolic links followed).
    pub directory: PathBuf,
}

/// What a request's method and path lead to.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// A handler route, with the pattern's parameters (percent-decoded) and
    /// how long its GET answers are kept (zero: not kept).
    Route {
        id: RouteId,
        params: Vec<(String, String)>,
        keep: Duration,
    },
    /// A WebSocket endpoint (its pattern as the user wrote it).
    WebSocket {
        id: RouteId,
        pattern: Arc<str>,
    },
    /// A served folder, and the rest of the path below its prefix (still encoded).
    Files {
        mount: Arc<Mount>,
        rest: String,
    },
    /// The path has routes, none for this method (their methods, for `Allow`).
    MethodNotAllowed(Vec<String>),
    NotFound,
}

/// The routes of one server. The glue changes it on the main thread (under a
/// lock) while the I/O worker matches requests against it.
#[derive(Default)]
pub struct Routes {
    /// Per method (upper case; `*` for any), the matcher of its patterns.
    by_method: HashMap<String, matchit::Router<RouteId>>,
    /// Every (method, pattern) added, so adding one again replaces its handler.
    known: HashMap<(String, String), RouteId>,
    /// How long each route's GET answers are kept (routes not listed: not kept).
    keep: HashMap<RouteId, Duration>,
    websockets: matchit::Router<(RouteId, Arc<str>)>,
    known_websockets: HashMap<String, RouteId>,
    /// Longest prefix first.
    mounts: Vec<Arc<Mount>>,
    next_id: RouteId,
}

impl Routes {
    /// Adds a handler route; `Ok((id, true))` when it is new, `Ok((id, false))`
    /// when that method and pattern were routed before (the caller replaces
    /// the handler).
    pub fn add_route(&mut self, method: &str, pattern: &str) -> Result<(RouteId, bool), String> {
        let method = method.trim().to_ascii_uppercase();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic() || b == b'*') {
            return Err(format!("route: '{method}' is not an HTTP method (or \"*\" for any)"));
        }
        let key = (method.clone(), pattern.to_string());
        if let Some(id) = self.known.get(&key) {
            return Ok((*id, false));
        }
        let translated = translate(pattern)?;
        let id = self.next_id();
        self.by_method
            .entry(method)
            .or_default()
            .insert(translated, id)
            .map_err(|e| format!("route '{pattern}': {e}"))?;
        self.known.insert(key, id);
        Ok((id, true))
    }

    /// Keeps the GET answers of route `id` for `keep` (zero: not kept). Only
    /// GET and HEAD requests use it (see `cache.rs`).
    pub fn set_keep(&mut self, id: RouteId, keep: Duration) {
        if keep.is_zero() {
            self.keep.remove(&id);
        } else {
            self.keep.insert(id, keep);
        }
    }

    /// The routes (of any method) added with `pattern`.
    pub fn ids_of(&self, pattern: &str) -> Vec<RouteId> {
        self.known.iter().filter(|((_, p), _)| p == pattern).map(|(_, id)| *id).collect()
    }

    /// Adds a WebSocket endpoint (adding the same pattern again returns its id).
    pub fn add_websocket(&mut self, pattern: &str) -> Result<RouteId, String> {
        if let Some(id) = self.known_websockets.get(pattern) {
            return Ok(*id);
        }
        let translated = translate(pattern)?;
        let id = self.next_id();
        self.websockets
            .insert(translated, (id, Arc::from(pattern)))
            .map_err(|e| format!("websocket '{pattern}': {e}"))?;
        self.known_websockets.insert(pattern.to_string(), id);
        Ok(id)
    }

    /// Serves `directory` (which must exist) under `prefix`; a prefix served
    /// before now serves this directory.
    pub fn add_mount(&mut self, prefix: &str, directory: PathBuf) -> Result<(), String> {
        let trimmed = prefix.trim().trim_end_matches('/');
        if !prefix.trim().starts_with('/') || trimmed.contains(['*', ':', '{', '}', '?', '#']) {
            return Err(format!("serve_files: the URL prefix must start with '/' and be plain, got '{prefix}'"));
        }
        let directory = std::fs::canonicalize(&directory)
            .ok()
            .filter(|d| d.is_dir())
            .ok_or_else(|| format!("serve_files: '{}' is not a folder", directory.display()))?;
        self.mounts.retain(|m| m.prefix != trimmed);
        self.mounts.push(Arc::new(Mount { prefix: trimmed.to_string(), directory }));
        self.mounts.sort_by_key(|m| std::cmp::Reverse(m.prefix.len()));
        Ok(())
    }

    /// Where `method` and `path` (the request's, still percent-encoded) lead.
    /// Handler routes come first (a method's own, then `*`; HEAD also tries
    /// GET), then WebSocket endpoints (any method: the upgrade checks it),
    /// then served folders.
    pub fn find(&self, method: &str, path: &str) -> Found {
        let mut methods = vec![method, "*"];
        if method == "HEAD" {
            methods.insert(1, "GET");
        }
        for m in methods {
            if let Some(found) = self.by_method.get(m).and_then(|router| router.at(path).ok()) {
                let params = found.params.iter().map(|(k, v)| (k.to_string(), decode(v))).collect();
                let id = *found.value;
                return Found::Route { id, params, keep: self.keep.get(&id).copied().unwrap_or_default() };
            }
        }
        if let Ok(found) = self.websockets.at(path) {
            return Found::WebSocket { id: found.value.0, pattern: found.value.1.clone() };
        }
        for mount in &self.mounts {
            if let Some(rest) = path.strip_prefix(&mount.prefix)
                && (rest.is_empty() || rest.starts_with('/'))
            {
                return Found::Files { mount: mount.clone(), rest: rest.to_string() };
            }
        }
        let mut allowed: Vec<String> =
            self.by_method.iter().filter(|(_, router)| router.at(path).is_ok()).map(|(m, _)| m.clone()).collect();
        if allowed.is_empty() {
            return Found::NotFound;
        }
        allowed.sort();
        Found::MethodNotAllowed(allowed)
    }

    fn next_id(&mut self) -> RouteId {
        self.next_id += 1;
        self.next_id
    }
}

/// `/players/:id/*rest` as matchit writes it (`/players/{id}/{*rest}`);
/// braces written by the user are literal.
pub fn translate(pattern: &str) -> Result<String, String> {
    if !pattern.starts_with('/') {
        return Err(format!("route '{pattern}': a pattern starts with '/'"));
    }
    let segments: Vec<&str> = pattern.split('/').collect();
    let mut out = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        let (param, catch_all) = match segment.as_bytes().first() {
            Some(b':') => (&segment[1..], false),
            Some(b'*') => (&segment[1..], true),
            _ => {
                out.push(segment.replace('{', "{{").replace('}', "}}"));
                continue;
            }
        };
        if param.is_empty() || !param.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("route '{pattern}': a parameter is named with letters, digits and '_' ('{segment}')"));
        }
        if catch_all && i + 1 != segments.len() {
            return Err(format!("route '{pattern}': '*{param}' must be the last segment"));
        }
        out.push(if catch_all { format!("{{*{param}}}") } else { format!("{{{param}}}") });
    }
    Ok(out.join("/"))
}

/// A path parameter as the handler sees it: percent-decoded (invalid UTF-8 replaced).
fn decode(value: &str) -> String {
    percent_decode_str(value).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(found: Found) -> Vec<(String, String)> {
        match found {
            Found::Route { params, .. } => params,
            other => panic!("not a route: {other:?}"),
        }
    }

    #[test]
    fn patterns_translate_to_matchit_and_bad_ones_are_refused() {
        assert_eq!(translate("/players/:id").unwrap(), "/players/{id}");
        assert_eq!(translate("/files/*path").unwrap(), "/files/{*path}");
        assert_eq!(translate("/a/{b}").unwrap(), "/a/{{b}}");
        assert!(translate("players").unwrap_err().contains("starts with '/'"));
        assert!(translate("/x/*rest/y").unwrap_err().contains("last segment"));
        assert!(translate("/x/:").unwrap_err().contains("parameter"));
    }

    #[test]
    fn routes_match_by_method_then_any_and_decode_parameters() {
        let mut routes = Routes::default();
        let (get, new) = routes.add_route("get", "/players/:id").unwrap();
        assert!(new);
        let (any, _) = routes.add_route("*", "/files/*path").unwrap();
        assert_eq!(routes.add_route("GET", "/players/:id").unwrap(), (get, false), "same route again");
        let found = routes.find("GET", "/players/ada%20b");
        assert_eq!(found, Found::Route { id: get, params: vec![("id".into(), "ada b".into())], keep: Duration::ZERO });
        assert_eq!(params(routes.find("HEAD", "/players/7")), vec![("id".to_string(), "7".to_string())]);
        assert_eq!(
            routes.find("DELETE", "/files/a/b.txt"),
            Found::Route { id: any, params: vec![("path".into(), "a/b.txt".into())], keep: Duration::ZERO }
        );
        routes.set_keep(get, Duration::from_millis(100));
        assert!(matches!(routes.find("GET", "/players/7"), Found::Route { keep, .. } if keep.as_millis() == 100));
        assert_eq!(routes.ids_of("/players/:id"), vec![get]);
        assert_eq!(routes.find("POST", "/players/7"), Found::MethodNotAllowed(vec!["GET".into()]));
        assert_eq!(routes.find("GET", "/nothing"), Found::NotFound);
        assert!(routes.add_route("GET", "/players/:name").unwrap_err().contains("/players/:name"), "conflict");
        assert!(routes.add_route("GE T", "/x").is_err());
    }

    #[test]
    fn websockets_and_mounts_come_after_routes_longest_prefix_first() {
        let dir = std::env::temp_dir();
        let mut routes = Routes::default();
        let ws = routes.add_websocket("/live").unwrap();
        routes.add_mount("/", dir.clone()).unwrap();
        routes.add_mount("/static/", dir.clone()).unwrap();
        assert_eq!(routes.find("GET", "/live"), Found::WebSocket { id: ws, pattern: Arc::from("/live") });
        match routes.find("GET", "/static/app.js") {
            Found::Files { mount, rest } => assert_eq!((mount.prefix.as_str(), rest.as_str()), ("/static", "/app.js")),
            other => panic!("{other:?}"),
        }
        match routes.find("GET", "/index.html") {
            Found::Files { mount, rest } => assert_eq!((mount.prefix.as_str(), rest.as_str()), ("", "/index.html")),
            other => panic!("{other:?}"),
        }
        assert!(routes.add_mount("/x", dir.join("no-such-folder-here")).unwrap_err().contains("not a folder"));
        assert!(routes.add_mount("static", dir).is_err());
    }
}
