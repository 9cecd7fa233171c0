//! The environment variables through which xtask tells the Godot projects where their services
//! are, one constant each; every place in xtask that sets one uses these. The GDScript side names
//! the same variables once as well: `tests/runner/env.gd` for the tests project (the tests, the
//! soak scene, the packaged addon's smoke run) and `godot_project/common/demo_env.gd` for the demo,
//! which cannot load files from tests/. The tests below keep the three lists equal. One more
//! variable is for the Rust tests, not a Godot project ([`REQUIRE_SERVICES`]).

// --- `cargo xtask test`: the services of the Godot tests and of the packaged addon's smoke run ---

/// Port of the plain redis-server on 127.0.0.1.
pub const TEST_REDIS_PORT: &str = "ASYNC_NET_TEST_REDIS_PORT";
/// Port of the redis-server that requires [`TEST_REDIS_PASSWORD`].
pub const TEST_REDIS_AUTH_PORT: &str = "ASYNC_NET_TEST_REDIS_AUTH_PORT";
/// The password of that server.
pub const TEST_REDIS_PASSWORD: &str = "ASYNC_NET_TEST_REDIS_PASSWORD";
/// Path of redis-server, for a test that runs (and kills, and restarts) one of its own.
pub const TEST_REDIS_SERVER: &str = "ASYNC_NET_TEST_REDIS_SERVER";
/// Path of redis-cli, which tests publish and inspect with.
pub const TEST_REDIS_CLI: &str = "ASYNC_NET_TEST_REDIS_CLI";
/// TLS port of a redis-server (its own TLS, certificate signed by [`TEST_WS_CA`]), for rediss://.
pub const TEST_REDIS_TLS_PORT: &str = "ASYNC_NET_TEST_REDIS_TLS_PORT";
/// `redis://127.0.0.1:<port>` of the six nodes of the test Redis Cluster (three masters, three
/// replicas), joined with commas; set only when the selected tests use it (redis_cluster.rs).
pub const TEST_REDIS_CLUSTER_URLS: &str = "ASYNC_NET_TEST_REDIS_CLUSTER_URLS";
/// Port of the Python WebSocket echo server (tests/helpers/ws_server.py), ws://.
pub const TEST_WS_PORT: &str = "ASYNC_NET_TEST_WS_PORT";
/// Port of the same server's wss://.
pub const TEST_WSS_PORT: &str = "ASYNC_NET_TEST_WSS_PORT";
/// Path of the CA (PEM) that signed the wss:// certificate.
pub const TEST_WS_CA: &str = "ASYNC_NET_TEST_WS_CA";
/// Path of a CA (PEM) that did not sign it.
pub const TEST_WS_WRONG_CA: &str = "ASYNC_NET_TEST_WS_WRONG_CA";
/// Path of the test venv's Python (target/venv), which runs tests/helpers/*.py.
pub const TEST_PYTHON: &str = "ASYNC_NET_TEST_PYTHON";
/// Port of icecast2, whose `/test.mp3` mount an ffmpeg source feeds with the tone.
pub const TEST_ICECAST_PORT: &str = "ASYNC_NET_TEST_ICECAST_PORT";
/// icecast2's source password (user `source`), for tests that feed mounts of their own.
pub const TEST_ICECAST_SOURCE_PASSWORD: &str = "ASYNC_NET_TEST_ICECAST_SOURCE_PASSWORD";
/// icecast2's admin user (`/admin/metadata`).
pub const TEST_ICECAST_ADMIN_USER: &str = "ASYNC_NET_TEST_ICECAST_ADMIN_USER";
/// icecast2's admin password.
pub const TEST_ICECAST_ADMIN_PASSWORD: &str = "ASYNC_NET_TEST_ICECAST_ADMIN_PASSWORD";
/// Path of ffmpeg, which tests run as icecast sources and to decode recordings.
pub const TEST_FFMPEG: &str = "ASYNC_NET_TEST_FFMPEG";
/// Path of the generated tone (target/media/tone.mp3) that icecast and the station play.
pub const TEST_RADIO_TONE: &str = "ASYNC_NET_TEST_RADIO_TONE";
/// Port of the testbed's radio station, playing the tone.
pub const TEST_STATION_PORT: &str = "ASYNC_NET_TEST_STATION_PORT";
/// Port of nginx's plain http (static files, gzip, Range, redirects).
pub const TEST_NGINX_PORT: &str = "ASYNC_NET_TEST_NGINX_PORT";
/// Port of nginx's https (HTTP/2 and HTTP/1.1 through ALPN), certified by [`TEST_HTTP_CA`].
pub const TEST_NGINX_TLS_PORT: &str = "ASYNC_NET_TEST_NGINX_TLS_PORT";
/// The folder nginx serves (`big.bin`, `small.json`, `text.txt`), to compare downloads with.
pub const TEST_NGINX_ROOT: &str = "ASYNC_NET_TEST_NGINX_ROOT";
/// Path of the CA (PEM) that signed nginx's certificate.
pub const TEST_HTTP_CA: &str = "ASYNC_NET_TEST_HTTP_CA";
/// Path of a server certificate (PEM) for 127.0.0.1 and localhost, signed by [`TEST_HTTP_CA`]
/// (HttpServer's https and wss tests).
pub const TEST_HTTP_CERT: &str = "ASYNC_NET_TEST_HTTP_CERT";
/// Path of the private key (PEM) of [`TEST_HTTP_CERT`].
pub const TEST_HTTP_KEY: &str = "ASYNC_NET_TEST_HTTP_KEY";
/// Port of the aiohttp server (tests/helpers/http_server.py): streams, events, faults, echo.
pub const TEST_AIOHTTP_PORT: &str = "ASYNC_NET_TEST_AIOHTTP_PORT";
/// Port of tinyproxy, which requires [`TEST_PROXY_USER`] and [`TEST_PROXY_PASSWORD`].
pub const TEST_PROXY_PORT: &str = "ASYNC_NET_TEST_PROXY_PORT";
/// The proxy's Basic-auth user.
pub const TEST_PROXY_USER: &str = "ASYNC_NET_TEST_PROXY_USER";
/// The proxy's Basic-auth password.
pub const TEST_PROXY_PASSWORD: &str = "ASYNC_NET_TEST_PROXY_PASSWORD";
/// Path of the Godot that runs the tests, for tests that run it as a subprocess.
pub const TEST_GODOT: &str = "ASYNC_NET_TEST_GODOT";
/// Path of the reload-probe build of the editor library (rust/reload-probe: the same sources
/// with a class more and another AsyncHub layout), which the editor tests hot-reload.
pub const TEST_RELOAD_LIBRARY: &str = "ASYNC_NET_TEST_RELOAD_LIBRARY";

