//! The session loop: open, stream, decode, reconnect. (Being written.)

use std::{rc::Rc, sync::Arc};

use super::{PcmQueue, RadioConfig, RadioHandler, RadioStats};

/// Streams `config.url` into `pcm` until stopped (dropped) or failed.
pub async fn run(config: RadioConfig, pcm: Arc<PcmQueue>, mut handler: impl RadioHandler, stats: Rc<RadioStats>) {
    let _ = (config, pcm, &mut handler, stats);
    todo!()
}
