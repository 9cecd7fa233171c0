//! `testbed stream-load`: the producer of the stream soak (`cargo xtask soak`,
//! rust/xtask/src/commands/soak/streams.rs). It adds entries to one stream of a Redis Cluster
//! on the `redis` crate's cluster client, one at a time at a steady rate, and records the id of
//! every add that Redis answered, so the harness can check that the consumer handled each one:
//!
//! - most adds are XADD followed by `WAIT 1` on the same node (what `add_wait_replicas = 1`
//!   does): an add whose WAIT counted a replica is *promised* (it survives a failover);
//! - every `--plain-every`-th add is a plain XADD (and one whose WAIT counted no replica is
//!   *unconfirmed*): reported apart, since a failover may lose it;
//! - an add that failed (no master for the slot during a failover) has no id: only counted.
//!
//! `testbed stream-load --urls U1,U2,... --stream S --rate N --out FILE --stop-file F
//! [--plain-every K] [--max-sec S]` writes `{"promised": [ids], "plain": [ids], "unconfirmed":
//! [ids], "failed": n}` to FILE (through a temporary file and a rename) once F exists.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lexopt::prelude::*;
use redis::{
    Value,
    cluster::ClusterClientBuilder,
    cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr},
};
use serde_json::json;

use crate::files::write_atomically;
use crate::lifetime::Lifetime;

/// How long WAIT waits for a replica.
const WAIT_MSEC: u64 = 1000;

struct Options {
    urls: Vec<String>,
    stream: String,
    rate: f64,
    plain_every: u64,
    out: PathBuf,
    lifetime: Lifetime,
}

/// What the adds got.
#[derive(Default)]
struct Added {
    promised: Vec<String>,
    plain: Vec<String>,
    unconfirmed: Vec<String>,
    failed: u64,
    errors: Vec<String>,
}

/// `testbed stream-load ...` (see the module docs).
pub fn main(args: Vec<OsString>) -> Result<ExitCode> {
    let (mut urls, mut stream, mut rate, mut out, mut stop_file) = (None, None, 200.0, None, None);
    let (mut plain_every, mut max, mut parent) = (10, Duration::from_secs(600), None);
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("urls") => urls = Some(parser.value()?.string()?),
            Long("stream") => stream = Some(parser.value()?.string()?),
            Long("rate") => rate = parser.value()?.parse::<f64>()?.max(1.0),
            Long("plain-every") => plain_every = parser.value()?.parse::<u64>()?.max(1),
            Long("out") => out = Some(PathBuf::from(parser.value()?)),
            Long("stop-file") => stop_file = Some(PathBuf::from(parser.value()?)),
            Long("max-sec") => max = Duration::from_secs(parser.value()?.parse()?),
            Long("parent") => parent = Some(parser.value()?.parse()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let options = Options {
        urls: urls.context("--urls is required")?.split(',').map(str::to_string).collect(),
        stream: stream.context("--stream is required")?,
        rate,
        plain_every,
        out: out.context("--out is required")?,
        lifetime: Lifetime {
            stop_file: Some(stop_file.context("--stop-file is required")?),
            deadline: Some(Instant::now() + max),
            parent,
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let added = runtime.block_on(add(&options))?;
    eprintln!(
        "testbed stream-load: {} promised, {} plain, {} unconfirmed, {} failed",
        added.promised.len(),
        added.plain.len(),
        added.unconfirmed.len(),
        added.failed
    );
    let report = json!({
        "promised": added.promised,
        "plain": added.plain,
        "unconfirmed": added.unconfirmed,
        "failed": added.failed,
        "error_samples": added.errors,
    });
    write_atomically(&options.out, &(report.to_string() + "\n"))?;
    Ok(ExitCode::SUCCESS)
}

async fn add(o: &Options) -> Result<Added> {
    let client = ClusterClientBuilder::new(o.urls.clone())
        .connection_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_millis(WAIT_MSEC + 2000))
        .build()?;
    let mut connection = client.get_async_connection().await.context("connecting to the cluster")?;
    let node = SingleNodeRoutingInfo::SpecificNode(Route::with_key(&o.stream, SlotAddr::Master));
    let every = Duration::from_secs_f64(1.0 / o.rate);
    let mut added = Added::default();
    let mut next = tokio::time::Instant::now();
    for n in 0u64.. {
        if o.lifetime.ended().is_some() {
            break;
        }
        let plain = n % o.plain_every == 0;
        let mut pipe = redis::pipe();
        pipe.cmd("XADD").arg(&o.stream).arg("*").arg("n").arg(n).arg("kind").arg(if plain { "plain" } else { "wait" });
        if !plain {
            pipe.cmd("WAIT").arg(1).arg(WAIT_MSEC);
        }
        match connection.route_pipeline(pipe.clone(), 0, pipe.len(), node.clone()).await {
            Ok(replies) => match replies.as_slice() {
                [Value::BulkString(id)] => added.plain.push(String::from_utf8_lossy(id).into_owned()),
                [Value::BulkString(id), Value::Int(replicas)] => {
                    let id = String::from_utf8_lossy(id).into_owned();
                    if *replicas >= 1 { added.promised.push(id) } else { added.unconfirmed.push(id) }
                }
                other => note(&mut added, format!("unexpected replies {other:?}")),
            },
            Err(err) => note(&mut added, err.to_string()),
        }
        next += every;
        tokio::time::sleep_until(next.max(tokio::time::Instant::now() - every)).await;
    }
    Ok(added)
}

fn note(added: &mut Added, error: String) {
    added.failed += 1;
    if added.errors.len() < 5 {
        added.errors.push(error);
    }
}
