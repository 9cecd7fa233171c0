//! Inspector values checked and converted for the engine-free configs, the
//! same way (and with the same messages) in every node.

use std::{path::PathBuf, time::Duration};

use godot::{classes::ProjectSettings, obj::Singleton};

/// Durations are capped at a year: longer is "never" for a game, and keeps
/// timer arithmetic far from overflow.
const MAX_SECONDS: f64 = 86_400.0 * 365.0;

/// Seconds from GDScript (a property or an argument) that must be a number
/// of at least `min`; more than a year counts as a year. The one check of
/// every duration the nodes and the hub take.
pub fn seconds(name: &str, value: f64, min: f64) -> Result<Duration, String> {
    if value.is_finite() && value >= min {
        Ok(Duration::from_secs_f64(value.min(MAX_SECONDS)))
    } else {
        Err(format!("{name} must be a number of at least {min}, got {value}"))
    }
}

/// A count property that must be at least 1.
pub fn positive(name: &str, value: i64) -> Result<usize, String> {
    usize::try_from(value).ok().filter(|v| *v > 0).ok_or_else(|| format!("{name} must be at least 1, got {value}"))
}

/// A file property for Rust code: `None` when empty; `res://` and `user://` made absolute.
pub fn file_path(path: &str) -> Option<PathBuf> {
    let path = path.trim();
    (!path.is_empty()).then(|| globalize(path))
}

/// A path for Rust code: `res://` and `user://` made absolute, others as they are.
pub fn globalize(path: &str) -> PathBuf {
    if path.starts_with("res://") || path.starts_with("user://") {
        PathBuf::from(ProjectSettings::singleton().globalize_path(path).to_string())
    } else {
        PathBuf::from(path)
    }
}
