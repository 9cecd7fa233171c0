//! `cargo xtask package`: the distributable zips in `dist/`.
//!
//! - `async_net-<version>.zip`: `addons/async_net/` (plugin, autoload scene, .gdextension, icons,
//!   the repository's LICENSE, and in `bin/` the libraries of every platform at hand, named as
//!   the .gdextension lists them);
//! - `async_net-<version>-symbols.zip`: the debug symbols split out of those libraries;
//! - `async_net-demo-<version>.zip`: the demo project with the addon inside.
//!
//! The libraries are those built here (editor and release, for this platform) and, with
//! `--libs DIR`, prebuilt ones from other platforms (CI builds each on its own runner). On Linux
//! the debug info goes to `<library>.debug` (`objcopy --only-keep-debug`), the library is
//! stripped and points to it (`--add-gnu-debuglink`). The zips are deterministic: sorted
//! entries, fixed times and permissions.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::build::{self, CRATE, Profile};
use crate::apt::{self, Requirement};
use crate::cli::Args;
use crate::{paths, process};

/// The addon's folder inside a Godot project (and inside the addon zip).
const ADDON_PREFIX: &str = "addons/async_net";

/// objcopy and strip (Debian's binutils) split the debug info out of Linux libraries.
const BINUTILS: [Requirement; 2] =
    [Requirement::program("objcopy", "binutils"), Requirement::program("strip", "binutils")];

/// Extensions of debug-symbol files taken from `--libs` (split ELF debug info, Windows PDBs).
const SYMBOL_EXTENSIONS: [&str; 2] = ["debug", "pdb"];

/// The licence file: at the repository's root, and in the addon zip next to plugin.cfg, so a
/// project that copies `addons/async_net/` carries it along.
pub const LICENSE: &str = "LICENSE";

/// What to package.
#[derive(Debug, Default)]
pub struct Options {
    /// The libraries to build for this platform (none: take every library from `libs`).
    pub build: Vec<Profile>,
    /// A folder (searched recursively) of prebuilt libraries and symbol files.
    pub libs: Option<PathBuf>,
    /// `[libraries]` keys (e.g. `windows.release.x86_64`) whose library must be in the zip;
    /// `all` stands for every key of the .gdextension.
    pub require: Vec<String>,
    /// Whether to make the demo zip too.
    pub demo: bool,
}

/// The zips one run made.
#[derive(Debug)]
pub struct Package {
    /// The version from the gdext crate (equal to plugin.cfg's).
    pub version: String,
    /// `dist/async_net-<version>.zip`.
    pub addon_zip: PathBuf,
    /// `dist/async_net-<version>-symbols.zip`.
    pub symbols_zip: PathBuf,
    /// `dist/async_net-demo-<version>.zip`, when asked for.
    pub demo_zip: Option<PathBuf>,
}

