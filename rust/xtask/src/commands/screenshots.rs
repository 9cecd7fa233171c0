//! `cargo xtask screenshots`: runs the demo project in a real window on a virtual X server
//! (Xvfb, Mesa's llvmpipe software OpenGL), tours the menu and every demo until it shows live
//! data, saves one PNG each (`docs/screenshots/` by default) and checks that none is blank.
//! `cargo xtask test` runs the same tour into a temporary directory ([`take`], [`judge`]), so a
//! broken renderer or an empty demo fails the tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::build::{self, Profile};
use super::demo::DemoServices;
use crate::apt::{self, Probe, Requirement};
use crate::cli::Args;
use crate::log_check::{self, Counts};
use crate::paths::{self, Project};
use crate::services::{self, Service};
use crate::{godot, process};

/// System packages of a screenshot run: the virtual X server, Mesa's GLX and its software
/// (llvmpipe) driver, and the services the demos need to show live data.
pub const REQUIREMENTS: &[Requirement] = &[
    Requirement::program("Xvfb", "xvfb"),
    Requirement { probe: Probe::Command(&["sh", "-c", "ls /usr/lib/*/libGL.so.1"]), package: "libgl1" },
    Requirement { probe: Probe::Command(&["sh", "-c", "ls /usr/lib/*/libGLX_mesa.so.0"]), package: "libglx-mesa0" },
    Requirement { probe: Probe::Command(&["sh", "-c", "ls /usr/lib/*/dri/swrast_dri.so"]), package: "libgl1-mesa-dri" },
    services::REDIS,
    services::FFMPEG,
];

/// Where `cargo xtask screenshots` saves by default (relative to the repository root).
pub const DEFAULT_DIR: &str = "docs/screenshots";

/// The window size of the committed screenshots.
pub const DEFAULT_SIZE: (u32, u32) = (1280, 720);

/// The screens the tour saves: the menu, then one per demo folder.
pub const SCREENS: [&str; 9] =
    ["menu", "timers", "tcp_spawner", "redis_feed", "radio", "ws_echo", "fetch", "leaderboard", "dashboard"];

/// Time limit of one tour (each demo may wait up to 30 s for live data).
const TOUR_LIMIT: Duration = Duration::from_secs(5 * 60);

/// `cargo xtask screenshots [--out DIR] [--size WxH]`.
pub fn main(mut args: Args) -> Result<ExitCode> {
    let out = args.value("--out")?.map_or_else(|| paths::root().join(DEFAULT_DIR), PathBuf::from);
    let size = args.value("--size")?.map(|s| parse_size(&s)).transpose()?.unwrap_or(DEFAULT_SIZE);
    args.finish()?;
    let tour = take(&out, size)?;
    for problem in &tour.problems {
        eprintln!("xtask: {problem}");
    }
    let (counts, _) = judge_all(&out, size);
    println!("{} screenshots in {}: {} passed, {} failed", SCREENS.len(), out.display(), counts.passed, counts.failed);
    Ok(if counts.failed == 0 && tour.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Judges the PNG of every screen in `dir` ([`judge`]), printing `PASS screenshots::NAME (how it
/// looks)` or `FAIL screenshots::NAME: why`; returns the counts and the FAIL lines.
pub fn judge_all(dir: &Path, size: (u32, u32)) -> (Counts, Vec<String>) {
    let mut counts = Counts::default();
    let mut failures = Vec::new();
    for screen in SCREENS {
        match judge(&dir.join(format!("{screen}.png")), size) {
            Ok(look) => {
                println!("PASS screenshots::{screen} ({look})");
                counts.passed += 1;
            }
            Err(err) => {
                let line = format!("FAIL screenshots::{screen}: {err:#}");
                println!("{line}");
                failures.push(line);
                counts.failed += 1;
            }
        }
    }
    (counts, failures)
}

/// What a tour reported besides the PNGs: demos that never showed live data, script errors or
/// panics, a Godot that failed or hung.
pub struct Tour {
    /// One line per problem; empty when the tour went well.
    pub problems: Vec<String>,
}

/// Builds the extension, starts the demo services and a virtual X server, and runs the demo
/// project's screenshot tour (`-- --screenshots=DIR`) in a `width`x`height` window.
pub fn take(dir: &Path, (width, height): (u32, u32)) -> Result<Tour> {
    apt::ensure(REQUIREMENTS)?;
    let godot = godot::find()?;
    build::build(Profile::Debug, &[Project::Demo], &godot)?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for screen in SCREENS {
        let _ = fs::remove_file(dir.join(format!("{screen}.png")));
    }
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let xvfb = Xvfb::start(width, height)?;

    let mut cmd = godot.command();
    cmd.args(["--display-driver", "x11", "--rendering-driver", "opengl3", "--audio-driver", "Dummy"]);
    cmd.args(["--resolution", &format!("{width}x{height}"), "--position", "0,0", "--path"]).arg(Project::Demo.dir());
    cmd.arg("--").arg(format!("--screenshots={}", dir.display()));
    cmd.env("DISPLAY", &xvfb.display).env_remove("WAYLAND_DISPLAY");
    let _services = DemoServices::start(&mut cmd);
    eprintln!("xtask: DISPLAY={} {}", xvfb.display, process::describe(&cmd));
    let run = process::stream(cmd, Some(TOUR_LIMIT))?;

    let mut problems: Vec<String> = run
        .log
        .lines()
        .filter_map(|l| l.split_once("SCREENSHOT-").map(|(_, rest)| format!("screenshot tour: {rest}")))
        .collect();
    // Script errors, an extension that did not load, Rust panics.
    problems.extend(log_check::godot_report(&run.log).problems);
    if !run.success() {
        problems.push(format!("the screenshot tour (Godot) {}", run.describe()));
    }
    Ok(Tour { problems })
}

/// How a screenshot looks, in numbers.
#[derive(Debug)]
pub struct Look {
    /// Distinct colours, each channel reduced to 4 bits.
    pub colours: usize,
    /// Share of the pixels that have the most common (reduced) colour.
    pub dominant: f64,
}

impl std::fmt::Display for Look {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} colours, the most common one covers {:.0} %", self.colours, self.dominant * 100.0)
    }
}