// --- `cargo xtask test`: the Rust tests (`cargo test --workspace`), not a Godot project ---

/// Set to `1`: a Rust test whose server program (redis-server) is missing fails instead of
/// skipping. Read by rust/core/src/test_programs.rs, which spells it out itself (the core does
/// not depend on xtask).
pub const REQUIRE_SERVICES: &str = "ASYNC_NET_REQUIRE_SERVICES";

// --- `cargo xtask soak`: tests/soak/soak.tscn ---

/// The folder where the scene and the harness exchange files.
pub const SOAK_DIR: &str = "ASYNC_NET_SOAK_DIR";
/// Port of the soak's redis-server (killed and restarted on the same port).
pub const SOAK_REDIS_PORT: &str = "ASYNC_NET_SOAK_REDIS_PORT";
/// The channel the soak load publishes to; only the scene subscribes to it.
pub const SOAK_CHANNEL: &str = "ASYNC_NET_SOAK_CHANNEL";
/// URL of the soak's WebSocket echo server.
pub const SOAK_WS_URL: &str = "ASYNC_NET_SOAK_WS_URL";
/// URL of the soak's icecast mount.
pub const SOAK_RADIO_URL: &str = "ASYNC_NET_SOAK_RADIO_URL";
/// Port the scene's TcpSpawnerServer listens on, where the soak load connects.
pub const SOAK_TCP_PORT: &str = "ASYNC_NET_SOAK_TCP_PORT";
/// Mean seconds between the 250 ms stalls the scene puts on its own main thread.
pub const SOAK_STALL_EVERY_SEC: &str = "ASYNC_NET_SOAK_STALL_EVERY_SEC";

// --- `cargo xtask soak`, its stream step: tests/soak/stream_consumer.tscn ---

/// redis:// URLs of the soak's Redis Cluster, joined with commas.
pub const SOAK_STREAM_URLS: &str = "ASYNC_NET_SOAK_STREAM_URLS";
/// The stream the soak's producer adds to and the scene's RedisStreamConsumer reads.
pub const SOAK_STREAM: &str = "ASYNC_NET_SOAK_STREAM";

