//! Debian's apt: installing the system packages a command needs, and finding the system's Debian mirror.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};

use crate::process;

/// How to tell whether a requirement is already met.
#[derive(Clone, Copy, Debug)]
pub enum Probe {
    /// A program on PATH (or in /usr/sbin, /sbin).
    Program(&'static str),
    /// A command line that exits successfully, e.g. `["python3", "-m", "ensurepip", "--version"]`.
    #[allow(dead_code, reason = "for requirements without a program, e.g. python3-venv")]
    Command(&'static [&'static str]),
}

/// A Debian package that provides something a command needs.
#[derive(Clone, Copy, Debug)]
pub struct Requirement {
    /// How to check that it is present.
    pub probe: Probe,
    /// The Debian package that provides it.
    pub package: &'static str,
}

impl Requirement {
    /// A package providing the program `program`.
    #[allow(dead_code, reason = "the first service-backed tests add requirements")]
    pub const fn program(program: &'static str, package: &'static str) -> Self {
        Requirement { probe: Probe::Program(program), package }
    }

    fn is_met(&self) -> bool {
        match self.probe {
            Probe::Program(name) => {
                process::which(name).is_some()
                    || ["/usr/sbin", "/sbin"].iter().any(|d| process::is_executable(&Path::new(d).join(name)))
            }
            Probe::Command(argv) => Command::new(argv[0])
                .args(&argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
        }
    }
}

/// Installs the Debian packages of the unmet `requirements` with apt-get (as root, or through
/// password-less sudo); fails with an install hint when that is not possible.
pub fn ensure(requirements: &[Requirement]) -> Result<()> {
    let mut missing: Vec<&str> = requirements.iter().filter(|r| !r.is_met()).map(|r| r.package).collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if process::which("apt-get").is_none() {
        bail!("missing system packages: {list}; install them (Debian names) and retry");
    }
    let sudo = if is_root() {
        false
    } else if sudo_works() {
        true
    } else {
        bail!("missing system packages: {list}; run `sudo apt-get install {list}` and retry");
    };
    let apt = |args: &[&str]| {
        let mut cmd = if sudo { Command::new("sudo") } else { Command::new("apt-get") };
        if sudo {
            cmd.args(["-n", "apt-get"]);
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };

    static UPDATED: AtomicBool = AtomicBool::new(false);
    if !UPDATED.swap(true, Ordering::SeqCst) {
        eprintln!("xtask: installing missing system packages: {list}");
        process::run(&mut apt(&["update", "-q"]))?;
    }
    let mut install = apt(&["install", "-y", "-q", "--no-install-recommends"]);
    install.args(&missing);
    process::run(&mut install).with_context(|| format!("installing {list}"))?;

    let still: Vec<&str> = requirements.iter().filter(|r| !r.is_met()).map(|r| r.package).collect();
    if !still.is_empty() {
        bail!("installed {list}, but these are still not usable: {}", still.join(" "));
    }
    Ok(())
}

/// Whether we run as root.
pub fn is_root() -> bool {
    process::output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

fn sudo_works() -> bool {
    process::which("sudo").is_some()
        && Command::new("sudo")
            .args(["-n", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// The address of the system's main Debian mirror: the first `URIs:` of a non-security entry in
/// `/etc/apt/sources.list.d/debian.sources`, else the first such `deb` line of `/etc/apt/sources.list`.
pub fn debian_mirror_uri() -> Result<String> {
    const DEB822: &str = "/etc/apt/sources.list.d/debian.sources";
    const ONE_LINE: &str = "/etc/apt/sources.list";
    let found = fs::read_to_string(DEB822)
        .ok()
        .and_then(|text| mirror_from_deb822(&text))
        .or_else(|| fs::read_to_string(ONE_LINE).ok().and_then(|text| mirror_from_one_line(&text)));
    found.with_context(|| format!("found no Debian mirror in {DEB822} or {ONE_LINE}"))
}

fn is_security(suite: &str) -> bool {
    suite.ends_with("-security") || suite.ends_with("/updates")
}

fn usable_uri(uri: &str) -> bool {
    uri.starts_with("http://") || uri.starts_with("https://")
}

/// The first mirror of a deb822 `.sources` file that serves `deb` packages and no security suite.
fn mirror_from_deb822(text: &str) -> Option<String> {
    for stanza in text.split("\n\n") {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in stanza.lines() {
            if line.trim_start().starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((key, value)) = line.split_once(':') {
                fields.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let types = field("types").unwrap_or("");
        let suites = field("suites").unwrap_or("");
        if !types.split_whitespace().any(|t| t == "deb")
            || field("enabled").is_some_and(|e| e.eq_ignore_ascii_case("no"))
            || suites.split_whitespace().any(is_security)
        {
            continue;
        }
        if let Some(uri) = field("uris").and_then(|u| u.split_whitespace().find(|u| usable_uri(u))) {
            return Some(uri.to_string());
        }
    }
    None
}

/// The first mirror of a one-line-style `sources.list` that serves `deb` packages and no security suite.
fn mirror_from_one_line(text: &str) -> Option<String> {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            continue;
        }
        let mut words = words.peekable();
        // Skip options: `[arch=amd64 signed-by=...]`, possibly spanning several words.
        if words.peek().is_some_and(|w| w.starts_with('[')) {
            for w in words.by_ref() {
                if w.ends_with(']') {
                    break;
                }
            }
        }
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        if usable_uri(uri) && !is_security(suite) {
            return Some(uri.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_skips_security_and_comments() {
        let text = "Types: deb\n# http://snapshot.example/archive/debian-security/x\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n\nTypes: deb deb-src\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n";
        assert_eq!(mirror_from_deb822(text).as_deref(), Some("http://mirror.example/debian"));
    }

    #[test]
    fn deb822_skips_disabled_and_source_only() {
        let text = "Types: deb-src\nURIs: http://a.example/debian\nSuites: sid\n\nTypes: deb\nEnabled: no\nURIs: http://b.example/debian\nSuites: sid\n\nTypes: deb\nURIs: cdrom:/x/ http://c.example/debian\nSuites: sid\n";
        assert_eq!(mirror_from_deb822(text).as_deref(), Some("http://c.example/debian"));
    }

    #[test]
    fn one_line_skips_options_and_security() {
        let text = "# deb http://old.example/debian sid main\ndeb [arch=amd64 signed-by=/k.gpg] http://sec.example/debian-security bookworm-security main\ndeb-src http://src.example/debian bookworm main\ndeb [trusted=yes] http://main.example/debian bookworm main\n";
        assert_eq!(mirror_from_one_line(text).as_deref(), Some("http://main.example/debian"));
        assert_eq!(mirror_from_one_line("deb http://x.example/d bullseye/updates main\n"), None);
    }
}