/// `cargo xtask package [--no-build] [--libs DIR] [--require KEY,KEY...|all] [--no-demo]`.
pub fn main(mut args: Args) -> Result<ExitCode> {
    let options = Options {
        build: if args.flag("--no-build") { Vec::new() } else { vec![Profile::Debug, Profile::Release] },
        demo: !args.flag("--no-demo"),
        libs: args.value("--libs")?.map(PathBuf::from),
        require: args
            .value("--require")?
            .map(|v| v.split(',').map(|k| k.trim().to_string()).collect())
            .unwrap_or_default(),
    };
    args.finish()?;
    let package = package(&options)?;
    println!("async_net {}:", package.version);
    for zip in [Some(&package.addon_zip), Some(&package.symbols_zip), package.demo_zip.as_ref()].into_iter().flatten() {
        let size = fs::metadata(zip).map(|m| m.len()).unwrap_or(0);
        println!("  {} ({:.1} MiB)", zip.strip_prefix(paths::root()).unwrap_or(zip).display(), size as f64 / 1048576.0);
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds (as asked) and writes the zips into `dist/`.
pub fn package(options: &Options) -> Result<Package> {
    let version = checked_version()?;
    let gdextension = fs::read_to_string(paths::addon_dir().join("async_net.gdextension"))
        .context("reading addons/async_net/async_net.gdextension")?;
    let libraries = gdextension_libraries(&gdextension);
    let staging = paths::target_dir()?.join("package");
    if staging.exists() {
        fs::remove_dir_all(&staging).with_context(|| format!("removing {}", staging.display()))?;
    }
    let bin = staging.join(ADDON_PREFIX).join("bin");
    let symbols = staging.join("symbols");
    fs::create_dir_all(&bin)?;
    fs::create_dir_all(&symbols)?;

    for &profile in &options.build {
        let built = build::cargo_build(profile)?;
        let name = build::addon_library(profile)?.file_name().context("a library file name")?.to_owned();
        if cfg!(target_os = "linux") {
            split_debug_info(&built, &bin.join(&name), &symbols)?;
        } else {
            copy(&built, &bin.join(&name))?;
        }
    }
    if let Some(dir) = &options.libs {
        take_prebuilt(dir, &libraries, &bin, &symbols)?;
    }

    let present: Vec<&str> =
        libraries.iter().filter(|(_, file)| bin.join(file).is_file()).map(|(key, _)| key.as_str()).collect();
    if present.is_empty() {
        bail!("no library to package: build here (without --no-build) or pass --libs DIR");
    }
    let missing = missing_libraries(&options.require, &libraries, &present);
    if !missing.is_empty() {
        bail!("required libraries missing: {} (present: {})", missing.join(", "), present.join(", "));
    }
    eprintln!("xtask: packaging libraries for {}", present.join(", "));

    let dist = paths::root().join("dist");
    fs::create_dir_all(&dist)?;
    let mut addon = addon_files()?;
    addon.extend(dir_files(&bin, &format!("{ADDON_PREFIX}/bin"))?);
    let addon_zip = dist.join(format!("async_net-{version}.zip"));
    write_zip(&addon_zip, &addon)?;
    let symbols_zip = dist.join(format!("async_net-{version}-symbols.zip"));
    write_zip(&symbols_zip, &dir_files(&symbols, &format!("async_net-{version}-symbols"))?)?;
    let demo_zip = if options.demo {
        let top = format!("async_net-demo-{version}");
        let demo = paths::Project::Demo.dir();
        let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
        for (name, path) in dir_files(&demo, &top)? {
            let inside = name.strip_prefix(&format!("{top}/")).unwrap_or(&name);
            if !(inside.starts_with("addons/") || inside.starts_with(".godot/") || inside.ends_with(".import")) {
                files.insert(name, path);
            }
        }
        files.extend(addon.into_iter().map(|(name, path)| (format!("{top}/{name}"), path)));
        let zip = dist.join(format!("{top}.zip"));
        write_zip(&zip, &files)?;
        Some(zip)
    } else {
        None
    };
    Ok(Package { version, addon_zip, symbols_zip, demo_zip })
}

/// The gdext crate's version, checked equal to plugin.cfg's.
pub fn checked_version() -> Result<String> {
    let version = paths::package_version(CRATE)?;
    let cfg = fs::read_to_string(paths::addon_dir().join("plugin.cfg")).context("reading plugin.cfg")?;
    let plugin = plugin_cfg_version(&cfg).context("addons/async_net/plugin.cfg has no version=\"...\"")?;
    if plugin != version {
        bail!(
            "version mismatch: the {CRATE} crate (Cargo.toml) is {version}, addons/async_net/plugin.cfg says {plugin}; make them equal"
        );
    }
    Ok(version)
}

/// The keys of `require` (`all`: every key of `libraries`) that are not `present`.
fn missing_libraries<'a>(require: &'a [String], libraries: &'a [(String, String)], present: &[&str]) -> Vec<&'a str> {
    let required: Vec<&str> = if require.iter().any(|k| k == "all") {
        libraries.iter().map(|(key, _)| key.as_str()).collect()
    } else {
        require.iter().map(String::as_str).collect()
    };
    required.into_iter().filter(|k| !present.contains(k)).collect()
}

/// `version="..."` of a plugin.cfg.
fn plugin_cfg_version(cfg: &str) -> Option<String> {
    cfg.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "version").then(|| value.trim().trim_matches('"').to_string())
    })
}

/// The `[libraries]` of a .gdextension file: (key, file name in `bin/`), in file order.
pub fn gdextension_libraries(text: &str) -> Vec<(String, String)> {
    let mut in_libraries = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_libraries = line == "[libraries]";
        } else if let Some((key, value)) = line.split_once('=').filter(|_| in_libraries) {
            let value = value.trim().trim_matches('"');
            if let Some(file) = value.strip_prefix(&format!("res://{ADDON_PREFIX}/bin/")) {
                out.push((key.trim().to_string(), file.to_string()));
            }
        }
    }
    out
}

