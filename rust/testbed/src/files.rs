//! Files the testbed shares with whoever started it: reports and port files written so that a
//! reader polling for them never sees half of one, and the media that xtask generates.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Writes `text` to `out` through a temporary file and a rename, so a reader polling for `out`
/// never sees half of it.
pub fn write_atomically(out: &Path, text: &str) -> Result<()> {
    let tmp = out.with_extension("tmp");
    fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, out).with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))
}

/// `target/media/NAME`: a file that `cargo xtask` generates with ffmpeg (rust/xtask/src/media.rs)
/// beside the testbed binary; fails, saying how to make it, when it is not there.
pub fn generated_media(name: &str) -> Result<PathBuf> {
    let target = target_dir().context("finding cargo's target directory from the testbed's own path")?;
    let path = target.join("media").join(name);
    if !path.is_file() {
        anyhow::bail!(
            "{} does not exist: `cargo xtask` makes it with ffmpeg (`test`, `bench`, `demo` or `radio-station`)",
            path.display()
        );
    }
    Ok(path)
}

/// Cargo's target directory: the closest folder above this executable that holds the
/// `CACHEDIR.TAG` cargo writes there (the binary sits in `target/<profile>/`, a test in
/// `target/<profile>/deps/`, a cross build one level deeper).
pub fn target_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("the path of this executable")?;
    exe.ancestors()
        .skip(1)
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .with_context(|| format!("no folder above {} holds cargo's CACHEDIR.TAG", exe.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_through_a_temporary_file() {
        let dir = target_dir().unwrap().join("tmp");
        fs::create_dir_all(&dir).unwrap();
        let out = dir.join(format!("testbed-atomic-{}.port", std::process::id()));
        write_atomically(&out, "8000\n").unwrap();
        assert_eq!(fs::read_to_string(&out).unwrap(), "8000\n");
        assert!(!out.with_extension("tmp").exists());
        fs::remove_file(out).unwrap();
    }

    #[test]
    fn finds_the_target_dir() {
        let target = target_dir().unwrap();
        assert!(target.join("CACHEDIR.TAG").is_file());
        assert!(std::env::current_exe().unwrap().starts_with(&target));
    }
}
