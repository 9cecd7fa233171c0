//! Test, demo and benchmark audio, generated with ffmpeg into `target/media/` and kept there.
//!
//! Every file is 44.1 kHz stereo 128 kbit/s CBR MP3 without an ID3 tag or a Xing/Info frame, so
//! it is nothing but MPEG audio frames (what a radio station sends). A file is made under a
//! temporary name and renamed into place, and made again when it is missing or its recipe (the
//! ffmpeg arguments, kept beside it in `NAME.recipe`) changed.
//!
//! - [`tone_mp3`] (20 s): made for cross-correlation alignment. Left: a slow logarithmic sine
//!   sweep (100 Hz to 8 kHz) with a little white noise; right: a falling sweep (6 kHz to 150 Hz)
//!   with more noise. Nothing repeats, so a window of it aligns at exactly one place.
//! - [`station_mp3`] (60 s): the demo station's music, a gentle arpeggiated chord progression
//!   (C Am F G F G Em Am) over a soft pad and bass, with an echo and fades at both ends, so that
//!   it loops without a click.
//! - [`bench_mp3`] (5 min): [`station_mp3`] five times over, frames copied (no encoding).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::{paths, process, services};

/// Sample rate of every generated file.
pub const SAMPLE_RATE: u32 = 44_100;

/// Bit rate of every generated file, in kbit/s.
pub const BITRATE_KBPS: u32 = 128;

/// Length of [`tone_mp3`], in seconds.
pub const TONE_SECONDS: u32 = 20;

/// Length of [`station_mp3`], in seconds.
pub const STATION_SECONDS: u32 = 60;

/// How many times [`bench_mp3`] repeats [`station_mp3`] (5 minutes).
const BENCH_REPEATS: u32 = 5;

/// Serialises generation inside one process (parallel unit tests ask for the same file).
static GENERATING: Mutex<()> = Mutex::new(());

/// `target/media/tone.mp3`, 20 s for alignment by cross-correlation (see the module docs).
pub fn tone_mp3() -> Result<PathBuf> {
    let seconds = TONE_SECONDS;
    // Phase of a sweep from f0 with frequency f0·k^(t/T): 2π·f0·T/ln k·(k^(t/T) − 1).
    let left = format!("0.45*sin(2*PI*100*{seconds}/log(80)*(exp(t/{seconds}*log(80))-1))+0.06*(2*random(0)-1)");
    let right = format!("0.35*sin(2*PI*6000*{seconds}/log(40)*(1-exp(-t/{seconds}*log(40))))+0.12*(2*random(1)-1)");
    let source = format!("aevalsrc=exprs='{left}|{right}':s={SAMPLE_RATE}:d={seconds}");
    generated("tone.mp3", &lavfi_encode_args(&source), "")
}

/// `target/media/station.mp3`, 60 s of gentle music for the demo station (see the module docs).
pub fn station_mp3() -> Result<PathBuf> {
    let seconds = STATION_SECONDS;
    let common = station_common_expr();
    let left = format!("{common};0.36*ld(9)+{}", station_pad_expr(0.0));
    let right = format!("{common};0.3*ld(9)+{}", station_pad_expr(0.7));
    let fade_out = seconds - 2;
    let source = format!(
        "aevalsrc=exprs='{left}|{right}':s={SAMPLE_RATE}:d={seconds},aecho=0.8:0.7:250:0.25,\
         afade=t=in:d=1.5,afade=t=out:st={fade_out}:d=2"
    );
    generated("station.mp3", &lavfi_encode_args(&source), "")
}

/// `target/media/bench.mp3`, 5 minutes: [`station_mp3`] repeated, its frames copied.
pub fn bench_mp3() -> Result<PathBuf> {
    let station = station_mp3()?;
    let mut args: Vec<String> = vec!["-stream_loop".into(), (BENCH_REPEATS - 1).to_string(), "-i".into()];
    args.push(station.display().to_string());
    args.extend(["-c:a", "copy"].map(String::from));
    args.extend(mp3_output_args());
    // Made again when the station's music changes.
    let station_recipe = fs::read_to_string(recipe_path(&station)).unwrap_or_default();
    generated("bench.mp3", &args, &station_recipe)
}

/// The ffmpeg program (on PATH), or an error that says how to get it.
pub fn ffmpeg() -> Result<PathBuf> {
    services::find_program("ffmpeg")
        .context("ffmpeg is not installed (Debian: `apt-get install ffmpeg`); it makes the test and demo audio")
}

/// Arguments that encode the lavfi source graph `source` to 44.1 kHz stereo 128 kbit/s CBR MP3.
fn lavfi_encode_args(source: &str) -> Vec<String> {
    let mut args: Vec<String> = vec!["-f".into(), "lavfi".into(), "-i".into(), source.into()];
    let encode = ["-c:a", "libmp3lame", "-b:a", &format!("{BITRATE_KBPS}k")];
    args.extend(encode.map(String::from));
    args.extend(["-ar", &SAMPLE_RATE.to_string(), "-ac", "2"].map(String::from));
    args.extend(mp3_output_args());
    args
}

/// A plain stream of MP3 frames: no ID3v2 tag, no Xing/Info frame.
fn mp3_output_args() -> Vec<String> {
    ["-write_xing", "0", "-id3v2_version", "0", "-map_metadata", "-1", "-f", "mp3"].map(String::from).to_vec()
}

