//! `testbed stream-consumer`: a plain Rust stream consumer on the same `redis` crate
//! RedisStreamConsumer uses, the way a Rust program would write one: XREADGROUP (COUNT, BLOCK)
//! into the crate's `StreamReadReply`, each field taken as a `String`, then XACK of the batch, on
//! a current-thread tokio runtime. A baseline of the stream throughput row of `cargo xtask bench`
//! (tests/bench/bench_streams.gd), beside `redis-cli`.
//!
//! `testbed stream-consumer --url URL --stream S --group G --entries N --count C --out FILE
//! [--max-sec S]` reads the group (which must exist) until it has N entries and writes
//! `{"ok", "entries", "seconds", "rate"}` to FILE (through a temporary file and a rename), where
//! `seconds` runs from the first entry to the N-th and `rate` is the entries after the first
//! over that time; or `{"ok": false, "error", "entries"}`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lexopt::prelude::*;
use redis::{
    AsyncCommands,
    streams::{StreamReadOptions, StreamReadReply},
};
use serde_json::json;

use crate::files::write_atomically;

/// `testbed stream-consumer ...` (see the module docs).
pub fn main(args: Vec<OsString>) -> Result<ExitCode> {
    let (mut url, mut stream, mut group, mut entries, mut count, mut out) = (None, None, None, None, 100, None);
    let mut max = Duration::from_secs(120);
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("url") => url = Some(parser.value()?.string()?),
            Long("stream") => stream = Some(parser.value()?.string()?),
            Long("group") => group = Some(parser.value()?.string()?),
            Long("entries") => entries = Some(parser.value()?.parse::<u64>()?.max(2)),
            Long("count") => count = parser.value()?.parse::<usize>()?.max(1),
            Long("out") => out = Some(PathBuf::from(parser.value()?)),
            Long("max-sec") => max = Duration::from_secs(parser.value()?.parse()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let (url, stream) = (url.context("--url is required")?, stream.context("--stream is required")?);
    let group = group.context("--group is required")?;
    let entries = entries.context("--entries is required")?;
    let out = out.context("--out is required")?;

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        let reading = consume(&url, &stream, &group, entries, count);
        match tokio::time::timeout(max, reading).await {
            Ok(Ok(elapsed)) => {
                let seconds = elapsed.as_secs_f64();
                let rate = if seconds > 0.0 { (entries - 1) as f64 / seconds } else { 0.0 };
                json!({"ok": true, "entries": entries, "seconds": seconds, "rate": rate})
            }
            Ok(Err(err)) => json!({"ok": false, "error": format!("{err:#}")}),
            Err(_) => json!({"ok": false, "error": format!("not done within {} s", max.as_secs())}),
        }
    });
    write_atomically(&out, &(report.to_string() + "\n"))?;
    Ok(if report["ok"] == true { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Reads `entries` entries; the time from the first to the last.
async fn consume(url: &str, stream: &str, group: &str, entries: u64, count: usize) -> Result<Duration> {
    let client = redis::Client::open(url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let options = StreamReadOptions::default().group(group, "rust").count(count).block(1000);
    let (mut seen, mut first, mut fields) = (0u64, None, 0usize);
    while seen < entries {
        let reply: StreamReadReply = connection.xread_options(&[stream], &[">"], &options).await?;
        let mut ids = Vec::new();
        for key in reply.keys {
            for entry in key.ids {
                first.get_or_insert_with(Instant::now);
                // Taken as Strings, as a handler would use them.
                fields += entry.map.keys().filter(|name| entry.get::<String>(name).is_some()).count();
                ids.push(entry.id);
            }
        }
        if !ids.is_empty() {
            seen += ids.len() as u64;
            let _: usize = connection.xack(stream, group, &ids).await?;
        }
    }
    eprintln!("testbed stream-consumer: {seen} entries, {fields} fields");
    Ok(first.map_or(Duration::ZERO, |f| f.elapsed()))
}
