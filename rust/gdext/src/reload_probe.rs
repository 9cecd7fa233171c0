//! Only in the test build of `rust/reload-probe` (feature `reload-probe`), never in a shipped
//! library: what makes that build's code really differ from the shipped one, so that the editor
//! tests' hot reload swaps in a library with another class layout while tasks run. It adds a
//! class (`ReloadProbe`), and AsyncHub holds more data and a method more (see
//! [`crate::async_hub::ReloadProbeData`]).

use godot::prelude::*;

/// A class only the reload-probe build registers.
#[derive(GodotClass)]
#[class(init, tool, base = RefCounted)]
pub struct ReloadProbe {
    base: Base<RefCounted>,
}

#[godot_api]
impl ReloadProbe {
    /// Which build this is: 2, the changed one.
    #[func]
    fn generation() -> i64 {
        2
    }
}
