//! `cargo xtask bench`: release builds, then the benchmarks, each against what a Godot user
//! would use instead, measured in the same run; prints a table and writes `target/bench.json`.
//!
//! Sources of `BENCH {json}` rows:
//! - `testbed microbench` from a release build of the testbed (rust/testbed): the idle reactor
//!   step against a bare tokio step (see its microbench.rs for why this one is measured in Rust);
//! - `testbed decode-bench` from the same binary: RadioStream's decoding pipeline against ffmpeg
//!   and mpg123 on a generated 5-minute MP3 and the 1-minute one it repeats (the difference
//!   keeps process start-up out);
//! - the scenes `res://bench/bench_*.tscn` of the tests project, run headless with the release
//!   library against load or servers started from the same release binary (`loadgen`,
//!   `ws-echo`, `radio-station`; the scenes get its path as `--loadgen=PATH`) or real ones
//!   (redis-server, and nginx for bench_http: started here, its port passed as `--http-port=PORT`;
//!   for bench_sharded_redis the six-node Redis Cluster, its seeds passed as `--cluster-urls=...`;
//!   bench_http_server loads its servers with Debian's `wrk`, passed as `--wrk=PATH`);
//!   then bench_main's idle `AsyncHub.step()` row once more with the debug
//!   (template_debug) library, which the editor loads.

use std::fs;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::build::{self, Profile};
use crate::apt::{self, Requirement};
use crate::cli::Args;
use crate::paths::{self, Project};
use crate::redis_cluster::RedisCluster;
use crate::{godot, http_services, media, process, testbed};

/// System packages the benchmarks need (probe, Debian package): bench_redis.tscn starts its own
/// redis-server and floods it with redis-benchmark, against redis-cli as a subscriber.
const REQUIREMENTS: &[Requirement] = &[
    Requirement::program("redis-server", "redis-server"),
    Requirement::program("redis-cli", "redis-tools"),
    Requirement::program("redis-benchmark", "redis-tools"),
    // RadioStream: the bench and station audio is made with ffmpeg; mpg123 is a decode baseline.
    Requirement::program("ffmpeg", "ffmpeg"),
    Requirement::program("mpg123", "mpg123"),
    // HttpSession: bench_http downloads from nginx, beside HTTPRequest.
    http_services::NGINX,
    // HttpServer: bench_http_server's HTTP load.
    WRK,
];

/// Debian's wrk, the HTTP load generator of bench_http_server.
const WRK: Requirement = Requirement::program("wrk", "wrk");

/// The scene that gets nginx's port.
const HTTP_SCENE: &str = "bench_http.tscn";

/// The scene that gets the Redis Cluster's seeds.
const CLUSTER_SCENE: &str = "bench_sharded_redis.tscn";
/// The scene that gets wrk's path.
const HTTP_SERVER_SCENE: &str = "bench_http_server.tscn";

/// The benchmark scene in the tests project.
/// The bench scenes are `tests/bench/bench_*.tscn`, one per node family, run in name order.
const SCENE_DIR: &str = "bench";

/// Time limit of the benchmark scene (it has its own, shorter watchdog).
const LIMIT: Duration = Duration::from_secs(10 * 60);

/// Time limit of the microbenchmark.
const MICRO_LIMIT: Duration = Duration::from_secs(120);

/// Prefix of the lines the bench scene prints, one per measured metric.
const ROW_PREFIX: &str = "BENCH ";

/// The scene, and its `--only` name, of the idle `AsyncHub.step()` row, which runs a second time
/// with the template_debug library.
const STEP_SCENE: &str = "bench_main.tscn";
const STEP_ROW: &str = "step";