// --- `cargo xtask demo` and `screenshots`: godot_project/ ---

/// URL of the local redis-server of the Redis feed demo.
pub const DEMO_REDIS_URL: &str = "ASYNC_NET_DEMO_REDIS_URL";
/// redis:// URLs of the local Redis Cluster of the Leaderboard demo, joined with commas.
pub const DEMO_REDIS_CLUSTER_URLS: &str = "ASYNC_NET_DEMO_REDIS_CLUSTER_URLS";
/// URL of the local WebSocket echo server of the WsEcho demo.
pub const DEMO_WS_URL: &str = "ASYNC_NET_DEMO_WS_URL";
/// URL of the local radio station's stream for the RadioStream demo.
pub const DEMO_RADIO_URL: &str = "ASYNC_NET_DEMO_RADIO_URL";
/// Base URL (ending in `/`) of the local aiohttp server of the Fetch demo: its JSON feed and ticker.
pub const DEMO_HTTP_URL: &str = "ASYNC_NET_DEMO_HTTP_URL";
/// The port the Dashboard demo's HttpServer listens on (its page, WebSocket and commands).
pub const DEMO_DASHBOARD_PORT: &str = "ASYNC_NET_DEMO_DASHBOARD_PORT";

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::fs;
    use std::path::Path;

    use super::REQUIRE_SERVICES;
    use crate::paths;

    /// The variables only the Rust tests read, which no GDScript file names.
    const RUST_ONLY: [&str; 1] = [REQUIRE_SERVICES];

    /// The GDScript constants of the tests project and of the demo, relative to the root.
    const TESTS_GD: &str = "tests/runner/env.gd";
    const DEMO_GD: &str = "godot_project/common/demo_env.gd";

    /// The `"ASYNC_NET_..."` string literals in `text`.
    fn literals(text: &str) -> BTreeSet<String> {
        text.match_indices("\"ASYNC_NET_")
            .filter_map(|(at, _)| text[at + 1..].split('"').next())
            .map(String::from)
            .collect()
    }

    /// The names this module declares (its text before the tests).
    fn declared() -> BTreeSet<String> {
        let source = include_str!("env_contract.rs");
        literals(&source[..source.find("#[cfg(test)]").unwrap()])
    }

    fn read(relative: &str) -> String {
        fs::read_to_string(paths::root().join(relative)).unwrap_or_else(|e| panic!("reading {relative}: {e}"))
    }

    #[test]
    fn the_gdscript_constants_name_the_same_variables() {
        let (demo, tests): (BTreeSet<String>, BTreeSet<String>) = declared()
            .into_iter()
            .filter(|name| !RUST_ONLY.contains(&name.as_str()))
            .partition(|name| name.starts_with("ASYNC_NET_DEMO_"));
        assert_eq!(literals(&read(TESTS_GD)), tests, "{TESTS_GD} against env_contract.rs");
        assert_eq!(literals(&read(DEMO_GD)), demo, "{DEMO_GD} against env_contract.rs");
    }

    /// Every `.rs` (or `.gd`) file under `dir`.
    fn files(dir: &Path, ext: &str, out: &mut Vec<std::path::PathBuf>) {
        for entry in fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() && !name.to_string_lossy().starts_with('.') && name != "addons" {
                files(&path, ext, out);
            } else if path.extension().is_some_and(|e| e == ext) {
                out.push(path);
            }
        }
    }

    #[test]
    fn nothing_else_spells_a_variable_out() {
        let mut rust = Vec::new();
        files(&paths::root().join("rust/xtask/src"), "rs", &mut rust);
        for file in rust.iter().filter(|f| !f.ends_with("env_contract.rs")) {
            let found = literals(&fs::read_to_string(file).unwrap());
            assert!(found.is_empty(), "{} sets {found:?} by name: use env_contract's constants", file.display());
        }
        let mut gd = Vec::new();
        files(&paths::root().join("tests"), "gd", &mut gd);
        files(&paths::root().join("godot_project"), "gd", &mut gd);
        for file in &gd {
            let text = fs::read_to_string(file).unwrap();
            assert!(
                !text.contains("get_environment(\"ASYNC_NET_"),
                "{} reads a variable by name: use {TESTS_GD} or {DEMO_GD}",
                file.display()
            );
        }
    }
}
