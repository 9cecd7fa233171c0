//! `cargo xtask bench`: release build, run the benchmark scene of the tests project, collect its
//! `BENCH {json}` rows, print them as a table and write `target/bench.json`.

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::build::{self, Profile};
use crate::apt::{self, Requirement};
use crate::cli::Args;
use crate::paths::{self, Project};
use crate::{godot, process};

/// System packages the benchmarks need (probe, Debian package).
const REQUIREMENTS: &[Requirement] = &[];

/// The benchmark scene in the tests project.
const SCENE: &str = "res://bench/bench_main.tscn";

/// Time limit of the whole benchmark run.
const LIMIT: Duration = Duration::from_secs(30 * 60);

/// Prefix of the lines the bench scene prints, one per measured metric.
const ROW_PREFIX: &str = "BENCH ";

/// `cargo xtask bench [-- ARGS...]`: ARGS go to the bench scene.
pub fn main(args: Args) -> Result<ExitCode> {
    let scene_args = args.finish()?;
    apt::ensure(REQUIREMENTS)?;
    let godot = godot::find()?;
    build::build(Profile::Release, &[], &godot)?;

    let run = {
        let _slot = ReleaseInDebugSlot::install()?;
        build::prepare_project(&godot, Project::Tests)?;
        let mut cmd = godot.command();
        cmd.args(["--headless", "--path"]).arg(Project::Tests.dir()).args(["--scene", SCENE, "--"]).args(&scene_args);
        eprintln!("xtask: {}", process::describe(&cmd));
        process::stream(cmd, Some(LIMIT))?
    };
    let rows = parse_rows(&run.log)?;
    if !run.success() {
        bail!("the bench scene {} ({} rows printed)", run.describe(), rows.len());
    }
    if rows.is_empty() {
        bail!("the bench scene printed no `{ROW_PREFIX}{{json}}` rows");
    }

    println!("\n{}", table(&rows));
    let out = paths::target_dir()?.join("bench.json");
    let report = json!({
        "date": utc_now(),
        "godot_version": godot.version,
        "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
    });
    fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// While alive, the release library sits in the addon's `template_debug` slot.
///
/// Godot picks a library by feature tags. xtask always runs an editor build of Godot (it
/// needs `--import`), and an editor build has the `debug` tag, never `release`, so it only
/// loads the `linux.debug.x86_64` entry; the `template_release` file is only for exported
/// games. Benchmarking the optimized build therefore means putting it in the debug slot, for
/// the bench run only: the debug library is moved aside and put back on drop (also after an
/// error), so `build`, `test` and the editor keep getting the debug build they expect. A
/// backup left by a killed run is restored first.
struct ReleaseInDebugSlot {
    slot: PathBuf,
    backup: PathBuf,
    had_debug: bool,
}

impl ReleaseInDebugSlot {
    fn install() -> Result<Self> {
        let slot = build::addon_library(Profile::Debug)?;
        let backup =
            slot.with_file_name(format!("{}.bench-backup", slot.file_name().unwrap_or_default().to_string_lossy()));
        if backup.exists() {
            // An earlier bench died before restoring: the backup is the real debug library.
            fs::rename(&backup, &slot).with_context(|| format!("restoring {}", slot.display()))?;
        }
        let had_debug = slot.exists();
        if had_debug {
            fs::rename(&slot, &backup).with_context(|| format!("moving {} aside", slot.display()))?;
        }
        build::install_library(&build::built_library(Profile::Release)?, Profile::Debug)?;
        eprintln!("xtask: the release library stands in for the debug one during the benchmarks");
        Ok(ReleaseInDebugSlot { slot, backup, had_debug })
    }
}

impl Drop for ReleaseInDebugSlot {
    fn drop(&mut self) {
        let restored = if self.had_debug { fs::rename(&self.backup, &self.slot) } else { fs::remove_file(&self.slot) };
        if let Err(err) = restored {
            eprintln!("xtask: warning: could not put the debug library back at {}: {err}", self.slot.display());
        }
    }
}

/// One measured metric: this project against what a Godot user would use instead.
#[derive(Debug, PartialEq)]
struct Row {
    metric: String,
    unit: String,
    ours: f64,
    baseline: f64,
    baseline_name: String,
    lower_is_better: bool,
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
        })
    }
}

fn parse_rows(log: &str) -> Result<Vec<Row>> {
    log.lines()
        .filter_map(|l| l.trim().strip_prefix(ROW_PREFIX))
        .map(|json| Row::parse(json).with_context(|| format!("bad bench row: {ROW_PREFIX}{json}")))
        .collect()
}

/// The rows as an aligned text table.
fn table(rows: &[Row]) -> String {
    let mut lines = vec![[
        "metric".to_string(),
        "this project".into(),
        "baseline".into(),
        "ratio (>1: this project is better)".into(),
    ]];
    for r in rows {
        let better = if r.lower_is_better { "lower is better" } else { "higher is better" };
        lines.push([
            format!("{} ({better})", r.metric),
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
fn utc_now() -> String {
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
    fn formats_dates() {
        assert_eq!(utc_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_date(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_date(1_767_225_599), "2025-12-31T23:59:59Z");
    }
}
