//! `cargo xtask`: build the extension, run the tests, the demo and the benchmarks of godot-async-net.

mod apt;
mod cli;
mod commands;
mod env_contract;
mod godot;
mod http_services;
mod log_check;
mod media;
mod paths;
mod process;
mod python;
mod redis_cluster;
mod services;
mod testbed;

use std::process::ExitCode;

use cli::Args;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  build [--release]            build the editor library (cargo profile `editor`; --release: the
                               release one), install it in addons/async_net/bin, link the addon
                               into the Godot projects and import them
  test [--filter SUBSTR]       cargo test --workspace, then the headless Godot tests in tests/,
       [--no-cargo-test]       the packaged addon in a new project (step `package`; --package-zip
       [--package-zip ZIP]     tests ZIP instead of packaging one) and actionlint on the workflows
                               (step `workflows`), a 25 s soak and the screenshot tour; --filter
                               selects Godot tests whose \"file::method\" contains SUBSTR, or
                               those xtask steps
  demo [--seconds N]           run godot_project (windowed when a display exists);
       [--headless]            the demo quits itself after N seconds (headless default: 10);
       [-- ARGS]               ARGS go to the project: --demo=NAME (one demo), --autoplay
  screenshots [--out DIR]      the menu and each demo in a window on a virtual X server (Xvfb,
       [--size WxH]            software OpenGL), once each shows live data; PNGs into DIR
                               (default docs/screenshots, 1280x720), each checked not blank
  bench [--scene SUBSTR]       release builds (library and testbed), then the testbed's
        [-- ARGS...]           `microbench` and `decode-bench` and the scenes tests/bench/bench_*.tscn
                               (ARGS go to each scene, e.g. --only=idle,flood,rate,spawn);
                               prints a table and writes target/bench.json
  package [--no-build]         editor + release builds, then dist/async_net-<version>.zip (the addon),
          [--libs DIR]         dist/async_net-<version>-symbols.zip (split debug info) and
          [--require K,K...]   dist/async_net-demo-<version>.zip; --libs adds prebuilt libraries
          [--no-demo]          (other platforms) named as the .gdextension lists them; --require
                               fails unless those [libraries] keys (all: every one) are in the zip
  soak [--seconds N] [--release]
                               every node at once in tests/soak/soak.tscn against real services
                               while redis, the WebSocket server and the radio source are killed
                               and restarted, with TCP bursts, slowloris and garbage (default 120 s);
                               checks lost messages and descriptors, writes target/soak.json;
                               --release runs the release library (the frame times a game sees)
  radio-station [--port N]     the project's local internet-radio station on 127.0.0.1 (default
       [--file MP3]            port 8000; ICY metadata, playlists, redirects, broken streams),
       [--port-file FILE]      playing the generated demo music; prints its URLs
  godot [ARGS...]              run the Godot that xtask uses, with ARGS
  fuzz [--seconds N]           run each cargo-fuzz target in fuzz/ for N seconds (default 60;
       [--target NAME]         installs nightly and cargo-fuzz when missing); prints execs,
       [-- LIBFUZZER_ARGS]     exec/s, coverage and crashes (crash inputs: fuzz/artifacts/)

The test peers, load generators and micro-benchmarks that these commands start are the
testbed's (rust/testbed): `cargo run -p testbed -- help`.

Godot is taken from $GODOT, else a `godot`/`godot4` 4.5+ on PATH, else (Debian/apt)
a private copy of Debian's godot package fetched into target/godot/.";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || matches!(args[0].as_str(), "help" | "-h" | "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let command = args.remove(0);
    let result = match command.as_str() {
        "build" => commands::build::main(Args::new(args)),
        "test" => commands::test::main(Args::new(args)),
        "demo" => commands::demo::main(Args::new(args)),
        "screenshots" => commands::screenshots::main(Args::new(args)),
        "bench" => commands::bench::main(Args::new(args)),
        "package" => commands::package::main(Args::new(args)),
        "soak" => commands::soak::main(Args::new(args)),
        "godot" => commands::godot_passthrough(args),
        "fuzz" => commands::fuzz::main(Args::new(args)),
        "radio-station" => commands::radio_station::main(Args::new(args)),
        other => {
            eprintln!("xtask: unknown command `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask {command}: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