/// Copies `built` to `dest` stripped, with its debug info in `symbols/<name>.debug` and a
/// `.gnu_debuglink` to it.
fn split_debug_info(built: &Path, dest: &Path, symbols: &Path) -> Result<()> {
    apt::ensure(&BINUTILS)?;
    let name = dest.file_name().context("a library file name")?.to_string_lossy().into_owned();
    let debug = symbols.join(format!("{name}.debug"));
    process::run(Command::new("objcopy").arg("--only-keep-debug").arg(built).arg(&debug))?;
    process::run(Command::new("strip").args(["--strip-debug", "--strip-unneeded", "-o"]).arg(dest).arg(built))?;
    // The link holds the file name and a CRC of the .debug file; debuggers look next to the
    // library and in /usr/lib/debug.
    let mut link = Command::new("objcopy");
    link.arg(format!("--add-gnu-debuglink={}", debug.display())).arg(dest);
    process::run(&mut link)
}

/// Takes from `dir` (recursively) every file named like a `[libraries]` entry into `bin`, and
/// every symbol file into `symbols`; a library given twice with different contents is an error.
fn take_prebuilt(dir: &Path, libraries: &[(String, String)], bin: &Path, symbols: &Path) -> Result<()> {
    let files = dir_files(dir, "")?;
    if files.is_empty() {
        bail!("--libs {}: no files there", dir.display());
    }
    for (name, path) in files {
        let file_name = name.rsplit('/').next().unwrap_or(&name);
        let dest = if libraries.iter().any(|(_, f)| f == file_name) {
            bin.join(file_name)
        } else if SYMBOL_EXTENSIONS.iter().any(|e| file_name.ends_with(&format!(".{e}"))) {
            symbols.join(file_name)
        } else {
            eprintln!("xtask: --libs: ignoring {name} (not a library the .gdextension lists, nor symbols)");
            continue;
        };
        if dest.is_file() {
            if fs::read(&dest)? != fs::read(&path)? {
                bail!("--libs: {file_name} is there twice with different contents (or was also built here)");
            }
            continue;
        }
        copy(&path, &dest)?;
    }
    Ok(())
}

/// The addon's own files (without `bin/`) and the licence, as zip entry name -> file.
fn addon_files() -> Result<BTreeMap<String, PathBuf>> {
    let mut files = dir_files(&paths::addon_dir(), ADDON_PREFIX)?;
    files.retain(|name, _| !name.starts_with(&format!("{ADDON_PREFIX}/bin/")) && !name.ends_with(".import"));
    let license = paths::root().join(LICENSE);
    if !license.is_file() {
        bail!("{} is missing: the addon zip carries the licence", license.display());
    }
    files.insert(format!("{ADDON_PREFIX}/{LICENSE}"), license);
    Ok(files)
}

/// Every regular file under `dir` (following no links, skipping dotfiles and dot-folders), as
/// `prefix/relative/path` (forward slashes) -> file.
fn dir_files(dir: &Path, prefix: &str) -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(dir.to_path_buf(), prefix.trim_end_matches('/').to_string())];
    while let Some((dir, name)) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name.starts_with('.') {
                continue;
            }
            let entry_name = if name.is_empty() { file_name } else { format!("{name}/{file_name}") };
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push((entry.path(), entry_name));
            } else if kind.is_file() {
                out.insert(entry_name, entry.path());
            }
        }
    }
    Ok(out)
}