/// `cargo xtask bench [--scene SUBSTR] [-- ARGS...]`: runs every bench scene (or those whose
/// name contains SUBSTR); ARGS go to each scene (e.g. `--only=idle,flood`).
pub fn main(mut args: Args) -> Result<ExitCode> {
    let wanted = args.value("--scene")?;
    let scene_args = args.finish()?;
    let started = Instant::now();
    apt::ensure(REQUIREMENTS)?;
    let godot = godot::find()?;
    build::build(Profile::Release, &[], &godot)?;
    let helper = testbed::build(Profile::Release)?;

    let mut rows = Vec::new();
    let mut problems = Vec::new();
    match microbench(&helper) {
        Ok(found) => rows.extend(found),
        Err(err) => problems.push(format!("microbench: {err:#}")),
    }
    if wanted.as_deref().is_none_or(|w| "radio".contains(w)) {
        match decode_bench(&helper) {
            Ok(found) => rows.extend(found),
            Err(err) => problems.push(format!("decode-bench: {err:#}")),
        }
        // The radio scene's station (`testbed radio-station` without --file) plays it.
        media::station_mp3()?;
    }

    // Where the scene and the load generator exchange files; fresh for every run.
    let work = paths::target_dir()?.join("bench-work");
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let scenes = scenes(wanted.as_deref())?;
    // Plain http: the rows compare the transfer, and HTTPRequest would need the test CA.
    let nginx = if scenes.iter().any(|s| s.ends_with(HTTP_SCENE)) {
        Some(http_services::start_nginx("bench-nginx", None, None)?)
    } else {
        None
    };
    let cluster = if scenes.iter().any(|s| s.ends_with(CLUSTER_SCENE)) {
        Some(RedisCluster::start("bench-redis-cluster")?)
    } else {
        None
    };
    {
        let _slot = build::ReleaseInDebugSlot::install("the benchmarks")?;
        build::prepare_project(&godot, Project::Tests)?;
        for scene in &scenes {
            let mut args = scene_args.clone();
            if let Some(nginx) = nginx.as_ref().filter(|_| scene.ends_with(HTTP_SCENE)) {
                args.push(format!("--http-port={}", nginx.http_port));
            }
            if let Some(cluster) = cluster.as_ref().filter(|_| scene.ends_with(CLUSTER_SCENE)) {
                args.push(format!("--cluster-urls={}", cluster.urls().join(",")));
            }
            if scene.ends_with(HTTP_SERVER_SCENE) {
                let wrk = crate::process::which("wrk").context("wrk is not installed")?;
                args.push(format!("--wrk={}", wrk.display()));
            }
            let run = run_scene(&godot, scene, &helper, &work, &args)?;
            rows.extend(run.rows);
            problems.extend(run.problem);
        }
    }
    // The editor and debug runs load the template_debug library: the idle step row once more
    // with it (issue 15 has a target for it), after the release library left its slot.
    if scenes.iter().any(|s| s.ends_with(STEP_SCENE)) && wants_row(&scene_args, STEP_ROW) {
        match build::build(Profile::Debug, &[], &godot) {
            Ok(()) => {
                let args = [format!("--only={STEP_ROW}"), "--library=template_debug".into()];
                let run = run_scene(&godot, &format!("res://{SCENE_DIR}/{STEP_SCENE}"), &helper, &work, &args)?;
                rows.extend(run.rows);
                problems.extend(run.problem);
            }
            Err(err) => problems.push(format!("building the debug library for the step row: {err:#}")),
        }
    }

    if !rows.is_empty() {
        println!("\n{}", table(&rows));
        let out = paths::target_dir()?.join("bench.json");
        let report = json!({
            "date": utc_now(),
            "godot_version": godot.version,
            "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        });
        fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", out.display()))?;
        println!("wrote {} ({} rows, {:.0} s in all)", out.display(), rows.len(), started.elapsed().as_secs_f64());
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    Ok(ExitCode::SUCCESS)
}

/// What one run of a bench scene printed, and what went wrong, if anything.
struct SceneRun {
    rows: Vec<Row>,
    problem: Option<String>,
}

/// Runs one bench scene headless with `args` after the ones every scene gets.
fn run_scene(godot: &godot::Godot, scene: &str, helper: &Path, work: &Path, args: &[String]) -> Result<SceneRun> {
    let mut cmd = godot.command();
    // As a game runs: with RUST_BACKTRACE set, gdext's strict safeguards (the template_debug
    // library) capture a backtrace at every bind(), about 5 us per idle step.
    cmd.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE");
    cmd.args(["--headless", "--path"]).arg(Project::Tests.dir()).args(["--scene", scene, "--"]);
    cmd.arg(format!("--loadgen={}", helper.display())).arg(format!("--workdir={}", work.display()));
    cmd.args(args);
    eprintln!("xtask: {}", process::describe(&cmd));
    let run = process::stream(cmd, Some(LIMIT))?;
    let rows = parse_rows(&run.log)?;
    let problem = if !run.success() {
        Some(format!("the bench scene {scene} {} ({} rows printed)", run.describe(), rows.len()))
    } else if rows.is_empty() {
        Some(format!("the bench scene {scene} printed no `{ROW_PREFIX}{{json}}` rows"))
    } else {
        None
    };
    Ok(SceneRun { rows, problem })
}

/// Whether scene arguments `args` leave row `name` in: no `--only=`, or one that names it.
fn wants_row(args: &[String], name: &str) -> bool {
    args.iter().filter_map(|a| a.strip_prefix("--only=")).all(|list| list.split(',').any(|n| n == name))
}

/// The `res://` paths of the bench scenes whose file name contains `wanted`, in name order.
fn scenes(wanted: Option<&str>) -> Result<Vec<String>> {
    let dir = Project::Tests.dir().join(SCENE_DIR);
    let mut found = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with("bench_") && name.ends_with(".tscn") && wanted.is_none_or(|w| name.contains(w)) {
            found.push(format!("res://{SCENE_DIR}/{name}"));
        }
    }
    found.sort();
    if found.is_empty() {
        bail!("no bench scene in {} matches {:?}", dir.display(), wanted.unwrap_or("*"));
    }
    Ok(found)
}

/// Runs `helper microbench` and returns its rows.
fn microbench(helper: &Path) -> Result<Vec<Row>> {
    helper_rows(helper, &["microbench".as_ref()])
}

/// Runs `helper decode-bench` on the 5-minute bench MP3 and the 1-minute station MP3 it repeats
/// (the difference takes process start-up out) and returns its rows.
fn decode_bench(helper: &Path) -> Result<Vec<Row>> {
    let (long, short) = (media::bench_mp3()?, media::station_mp3()?);
    helper_rows(
        helper,
        &["decode-bench".as_ref(), "--file".as_ref(), long.as_os_str(), "--short-file".as_ref(), short.as_os_str()],
    )
}

/// Runs the release helper with `args` (a subcommand that prints rows) and returns its rows.
fn helper_rows(helper: &Path, args: &[&std::ffi::OsStr]) -> Result<Vec<Row>> {
    let mut cmd = Command::new(helper);
    cmd.args(args);
    let what = process::describe(&cmd);
    eprintln!("xtask: {what}");
    let run = process::stream(cmd, Some(MICRO_LIMIT))?;
    if !run.success() {
        bail!("`{what}` {}", run.describe());
    }
    let rows = parse_rows(&run.log)?;
    if rows.is_empty() {
        bail!("`{what}` printed no rows");
    }
    Ok(rows)
}

/// While alive, the release library sits in the addon's `template_debug` slot.
///
/// One measured metric: this project against what a Godot user would use instead.
#[derive(Debug, PartialEq)]
struct Row {
    metric: String,
    unit: String,
    ours: f64,
    baseline: f64,
    baseline_name: String,
    lower_is_better: bool,
    /// How it was measured (statistic, sample count, conditions), printed under the table.
    detail: Option<String>,
    /// The row's target and whether this run met it ("ours <= 0.8x baseline: met"), when it has one.
    target: Option<String>,
}

impl Row {
    fn parse(json: &str) -> Result<Row> {
        let v: Value = serde_json::from_str(json)?;
        let text = |k: &str| v[k].as_str().map(String::from).with_context(|| format!("`{k}` must be a string"));
        let number = |k: &str| v[k].as_f64().with_context(|| format!("`{k}` must be a number"));
        Ok(Row {
            metric: text("metric")?,
            unit: text("unit")?,
            ours: number("ours")?,
            baseline: number("baseline")?,
            baseline_name: text("baseline_name")?,
            lower_is_better: v["lower_is_better"].as_bool().context("`lower_is_better` must be a boolean")?,
            detail: v["detail"].as_str().map(String::from),
            target: v["target"].as_str().map(String::from),
        })
    }

    /// How many times better this project is: baseline/ours when lower is better, else
    /// ours/baseline; `None` unless both are above zero (a cost measured as a difference can
    /// come out at or below zero, within the noise).
    fn ratio(&self) -> Option<f64> {
        let (num, den) = if self.lower_is_better { (self.baseline, self.ours) } else { (self.ours, self.baseline) };
        (den > 0.0 && num > 0.0).then(|| num / den)
    }

    fn to_json(&self) -> Value {
        json!({
            "metric": self.metric,
            "unit": self.unit,
            "ours": self.ours,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "lower_is_better": self.lower_is_better,
            "ratio": self.ratio(),
            "detail": self.detail,
            "target": self.target,
        })
    }
}

fn parse_rows(log: &str) -> Result<Vec<Row>> {
    log.lines()
        .filter_map(|l| l.trim().strip_prefix(ROW_PREFIX))
        .map(|json| Row::parse(json).with_context(|| format!("bad bench row: {ROW_PREFIX}{json}")))
        .collect()
}

/// The rows as an aligned text table (a target column when a row has a target), then one
/// numbered note per row that has a detail.
fn table(rows: &[Row]) -> String {
    let mut lines = vec![vec![
        "metric".to_string(),
        "this project".into(),
        "baseline".into(),
        "ratio (>1: this project is better)".into(),
        "target".into(),
    ]];
    let mut notes = Vec::new();
    for r in rows {
        let better = if r.lower_is_better { "lower is better" } else { "higher is better" };
        let note = match &r.detail {
            Some(detail) => {
                notes.push(format!("[{}] {detail}", notes.len() + 1));
                format!(" [{}]", notes.len())
            }
            None => String::new(),
        };
        lines.push(vec![
            format!("{} ({better}){note}", r.metric),
            format!("{} {}", number(r.ours), r.unit),
            format!("{} {} ({})", number(r.baseline), r.unit, r.baseline_name),
            r.ratio().map_or("-".into(), |x| format!("{x:.2}x")),
            r.target.clone().unwrap_or_default(),
        ]);
    }
    let columns = if rows.iter().any(|r| r.target.is_some()) { 5 } else { 4 };
    for line in &mut lines {
        line.truncate(columns);
    }
    let widths: Vec<usize> =
        (0..columns).map(|c| lines.iter().map(|l| l[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let cells: Vec<String> = line.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join(" | ").trim_end());
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("-|-"));
            out.push('\n');
        }
    }
    if !notes.is_empty() {
        out.push('\n');
        out.push_str(&notes.join("\n"));
        out.push('\n');
    }
    out
}

/// A number with a precision that suits its size.
fn number(x: f64) -> String {
    match x.abs() {
        a if a >= 1000.0 || a == 0.0 => format!("{x:.0}"),
        a if a >= 10.0 => format!("{x:.1}"),
        a if a >= 0.1 => format!("{x:.3}"),
        _ => format!("{x:.3e}"),
    }
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    utc_date(secs)
}

fn utc_date(unix_secs: u64) -> String {
    // Days to civil date: Howard Hinnant's algorithm.
    let days = (unix_secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let s = unix_secs % 86_400;
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows_and_ratios() {
        let log = "noise\nBENCH {\"metric\":\"step\",\"unit\":\"us\",\"ours\":2,\"baseline\":10,\"baseline_name\":\"GDScript\",\"lower_is_better\":true}\n\
                   BENCH {\"metric\":\"lines/s\",\"unit\":\"1/s\",\"ours\":300,\"baseline\":100,\"baseline_name\":\"TCPServer\",\"lower_is_better\":false}\n";
        let rows = parse_rows(log).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].ratio(), Some(5.0));
        assert_eq!(rows[1].ratio(), Some(3.0));
        let t = table(&rows);
        assert!(t.lines().nth(2).unwrap().ends_with("5.00x"), "{t}");
        assert!(parse_rows("BENCH {\"metric\":1}").is_err());
    }

    #[test]
    fn targets_get_a_column_and_costs_at_or_below_zero_no_ratio() {
        let log = "BENCH {\"metric\":\"idle\",\"unit\":\"us\",\"ours\":-0.2,\"baseline\":9,\"baseline_name\":\"b\",\"lower_is_better\":true,\"target\":\"ours <= 0.3x baseline: met\"}\n";
        let rows = parse_rows(log).unwrap();
        assert_eq!(rows[0].ratio(), None);
        assert_eq!(rows[0].to_json()["target"], "ours <= 0.3x baseline: met");
        let t = table(&rows);
        let cells: Vec<&str> = t.lines().nth(2).unwrap().split(" | ").map(str::trim).collect();
        assert_eq!(cells[3..], ["-", "ours <= 0.3x baseline: met"], "{t}");
    }

    #[test]
    fn details_become_numbered_notes() {
        let log = "BENCH {\"metric\":\"a\",\"unit\":\"us\",\"ours\":1,\"baseline\":2,\"baseline_name\":\"b\",\"lower_is_better\":true,\"detail\":\"median of 9\"}\n";
        let rows = parse_rows(log).unwrap();
        assert_eq!(rows[0].detail.as_deref(), Some("median of 9"));
        assert_eq!(rows[0].to_json()["detail"], "median of 9");
        let t = table(&rows);
        assert!(t.contains("a (lower is better) [1]"), "{t}");
        assert!(t.trim_end().ends_with("[1] median of 9"), "{t}");
    }

    #[test]
    fn only_arguments_select_rows() {
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(wants_row(&[], "step"));
        assert!(wants_row(&args(&["--only=idle,step"]), "step"));
        assert!(!wants_row(&args(&["--only=idle"]), "step"));
        assert!(!wants_row(&args(&["--only=steps"]), "step"));
    }

    #[test]
    fn formats_dates() {
        assert_eq!(utc_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_date(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_date(1_767_225_599), "2025-12-31T23:59:59Z");
    }
}
