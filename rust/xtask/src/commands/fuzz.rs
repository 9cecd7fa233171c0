//! `cargo xtask fuzz [--seconds N] [--target NAME] [-- LIBFUZZER_ARGS...]`: runs the cargo-fuzz
//! targets in `fuzz/` (libFuzzer, nightly toolchain) one after the other for N seconds each
//! (default 60), and prints a table of executions, speed, coverage and crashes.
//!
//! It installs what is missing: a C++ compiler (apt, for libFuzzer), the nightly toolchain
//! (`rustup toolchain install nightly`) and cargo-fuzz (`cargo install cargo-fuzz`, into
//! cargo's own bin directory). Each target's corpus
//! grows in `fuzz/corpus/TARGET` (not committed), seeded from `target/fuzz-seeds/TARGET`, which
//! is written here from the core's test fixtures. A crash leaves its input in
//! `fuzz/artifacts/TARGET/`; such inputs become regression tests in `rust/core` (plain
//! `cargo test`). `cargo xtask test` never runs the fuzzers.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::apt::{self, Probe, Requirement};
use crate::cli::Args;
use crate::{paths, process};

/// libfuzzer-sys compiles libFuzzer (C++) when the targets are built.
const CXX: Requirement = Requirement { probe: Probe::Program("c++"), package: "g++" };

/// libFuzzer options of every run: a 2 GiB RSS cap, no single allocation over 512 MiB (nothing a
/// parser does with a few KiB of input needs that), and 10 s for one input (else it counts as a hang).
const LIBFUZZER_LIMITS: [&str; 3] = ["-rss_limit_mb=2048", "-malloc_limit_mb=512", "-timeout=10"];

/// The test fixtures the decoder seeds come from, with the target's mode byte for each (see
/// `fuzz/fuzz_targets/decode.rs`: 0–2 a raw MP3/AAC/Vorbis stream, 3–6 a fixture with edits).
const DECODE_FIXTURES: [(&str, u8, u8); 4] =
    [("stereo_44k.mp3", 0, 3), ("mono_22k.mp3", 0, 4), ("stereo_44k.aac", 1, 5), ("stereo_44k.ogg", 2, 6)];

/// `cargo xtask fuzz` (see the module docs).
pub fn main(mut args: Args) -> Result<ExitCode> {
    let seconds = args.number("--seconds")?.unwrap_or(60).max(1);
    let only = args.value("--target")?;
    let extra = args.finish()?;

    let fuzz_dir = paths::root().join("fuzz");
    let mut targets = list_targets(&fuzz_dir)?;
    if let Some(only) = &only {
        if !targets.contains(only) {
            bail!("no fuzz target `{only}` (targets: {})", targets.join(", "));
        }
        targets.retain(|t| t == only);
    }
    ensure_tools()?;

    eprintln!("xtask fuzz: building {} target(s)", targets.len());
    process::run(nightly_cargo(&fuzz_dir).args(["fuzz", "build", "--fuzz-dir", ".", "--debug-assertions"]))?;

    let mut results = Vec::new();
    for target in &targets {
        let seeds = write_seeds(target)?;
        let corpus = fuzz_dir.join("corpus").join(target);
        fs::create_dir_all(&corpus)?;
        eprintln!("xtask fuzz: {target} for {seconds} s");
        let mut cmd = nightly_cargo(&fuzz_dir);
        cmd.args(["fuzz", "run", "--fuzz-dir", ".", "--debug-assertions", target]).arg(&corpus);
        if let Some(seeds) = &seeds {
            cmd.arg(seeds);
        }
        cmd.arg("--").arg(format!("-max_total_time={seconds}")).arg("-print_final_stats=1");
        cmd.args(LIBFUZZER_LIMITS).args(&extra);
        // libFuzzer stops itself; the limit only guards against a fuzzer that does not.
        let finished = process::capture(cmd, Some(Duration::from_secs(seconds + 300)))?;
        let run = Run::parse(target, &finished.log, finished.success());
        if !run.ok {
            // The panic (its message is the line after "panicked at"), then libFuzzer's summary.
            let lines: Vec<&str> = finished.log.lines().collect();
            let panic = lines.iter().position(|l| l.contains("panicked at") || l.contains("==ERROR"));
            let shown = panic.map(|i| &lines[i..(i + 3).min(lines.len())]).unwrap_or_default();
            eprintln!("xtask fuzz: {target} {}:", finished.describe());
            for line in shown.iter().chain(&lines[lines.len().saturating_sub(25)..]) {
                eprintln!("  {line}");
            }
        }
        eprintln!("{}", run.row());
        results.push(run);
    }

    println!("\n{}", Run::header());
    for run in &results {
        println!("{}", run.row());
    }
    let failed: Vec<&Run> = results.iter().filter(|r| !r.ok).collect();
    for run in &failed {
        for artifact in &run.artifacts {
            println!("crash input of {}: {artifact}", run.target);
        }
    }
    println!("{} target(s) fuzzed for {seconds} s each, {} with crashes", results.len(), failed.len());
    Ok(if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The targets: `fuzz/fuzz_targets/*.rs`, sorted.
fn list_targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let dir = fuzz_dir.join("fuzz_targets");
    let mut targets = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Some(stem) = path.file_stem()
        {
            targets.push(stem.to_string_lossy().into_owned());
        }
    }
    targets.sort();
    Ok(targets)
}