/// Writes `files` (entry name -> file) to `zip` in name order, with their folders, a fixed
/// time (1980-01-01) and fixed permissions (0755 for libraries, 0644 for the rest).
fn write_zip(zip: &Path, files: &BTreeMap<String, PathBuf>) -> Result<()> {
    let tmp = zip.with_extension("zip.tmp");
    let mut writer = ZipWriter::new(File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?);
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644);
    let mut dirs_done: Vec<String> = Vec::new();
    for (name, path) in files {
        let mut parent = String::new();
        for part in name.split('/').collect::<Vec<_>>().split_last().map(|(_, dirs)| dirs).unwrap_or(&[]) {
            parent = format!("{parent}{part}/");
            if !dirs_done.contains(&parent) {
                writer.add_directory(parent.as_str(), options.unix_permissions(0o755))?;
                dirs_done.push(parent.clone());
            }
        }
        let library = [".so", ".dll", ".dylib"].iter().any(|e| name.ends_with(e));
        writer.start_file(name.as_str(), options.unix_permissions(if library { 0o755 } else { 0o644 }))?;
        let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        writer.write_all(&bytes)?;
    }
    writer.finish()?;
    fs::rename(&tmp, zip).with_context(|| format!("renaming {} to {}", tmp.display(), zip.display()))?;
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Unpacks `zip` into `dir` (entries that would land outside `dir` are refused by the zip crate).
pub fn unzip(zip: &Path, dir: &Path) -> Result<()> {
    let file = File::open(zip).with_context(|| format!("opening {}", zip.display()))?;
    let mut archive = zip::ZipArchive::new(file).with_context(|| format!("reading {}", zip.display()))?;
    archive.extract(dir).with_context(|| format!("unpacking {} into {}", zip.display(), dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plugin_cfg_version() {
        let cfg = "[plugin]\n\nname=\"Async Net\"\nversion=\"1.2.3\"\nscript=\"plugin.gd\"\n";
        assert_eq!(plugin_cfg_version(cfg).as_deref(), Some("1.2.3"));
        assert_eq!(plugin_cfg_version("[plugin]\nname=\"x\"\n"), None);
    }

    #[test]
    fn reads_gdextension_libraries() {
        let text = "[configuration]\nentry_symbol = \"x\"\n\n[libraries]\nlinux.debug.x86_64 = \"res://addons/async_net/bin/a.so\"\nmacos.release = \"res://addons/async_net/bin/b.dylib\"\n\n[icons]\nX = \"res://addons/async_net/bin/not-a-lib.svg\"\n";
        assert_eq!(
            gdextension_libraries(text),
            [("linux.debug.x86_64".to_string(), "a.so".to_string()), ("macos.release".into(), "b.dylib".into())]
        );
    }

    #[test]
    fn requires_listed_keys_or_all() {
        let libraries =
            [("linux.debug.x86_64".to_string(), "a.so".to_string()), ("macos.debug".into(), "b.dylib".into())];
        let present = ["linux.debug.x86_64"];
        assert_eq!(missing_libraries(&[], &libraries, &present), Vec::<&str>::new());
        assert_eq!(missing_libraries(&["linux.debug.x86_64".into()], &libraries, &present), Vec::<&str>::new());
        assert_eq!(missing_libraries(&["windows.debug.x86_64".into()], &libraries, &present), ["windows.debug.x86_64"]);
        assert_eq!(missing_libraries(&["all".into()], &libraries, &present), ["macos.debug"]);
    }

    #[test]
    fn the_addons_gdextension_and_plugin_cfg_agree_with_the_crate() {
        let text = fs::read_to_string(paths::addon_dir().join("async_net.gdextension")).unwrap();
        let libraries = gdextension_libraries(&text);
        for profile in [Profile::Debug, Profile::Release] {
            let ours = build::addon_library(profile).unwrap();
            let ours = ours.file_name().unwrap().to_string_lossy();
            assert!(libraries.iter().any(|(_, f)| *f == ours), "{ours} is not in [libraries]");
        }
        checked_version().unwrap();
    }

    #[test]
    fn zips_are_deterministic_and_unpack() {
        let dir = std::env::temp_dir().join(format!("xtask-zip-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("src/sub")).unwrap();
        fs::write(dir.join("src/b.txt"), "b").unwrap();
        fs::write(dir.join("src/sub/a.so"), "lib").unwrap();
        fs::write(dir.join("src/.hidden"), "no").unwrap();
        let files = dir_files(&dir.join("src"), "top").unwrap();
        assert_eq!(files.keys().collect::<Vec<_>>(), ["top/b.txt", "top/sub/a.so"]);
        write_zip(&dir.join("one.zip"), &files).unwrap();
        write_zip(&dir.join("two.zip"), &files).unwrap();
        assert_eq!(fs::read(dir.join("one.zip")).unwrap(), fs::read(dir.join("two.zip")).unwrap());
        unzip(&dir.join("one.zip"), &dir.join("out")).unwrap();
        assert_eq!(fs::read_to_string(dir.join("out/top/sub/a.so")).unwrap(), "lib");
        fs::remove_dir_all(&dir).unwrap();
    }
}
