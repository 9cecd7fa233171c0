//! The godot-async-net GDExtension: Godot classes over `async-net-core`.

use godot::prelude::*;

struct AsyncNetExtension;

#[gdextension]
unsafe impl ExtensionLibrary for AsyncNetExtension {}
