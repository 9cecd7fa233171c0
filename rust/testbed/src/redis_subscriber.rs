//! `testbed redis-subscriber`: a plain Rust subscriber on the same `redis` crate RedisSubscriber
//! uses, the way a Rust program would write one (`get_async_pubsub`, `on_message`, each payload
//! taken as a `String`), on a current-thread tokio runtime. It is a baseline of the Redis
//! throughput row of `cargo xtask bench` (`tests/bench/bench_redis.gd`), beside `redis-cli`.
//!
//! `testbed redis-subscriber --url URL --channel CH --messages N --ready-file F --out FILE
//! [--max-sec S]` subscribes to CH, writes F once the server confirmed the subscription, counts
//! N messages, and writes its report to FILE (through a temporary file and a rename): `{"ok",
//! "messages", "seconds", "rate"}`, where `seconds` runs from the first message to the N-th and
//! `rate` is the messages after the first over that time, or `{"ok": false, "error", "messages"}`.
//! It gives up after S seconds (default 120).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use lexopt::prelude::*;
use serde_json::json;

use crate::files::write_atomically;

/// `testbed redis-subscriber ...` (see the module docs).
pub fn main(args: Vec<OsString>) -> Result<ExitCode> {
    let (mut url, mut channel, mut messages, mut ready, mut out) = (None, None, None, None, None);
    let mut max = Duration::from_secs(120);
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("url") => url = Some(parser.value()?.string()?),
            Long("channel") => channel = Some(parser.value()?.string()?),
            Long("messages") => messages = Some(parser.value()?.parse::<u64>()?.max(2)),
            Long("ready-file") => ready = Some(PathBuf::from(parser.value()?)),
            Long("out") => out = Some(PathBuf::from(parser.value()?)),
            Long("max-sec") => max = Duration::from_secs(parser.value()?.parse()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let url = url.context("--url is required")?;
    let channel = channel.context("--channel is required")?;
    let messages = messages.context("--messages is required")?;
    let ready = ready.context("--ready-file is required")?;
    let out = out.context("--out is required")?;

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        match tokio::time::timeout(max, subscribe(&url, &channel, messages, &ready)).await {
            Ok(Ok(count)) => count,
            Ok(Err(err)) => Count::failed(format!("{err:#}")),
            Err(_) => Count::failed(format!("not done within {} s", max.as_secs())),
        }
    });
    write_atomically(&out, &(report.to_json().to_string() + "\n"))?;
    Ok(if report.error.is_none() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// What one run counted.
struct Count {
    messages: u64,
    /// From the first message to the last one counted.
    elapsed: Duration,
    error: Option<String>,
}

impl Count {
    fn failed(error: String) -> Count {
        Count { messages: 0, elapsed: Duration::ZERO, error: Some(error) }
    }

    fn to_json(&self) -> serde_json::Value {
        match &self.error {
            Some(error) => json!({"ok": false, "error": error, "messages": self.messages}),
            None => {
                let seconds = self.elapsed.as_secs_f64();
                let rate = if seconds > 0.0 { (self.messages - 1) as f64 / seconds } else { 0.0 };
                json!({"ok": true, "messages": self.messages, "seconds": seconds, "rate": rate})
            }
        }
    }
}

/// Subscribes, says so through `ready`, and counts `messages` payloads taken as `String`s.
async fn subscribe(url: &str, channel: &str, messages: u64, ready: &Path) -> Result<Count> {
    let client = redis::Client::open(url).with_context(|| format!("the url {url}"))?;
    let mut pubsub = client.get_async_pubsub().await.context("connecting")?;
    pubsub.subscribe(channel).await.context("SUBSCRIBE")?;
    write_atomically(ready, "subscribed\n")?;
    let mut stream = pubsub.on_message();
    let (mut count, mut bytes) = (0u64, 0usize);
    let mut first = None;
    while let Some(message) = stream.next().await {
        let payload: String = message.get_payload().context("a payload that is not UTF-8")?;
        bytes += payload.len();
        count += 1;
        let first = *first.get_or_insert_with(Instant::now);
        if count == messages {
            std::hint::black_box(bytes);
            return Ok(Count { messages: count, elapsed: first.elapsed(), error: None });
        }
    }
    anyhow::bail!("the connection closed after {count} of {messages} messages")
}
