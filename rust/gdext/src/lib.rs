//! The godot-async-net GDExtension: Godot classes over `async-net-core`.
//!
//! One class per file; each file is glue (properties, signals, conversions,
//! task ownership) over logic that lives, engine-free, in `async-net-core`.

mod async_hub;
mod async_task;
mod http_event_stream;
mod http_options;
mod http_response;
mod http_server;
mod http_server_delivery;
mod http_server_request;
mod http_session;
mod http_stream;
mod net_node;
mod profiling;
mod radio_playback;
mod radio_stream;
mod redis_delivery;
mod redis_subscriber;
mod runtime;
mod settings;
mod signals;
mod tcp_spawner_server;
mod websocket_server_peer;
mod ws_echo;

use godot::{init::InitStage, prelude::*};

struct AsyncNetExtension;

#[gdextension]
unsafe impl ExtensionLibrary for AsyncNetExtension {
    fn on_stage_init(stage: InitStage) {
        match stage {
            InitStage::Scene => runtime::startup(),
            InitStage::MainLoop => runtime::register_monitors(),
            _ => {}
        }
    }

    fn on_stage_deinit(stage: InitStage) {
        // MainLoop goes first when the engine quits; Scene also comes on a
        // hot reload. Shutting down twice is harmless.
        match stage {
            InitStage::MainLoop => runtime::shutdown(),
            InitStage::Scene => {
                runtime::shutdown();
                // Quitting: the main loop is gone. A hot reload keeps it, and
                // the singleton too: GDScript's `AsyncHub` global points at it,
                // and Godot recreates its instance for the new library.
                if godot::classes::Engine::singleton().get_main_loop().is_none() {
                    runtime::unregister_singleton();
                }
            }
            _ => {}
        }
    }

    fn on_main_loop_frame() {
        runtime::on_main_loop_frame();
    }
}