/// The station music's shared part, one `aevalsrc` expression that stores into variables:
/// 0 chord (0..8, 2 s each), 1 its root (MIDI note), 2 its third (3 or 4 semitones),
/// 3 arpeggio step (0..8, 0.25 s each), 4 time into the note (0..1), 5 the step's interval,
/// 6 the note's frequency, 7 time into the chord (0..1), 8 the pad's envelope, 9 the arpeggio.
fn station_common_expr() -> String {
    // C Am F G F G Em Am, roots in the octave below middle C.
    let roots = ["48", "45", "41", "43", "41", "43", "40", "45"];
    let steps = ["0", "ld(2)", "7", "12", "ld(2)+12", "12", "7", "ld(2)"];
    [
        "st(0,mod(floor(t/2),8))".to_string(),
        format!("st(1,{})", pick("ld(0)", &roots)),
        "st(2,if(eq(ld(0),1)+eq(ld(0),6)+eq(ld(0),7),3,4))".to_string(),
        "st(3,mod(floor(t*4),8))".to_string(),
        "st(4,t*4-floor(t*4))".to_string(),
        format!("st(5,{})", pick("ld(3)", &steps)),
        format!("st(6,{})", midi_hz("ld(1)+24+ld(5)")),
        "st(7,t/2-floor(t/2))".to_string(),
        "st(8,min(1,ld(7)*5)*min(1,(1-ld(7))*5))".to_string(),
        // A plucked note: 12 ms attack, decay, 12 ms release; phase from the note's start.
        "st(9,min(1,ld(4)*20)*exp(-3*ld(4))*min(1,(1-ld(4))*20)*(sin(PI*ld(6)*ld(4)/2)+0.25*sin(PI*ld(6)*ld(4))))"
            .to_string(),
    ]
    .join(";")
}

/// The pad (the chord an octave above its root, detuned by `detune_hz`) and the bass (the root),
/// both faded in and out with each chord.
fn station_pad_expr(detune_hz: f64) -> String {
    let tone = |note: &str| format!("sin(2*PI*({}+{detune_hz})*t)", midi_hz(note));
    let pad = [tone("ld(1)+12"), tone("ld(1)+12+ld(2)"), tone("ld(1)+19")].join("+");
    format!("ld(8)*(0.1*({pad})+0.22*sin(2*PI*{}*t))", midi_hz("ld(1)"))
}

/// The frequency of the MIDI note `note` (an expression), as an expression.
fn midi_hz(note: &str) -> String {
    format!("440*pow(2,({note}-69)/12)")
}

/// An expression worth `values[index]` (nested `if`s).
fn pick(index: &str, values: &[&str]) -> String {
    let (last, rest) = values.split_last().expect("pick needs values");
    rest.iter().enumerate().rev().fold(last.to_string(), |acc, (i, v)| format!("if(eq({index},{i}),{v},{acc})"))
}

/// `target/media/NAME`, made with `ffmpeg ARGS OUT` unless it exists with the same recipe (the
/// arguments and `inputs`, a description of what the arguments read).
fn generated(name: &str, args: &[String], inputs: &str) -> Result<PathBuf> {
    let dir = paths::target_dir()?.join("media");
    let out = dir.join(name);
    let recipe_file = recipe_path(&out);
    let recipe = args.join("\n") + "\n" + inputs;
    let _guard = GENERATING.lock().unwrap_or_else(|e| e.into_inner());
    if out.is_file() && fs::read_to_string(&recipe_file).is_ok_and(|r| r == recipe) {
        return Ok(out);
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = run_ffmpeg(args, &tmp).and_then(|()| rename(&tmp, &out));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("generating {}", out.display()))?;
    fs::write(&recipe_file, recipe).with_context(|| format!("writing {}", recipe_file.display()))?;
    Ok(out)
}

/// Runs ffmpeg quietly with `args`, writing `out`.
fn run_ffmpeg(args: &[String], out: &Path) -> Result<()> {
    let mut cmd = Command::new(ffmpeg()?);
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"]).args(args).arg(out);
    process::output(&mut cmd)?;
    Ok(())
}

/// Where the recipe of the generated file `out` is kept.
fn recipe_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".recipe");
    out.with_file_name(name)
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).with_context(|| format!("renaming {} to {}", from.display(), to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_nests_ifs() {
        assert_eq!(pick("x", &["1", "2", "3"]), "if(eq(x,0),1,if(eq(x,1),2,3))");
        assert_eq!(pick("x", &["7"]), "7");
    }

    #[test]
    fn tone_is_cached_and_plain_mp3() {
        let path = tone_mp3().unwrap();
        let modified = fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(tone_mp3().unwrap(), path);
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), modified, "made again");
        let bytes = fs::read(&path).unwrap();
        // No ID3v2 tag: the file starts with an MPEG-1 Layer III frame sync.
        assert_eq!(&bytes[..2], &[0xff, 0xfb]);
        // 128 kbit/s for 20 s is 320 kB.
        assert!((300_000..340_000).contains(&bytes.len()), "{} bytes", bytes.len());
    }

    #[test]
    fn bench_is_the_station_five_times() {
        let station = fs::read(station_mp3().unwrap()).unwrap();
        let bench = fs::read(bench_mp3().unwrap()).unwrap();
        // 60 s at 128 kbit/s is 960 kB; the bench copies its frames five times over.
        assert!((940_000..980_000).contains(&station.len()), "{} bytes", station.len());
        assert_eq!(bench.len(), 5 * station.len());
        assert_eq!(&bench[..station.len()], &station[..]);
    }
}
