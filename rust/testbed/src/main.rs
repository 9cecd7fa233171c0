//! `testbed`: the project's own test peers, load generators and micro-benchmarks, one binary
//! with a subcommand each. `cargo xtask` builds it and starts it for the Godot tests, the bench
//! scenes, the soak and the demo; it depends on neither Godot nor xtask.

mod files;
mod lifetime;
mod loadgen;
mod radio_station;
mod soak_http_load;
mod soak_load;
mod stream_load;
mod ws_clients;
mod ws_echo;

#[cfg(feature = "microbench")]
mod decode_bench;
#[cfg(feature = "microbench")]
mod microbench;
#[cfg(feature = "microbench")]
mod redis_subscriber;
#[cfg(feature = "microbench")]
mod stream_consumer;

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::{Result, bail};

const USAGE: &str = "\
usage: testbed <command> [options]   (started by `cargo xtask`; see each module's docs)

test peers:
  radio-station [--port N] [--file MP3] [--port-file F] [--parent PID]
                               the local internet-radio station on 127.0.0.1 (ICY metadata,
                               SHOUTcast, chunked, playlists, redirects, broken streams)
  ws-echo --port-file F [--port P] [--max-sec S] [--stop-file F] [--parent PID]
                               the WebSocket echo and flood server on 127.0.0.1

load generators:
  loadgen idle|flood|rate --port P --out FILE ...
                               loopback TCP load for TcpSpawnerServer (JSON report in FILE)
  ws-clients --url URL --clients N --ready-file F --out FILE [--max-sec S]
                               WebSocket clients that count a server's broadcasts (JSON
                               report in FILE)
  soak-load --out FILE --stop-file F --pause-file F ...
                               the outside load of `cargo xtask soak` (Redis publisher, TCP
                               bursts, slowloris, garbage; JSON report in FILE)
  soak-http-load --port P --out FILE --stop-file F
                               HTTP clients of the soak's HttpServer: kept alive or not, slow
                               heads, aborts (JSON report in FILE)
  stream-load --urls U1,U2,... --stream S --rate N --out FILE --stop-file F [--plain-every K]
                               the stream soak's producer: XADD (with WAIT 1, or plain) to a
                               Redis Cluster, the id of every add Redis answered in FILE

micro-benchmarks (built with `--features microbench`, in release):
  microbench [--rounds N] [--steps N] [--paced-steps N]
                               the idle reactor step against a bare tokio step (BENCH rows)
  decode-bench --file MP3 --short-file MP3 [--runs N]
                               RadioStream's decoder against ffmpeg and mpg123 (BENCH rows)
  redis-subscriber --url URL --channel CH --messages N --ready-file F --out FILE
                               a plain Rust subscriber on the `redis` crate (a baseline of
                               the Redis throughput row; JSON report in FILE)
  stream-consumer --url URL --stream S --group G --entries N --count C --out FILE
                               a plain Rust stream consumer on the `redis` crate (a baseline
                               of the stream throughput row; JSON report in FILE)";

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.is_empty() || matches!(args[0].to_str(), Some("help" | "-h" | "--help")) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let command = args.remove(0).to_string_lossy().into_owned();
    let result = run(&command, args);
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("testbed {command}: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: &str, args: Vec<OsString>) -> Result<ExitCode> {
    match command {
        "radio-station" => radio_station::command::main(args),
        "ws-echo" => ws_echo::main(args),
        "loadgen" => loadgen::main(args),
        "ws-clients" => ws_clients::main(args),
        "soak-load" => soak_load::main(args),
        "soak-http-load" => soak_http_load::main(args),
        "stream-load" => stream_load::main(args),
        #[cfg(feature = "microbench")]
        "microbench" => microbench::main(args),
        #[cfg(feature = "microbench")]
        "decode-bench" => decode_bench::main(args),
        #[cfg(feature = "microbench")]
        "redis-subscriber" => redis_subscriber::main(args),
        #[cfg(feature = "microbench")]
        "stream-consumer" => stream_consumer::main(args),
        #[cfg(not(feature = "microbench"))]
        "microbench" | "decode-bench" | "redis-subscriber" | "stream-consumer" => bail!(
            "this testbed was built without the `microbench` feature: run \
             `cargo run --release -p testbed --features microbench -- {command}`"
        ),
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}
