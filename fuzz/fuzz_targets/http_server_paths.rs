//! HttpServer's routing (`translate`, `Routes::add_route` and `find` on fuzzer patterns, methods
//! and paths) and `serve_files`' path resolution on fuzzer request paths, against a real folder
//! made once: `www/` with `index.html`, `a/b.txt` and a symbolic link out to `outside/`.
//!
//! Invariants: no panic; a path that resolves names a file inside `www/` (after links are
//! followed), never `outside/secret.txt`.
#![no_main]

use std::{fs, path::PathBuf, sync::OnceLock};

use async_net_core::{
    fuzzing::serve_files_resolve,
    http_server::{Routes, translate},
};
use libfuzzer_sys::{
    arbitrary::{self, Arbitrary},
    fuzz_target,
};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    pattern: &'a str,
    method: &'a str,
    path: &'a str,
}

/// The served folder (canonical), made once per process under the temp dir.
fn www() -> &'static PathBuf {
    static WWW: OnceLock<PathBuf> = OnceLock::new();
    WWW.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("async-net-fuzz-www-{}", std::process::id()));
        let www = root.join("www");
        fs::create_dir_all(www.join("a")).unwrap();
        fs::create_dir_all(root.join("outside")).unwrap();
        fs::write(www.join("index.html"), "index").unwrap();
        fs::write(www.join("a/b.txt"), "b").unwrap();
        fs::write(root.join("outside/secret.txt"), "secret").unwrap();
        #[cfg(unix)]
        let _ = std::os::unix::fs::symlink(root.join("outside"), www.join("link"));
        fs::canonicalize(www).unwrap()
    })
}

fuzz_target!(|input: Input<'_>| {
    let _ = translate(input.pattern);
    let mut routes = Routes::default();
    let _ = routes.add_route("GET", "/players/:id");
    let _ = routes.add_route("*", "/files/*rest");
    let _ = routes.add_route(input.method, input.pattern);
    let _ = routes.find(input.method, input.path);
    let _ = routes.find("GET", input.path);
    let www = www();
    if let Ok(file) = serve_files_resolve(www, input.path) {
        assert!(file.starts_with(www), "{:?} resolved to {file:?}, outside {www:?}", input.path);
        assert!(file.is_file(), "{file:?} is not a file");
    }
});
