//! `cargo xtask bench`: release builds, then the benchmarks, each against what a Godot user
//! would use instead, measured in the same run; prints a table and writes `target/bench.json`.
//!
//! Sources of `BENCH {json}` rows:
//! - `testbed microbench` from a release build of the testbed (rust/testbed): the idle reactor
//!   step against a bare tokio step (see its microbench.rs for why this one is measured in Rust);
//! - `testbed decode-bench` from the same binary: RadioStream's decoding pipeline against ffmpeg
//!   and mpg123 on a generated 5-minute MP3;
//! - the scenes `res://bench/bench_*.tscn` of the tests project, run headless with the release
//!   library against load or servers started from the same release binary (`loadgen`,
//!   `ws-echo`, `radio-station`; the scenes get its path as `--loadgen=PATH`) or real ones
//!   (redis-server).

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
use crate::{godot, media, process, testbed};

/// System packages the benchmarks need (probe, Debian package): bench_redis.tscn starts its own
/// redis-server and floods it with redis-benchmark, against redis-cli as a subscriber.
const REQUIREMENTS: &[Requirement] = &[
    Requirement::program("redis-server", "redis-server"),
    Requirement::program("redis-cli", "redis-tools"),
    Requirement::program("redis-benchmark", "redis-tools"),
    // RadioStream: the bench and station audio is made with ffmpeg; mpg123 is a decode baseline.
    Requirement::program("ffmpeg", "ffmpeg"),
    Requirement::program("mpg123", "mpg123"),
];

/// The benchmark scene in the tests project.
/// The bench scenes are `tests/bench/bench_*.tscn`, one per node family, run in name order.
const SCENE_DIR: &str = "bench";

/// Time limit of the benchmark scene (it has its own, shorter watchdog).
const LIMIT: Duration = Duration::from_secs(10 * 60);

/// Time limit of the microbenchmark.
const MICRO_LIMIT: Duration = Duration::from_secs(120);

/// Prefix of the lines the bench scene prints, one per measured metric.
const ROW_PREFIX: &str = "BENCH ";

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
    {
        let _slot = build::ReleaseInDebugSlot::install("the benchmarks")?;
        build::prepare_project(&godot, Project::Tests)?;
        for scene in scenes(wanted.as_deref())? {
            let mut cmd = godot.command();
            cmd.args(["--headless", "--path"]).arg(Project::Tests.dir()).args(["--scene", &scene, "--"]);
            cmd.arg(format!("--loadgen={}", helper.display())).arg(format!("--workdir={}", work.display()));
            cmd.args(&scene_args);
            eprintln!("xtask: {}", process::describe(&cmd));
            let run = process::stream(cmd, Some(LIMIT))?;
            let scene_rows = parse_rows(&run.log)?;
            if !run.success() {
                problems.push(format!(
                    "the bench scene {scene} {} ({} rows printed)",
                    run.describe(),
                    scene_rows.len()
                ));
            } else if scene_rows.is_empty() {
                problems.push(format!("the bench scene {scene} printed no `{ROW_PREFIX}{{json}}` rows"));
            }
            rows.extend(scene_rows);
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

/// Runs `helper decode-bench` on the 5-minute bench MP3 and returns its rows.
fn decode_bench(helper: &Path) -> Result<Vec<Row>> {
    let file = media::bench_mp3()?;
    helper_rows(helper, &["decode-bench".as_ref(), "--file".as_ref(), file.as_os_str()])
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
        })
    }

    /// How many times better this project is: baseline/ours when lower is better, else
    /// ours/baseline; `None` when dividing by zero.
    fn ratio(&self) -> Option<f64> {
        let (num, den) = if self.lower_is_better { (self.baseline, self.ours) } else { (self.ours, self.baseline) };
        (den != 0.0).then(|| num / den)
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
        })
    }
}

fn parse_rows(log: &str) -> Result<Vec<Row>> {
    log.lines()
        .filter_map(|l| l.trim().strip_prefix(ROW_PREFIX))
        .map(|json| Row::parse(json).with_context(|| format!("bad bench row: {ROW_PREFIX}{json}")))
        .collect()
}

/// The rows as an aligned text table, then one numbered note per row that has a detail.
fn table(rows: &[Row]) -> String {
    let mut lines = vec![[
        "metric".to_string(),
        "this project".into(),
        "baseline".into(),
        "ratio (>1: this project is better)".into(),
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
        lines.push([
            format!("{} ({better}){note}", r.metric),
            format!("{} {}", number(r.ours), r.unit),
            format!("{} {} ({})", number(r.baseline), r.unit, r.baseline_name),
            r.ratio().map_or("-".into(), |x| format!("{x:.2}x")),
        ]);
    }
    let widths: Vec<usize> = (0..4).map(|c| lines.iter().map(|l| l[c].chars().count()).max().unwrap_or(0)).collect();
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
    fn formats_dates() {
        assert_eq!(utc_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_date(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_date(1_767_225_599), "2025-12-31T23:59:59Z");
    }
}