/// `cargo +nightly` in `dir`, through rustup's `cargo` (not the toolchain's cargo that runs
/// xtask, which does not take `+toolchain`), without the outer cargo's toolchain choice.
fn nightly_cargo(dir: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("+nightly").current_dir(dir);
    for var in ["RUSTUP_TOOLCHAIN", "CARGO", "RUSTC", "RUSTDOC", "CARGO_TARGET_DIR"] {
        cmd.env_remove(var);
    }
    cmd
}

/// Installs a C++ compiler, the nightly toolchain and cargo-fuzz when missing.
fn ensure_tools() -> Result<()> {
    apt::ensure(&[CXX])?;
    let fuzz_dir = paths::root().join("fuzz");
    if process::output(nightly_cargo(&fuzz_dir).arg("--version")).is_err() {
        eprintln!("xtask fuzz: installing the nightly toolchain (libFuzzer needs it)");
        process::run(Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))
            .context("cargo-fuzz needs a nightly toolchain, installed through rustup")?;
    }
    if process::output(nightly_cargo(&fuzz_dir).args(["fuzz", "--version"])).is_err() {
        eprintln!("xtask fuzz: installing cargo-fuzz");
        process::run(process::cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

/// Writes the seed inputs of `target` into `target/fuzz-seeds/TARGET` and returns that folder
/// (`None` for targets that start from nothing).
fn write_seeds(target: &str) -> Result<Option<PathBuf>> {
    let seeds = seeds(target)?;
    if seeds.is_empty() {
        return Ok(None);
    }
    let dir = paths::target_dir()?.join("fuzz-seeds").join(target);
    fs::create_dir_all(&dir)?;
    for (name, bytes) in seeds {
        fs::write(dir.join(name), bytes)?;
    }
    Ok(Some(dir))
}

/// Seed inputs, in each target's input format (see its header comment).
fn seeds(target: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let prefixed = |prefix: &[u8], body: &[u8]| [prefix, body].concat();
    Ok(match target {
        "decode" => {
            let testdata = paths::root().join("rust/core/src/radio/testdata");
            let mut out = Vec::new();
            for (file, raw_mode, fixture_mode) in DECODE_FIXTURES {
                let bytes = fs::read(testdata.join(file)).with_context(|| format!("reading fixture {file}"))?;
                out.push((format!("raw-{file}"), prefixed(&[raw_mode], &bytes)));
                // A cut, a junk insert and an overwritten byte, in the middle.
                out.push((
                    format!("edits-{file}"),
                    vec![fixture_mode, 0x00, 0x10, 2, 40, 0x00, 0x20, 1, 60, 0x00, 0x30, 0, 0xff],
                ));
            }
            out
        }
        "http_response" => {
            let responses: [&[u8]; 4] = [
                b"ICY 200 OK\r\nicy-name: Station\r\nicy-genre: Jazz\r\nicy-br: 128\r\nicy-metaint: 4\r\ncontent-type: audio/mpeg\r\n\r\nabcd\x01StreamTitle='A';\x00\x00\x00efgh\x00ijkl",
                b"HTTP/1.1 200 OK\r\nContent-Type: audio/aac\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
                b"HTTP/1.1 302 Found\r\nLocation: /other.pls\r\nContent-Length: 0\r\n\r\n",
                b"HTTP/1.0 200 OK\r\nContent-Type: audio/x-scpls\r\n\r\n[playlist]\nFile1=http://radio.example/live\n",
            ];
            responses.iter().enumerate().map(|(i, r)| (format!("response-{i}"), prefixed(&[1, 0], r))).collect()
        }
        "line_codec" => {
            vec![("lines".into(), prefixed(&[8, 0, 1, 2, 3, 5], b"Ada\nBob\r\n\xff\xfe\nx.y:z\ntoo long a line\nend"))]
        }
        "icy_shim" => vec![
            ("icy".into(), prefixed(&[16, 1, 2], b"ICY 200 OK\r\n\r\n")),
            ("http".into(), prefixed(&[16, 0], b"HTTP/1.1 200 OK\r\n")),
        ],
        "resp_limit" => vec![(
            "push".into(),
            prefixed(
                &[0, 1, 2, 5, 9],
                b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n|1\r\n+k\r\n:1\r\n%1\r\n+a\r\n*-1\r\n",
            ),
        )],
        "push_tap" => vec![(
            "pushes".into(),
            prefixed(
                &[2, 6, 30],
                b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n>4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$0\r\n\r\n+OK\r\n",
            ),
        )],
        "icy_metadata" => vec![(
            "blocks".into(),
            prefixed(&[4, 0, 2, 3, 7], b"abcd\x02StreamTitle='Rock 'n' Roll';StreamUrl='';\x00\x00efgh\x00ijkl"),
        )],
        _ => Vec::new(),
    })
}

/// What one target's run reported.
struct Run {
    target: String,
    ok: bool,
    execs: Option<u64>,
    execs_per_sec: Option<u64>,
    /// libFuzzer's `cov:` (edges) and `ft:` (features) at the end, and the corpus size.
    coverage: Option<String>,
    features: Option<String>,
    corpus: Option<String>,
    peak_rss_mb: Option<u64>,
    artifacts: Vec<String>,
}

impl Run {
    fn parse(target: &str, log: &str, success: bool) -> Run {
        let stat = |name: &str| log.lines().rev().find_map(|line| line.strip_prefix(name)?.trim().parse::<u64>().ok());
        // The last status line, e.g. `#123456 DONE cov: 812 ft: 2411 corp: 301/12Kb lim: 4096 exec/s: 2057 rss: 412Mb`.
        let status = log.lines().rev().find(|line| line.starts_with('#') && line.contains("cov: ")).unwrap_or("");
        let field = |key: &str| {
            let words: Vec<&str> = status.split_whitespace().collect();
            words.iter().position(|w| *w == key).and_then(|i| words.get(i + 1)).map(|w| w.to_string())
        };
        let artifacts: Vec<String> = log
            .lines()
            .filter_map(|line| line.split_once("Test unit written to ").map(|(_, path)| path.trim().to_string()))
            .collect();
        Run {
            target: target.to_string(),
            ok: success && artifacts.is_empty(),
            execs: stat("stat::number_of_executed_units:"),
            execs_per_sec: stat("stat::average_exec_per_sec:"),
            coverage: field("cov:"),
            features: field("ft:"),
            corpus: field("corp:"),
            peak_rss_mb: stat("stat::peak_rss_mb:"),
            artifacts,
        }
    }

    fn header() -> String {
        format!(
            "{:<14} {:>12} {:>8} {:>6} {:>7} {:>12} {:>8}  result",
            "target", "execs", "exec/s", "cov", "ft", "corpus", "rss MB"
        )
    }

    fn row(&self) -> String {
        let n = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
        let s = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
        let result = if self.ok { "ok".to_string() } else { format!("CRASH ({} input(s))", self.artifacts.len()) };
        format!(
            "{:<14} {:>12} {:>8} {:>6} {:>7} {:>12} {:>8}  {result}",
            self.target,
            n(self.execs),
            n(self.execs_per_sec),
            s(&self.coverage),
            s(&self.features),
            s(&self.corpus),
            n(self.peak_rss_mb)
        )
    }
}
