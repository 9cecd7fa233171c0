//! A tiny command-line parser for the xtask subcommands (flags, `--name value` / `--name=value`, `--` rest).

use anyhow::{Context, Result, bail};

/// The arguments of one subcommand, consumed option by option; [`Args::finish`] rejects leftovers.
pub struct Args {
    items: Vec<String>,
    rest: Vec<String>,
}

impl Args {
    /// Wraps the arguments that follow the subcommand name; everything after `--` is kept apart.
    pub fn new(mut items: Vec<String>) -> Self {
        let rest = match items.iter().position(|a| a == "--") {
            Some(i) => {
                let rest = items.split_off(i + 1);
                items.pop();
                rest
            }
            None => Vec::new(),
        };
        Args { items, rest }
    }

    /// Removes `--name` and reports whether it was present.
    pub fn flag(&mut self, name: &str) -> bool {
        let before = self.items.len();
        self.items.retain(|a| a != name);
        self.items.len() != before
    }

    /// Removes `--name VALUE` or `--name=VALUE` and returns the value (the last one if repeated).
    pub fn value(&mut self, name: &str) -> Result<Option<String>> {
        let prefix = format!("{name}=");
        let mut found = None;
        let mut i = 0;
        while i < self.items.len() {
            if self.items[i] == name {
                if i + 1 >= self.items.len() {
                    bail!("{name} needs a value");
                }
                found = Some(self.items.remove(i + 1));
                self.items.remove(i);
            } else if let Some(v) = self.items[i].strip_prefix(&prefix) {
                found = Some(v.to_string());
                self.items.remove(i);
            } else {
                i += 1;
            }
        }
        Ok(found)
    }

    /// Like [`Args::value`], parsed as an unsigned number.
    pub fn number(&mut self, name: &str) -> Result<Option<u64>> {
        self.value(name)?.map(|v| v.parse().with_context(|| format!("{name} expects a number, got `{v}`"))).transpose()
    }

    /// Fails on any option not consumed yet; returns the arguments that followed `--`.
    pub fn finish(self) -> Result<Vec<String>> {
        if !self.items.is_empty() {
            bail!("unexpected argument(s): {} (see `cargo xtask help`)", self.items.join(" "));
        }
        Ok(self.rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Args {
        Args::new(s.split_whitespace().map(String::from).collect())
    }

    #[test]
    fn parses_flags_values_and_rest() {
        let mut a = args("--release --filter hub --seconds=5 -- --x=1 y");
        assert!(a.flag("--release"));
        assert!(!a.flag("--headless"));
        assert_eq!(a.value("--filter").unwrap().as_deref(), Some("hub"));
        assert_eq!(a.number("--seconds").unwrap(), Some(5));
        assert_eq!(a.finish().unwrap(), ["--x=1", "y"]);
    }

    #[test]
    fn rejects_leftovers_and_missing_values() {
        assert!(args("--bogus").finish().is_err());
        assert!(args("--filter").value("--filter").is_err());
        assert!(args("--seconds=abc").number("--seconds").is_err());
    }
}