/// Fewest distinct (4-bit per channel) colours a real screen of the demo has: text, panels, the
/// accent colour and a 3D view give hundreds; a blank or failed render gives one or two.
const MIN_COLOURS: usize = 32;

/// Largest share of the screen one colour may cover.
const MAX_DOMINANT: f64 = 0.9;

/// Reads the PNG at `file` and fails unless it is `width`x`height` and not blank: at least
/// [`MIN_COLOURS`] distinct colours and no colour covering more than [`MAX_DOMINANT`] of it.
pub fn judge(file: &Path, (width, height): (u32, u32)) -> Result<Look> {
    let picture = read_rgb(file)?;
    if picture.size != (width, height) {
        bail!("is {}x{}, expected {width}x{height}", picture.size.0, picture.size.1);
    }
    let look = look_of(&picture.pixels);
    if look.colours < MIN_COLOURS || look.dominant > MAX_DOMINANT {
        bail!(
            "looks blank: {look} (needs at least {MIN_COLOURS} colours and none above {:.0} %)",
            MAX_DOMINANT * 100.0
        );
    }
    Ok(look)
}

/// Counts the distinct colours of RGB pixels (4 bits per channel) and the most common one's share.
fn look_of(pixels: &[[u8; 3]]) -> Look {
    let mut counts = vec![0u32; 1 << 12];
    for [r, g, b] in pixels {
        counts[(usize::from(r >> 4) << 8) | (usize::from(g >> 4) << 4) | usize::from(b >> 4)] += 1;
    }
    let colours = counts.iter().filter(|&&c| c > 0).count();
    let top = counts.iter().copied().max().unwrap_or(0);
    Look { colours, dominant: f64::from(top) / pixels.len().max(1) as f64 }
}

/// A decoded image: its size and 8-bit RGB pixels, row by row.
struct Picture {
    size: (u32, u32),
    pixels: Vec<[u8; 3]>,
}

