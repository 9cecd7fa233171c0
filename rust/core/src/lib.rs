//! Engine-free async logic of godot-async-net: the stepped runtime, task
//! registry, backoff and the protocol loops of every node. Nothing here
//! imports `godot`; `rust/gdext` is thin glue over these types.

pub mod backoff;
mod forward;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod http_server;
pub mod listen;
pub mod log_throttle;
pub mod pubsub;
pub mod radio;
pub mod reactor;
mod redact;
pub mod relay;
pub mod spawner;
pub mod state;
pub mod ws;

pub use redact::redact;

#[cfg(test)]
mod test_pki;
#[cfg(test)]
mod test_programs;