/// Decodes a PNG (alpha dropped, palettes and grey expanded).
fn read_rgb(file: &Path) -> Result<Picture> {
    let data = fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(data));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().with_context(|| format!("reading {}", file.display()))?;
    let mut buf = vec![0; reader.output_buffer_size().context("PNG too large")?];
    let frame = reader.next_frame(&mut buf).with_context(|| format!("decoding {}", file.display()))?;
    let bytes = &buf[..frame.buffer_size()];
    let pixels = match frame.color_type {
        png::ColorType::Rgb => bytes.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect(),
        png::ColorType::Rgba => bytes.chunks_exact(4).map(|p| [p[0], p[1], p[2]]).collect(),
        png::ColorType::Grayscale => bytes.iter().map(|&v| [v, v, v]).collect(),
        png::ColorType::GrayscaleAlpha => bytes.chunks_exact(2).map(|p| [p[0], p[0], p[0]]).collect(),
        png::ColorType::Indexed => bail!("{}: palette left unexpanded", file.display()),
    };
    Ok(Picture { size: (frame.width, frame.height), pixels })
}

/// Parses `WIDTHxHEIGHT`, e.g. `1920x1080`.
fn parse_size(text: &str) -> Result<(u32, u32)> {
    let parsed = text.split_once('x').and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
    match parsed {
        Some((w, h)) if (320..=7680).contains(&w) && (240..=4320).contains(&h) => Ok((w, h)),
        _ => bail!("--size expects WIDTHxHEIGHT between 320x240 and 7680x4320, got `{text}`"),
    }
}

/// A virtual X server (Xvfb) on a display of its own, stopped when this drops.
struct Xvfb {
    display: String,
    service: Service,
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // Killed outright, Xvfb leaves its display's lock and socket behind, and those displays
        // stay taken: 40 runs used up every display this tries.
        self.service.terminate(Duration::from_secs(2));
    }
}

/// Removes an X display's lock file and socket when the server that wrote the lock (its pid,
/// as text) is gone; says whether it did.
fn remove_if_stale(lock: &Path, socket: &Path) -> bool {
    let pid = std::fs::read_to_string(lock).ok().and_then(|text| text.trim().parse::<u32>().ok());
    let gone = pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
    gone && std::fs::remove_file(lock).is_ok() && (!socket.exists() || std::fs::remove_file(socket).is_ok())
}

impl Xvfb {
    /// Starts Xvfb with one `width`x`height` 24-bit screen on the first free display from :90.
    fn start(width: u32, height: u32) -> Result<Self> {
        const FIRST: u32 = 90;
        for number in FIRST..FIRST + 40 {
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
            let lock = PathBuf::from(format!("/tmp/.X{number}-lock"));
            if lock.exists() && !remove_if_stale(&lock, &socket) {
                continue;
            }
            if socket.exists() {
                continue;
            }
            let mut cmd = Command::new("Xvfb");
            cmd.arg(format!(":{number}")).args(["-screen", "0", &format!("{width}x{height}x24"), "-nolisten", "tcp"]);
            let mut service = Service::start(&format!("xvfb-{number}"), cmd)?;
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(15) {
                if service.check_running().is_err() {
                    break; // another X server took this display meanwhile: try the next one
                }
                if socket.exists() {
                    return Ok(Xvfb { display: format!(":{number}"), service });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        bail!("could not start Xvfb on any display from :{FIRST} (see target/services/xvfb-*.log)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_image_is_blank_and_a_varied_one_is_not() {
        let flat = vec![[20u8, 22, 30]; 1000];
        let look = look_of(&flat);
        assert_eq!(look.colours, 1);
        assert!(look.dominant > 0.99);
        let varied: Vec<[u8; 3]> = (0..4096u32).map(|i| [(i >> 4) as u8, (i << 4) as u8, (i >> 2) as u8]).collect();
        let look = look_of(&varied);
        assert!(look.colours >= MIN_COLOURS && look.dominant < MAX_DOMINANT, "{look}");
    }

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("1920x1080").unwrap(), (1920, 1080));
        assert!(parse_size("1920").is_err());
        assert!(parse_size("0x0").is_err());
        assert!(parse_size("99999x1080").is_err());
    }

    /// The committed screenshots (docs/screenshots) are the expected size and not blank.
    #[test]
    fn committed_screenshots_are_not_blank() {
        let dir = paths::root().join(DEFAULT_DIR);
        for screen in SCREENS {
            let file = dir.join(format!("{screen}.png"));
            if let Err(err) = judge(&file, DEFAULT_SIZE) {
                panic!("{}: {err:#}", file.display());
            }
        }
    }
}
