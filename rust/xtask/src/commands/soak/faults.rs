//! The soak's faults: redis-server, the WebSocket echo server and the icecast source killed and
//! restarted at random moments, each kind on its own thread until the harness stops.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::Stop;
use crate::services::{self, Service};

/// When the faults of one kind happen: `count` times over the run, one at a random moment in
/// the middle half of each of `count` equal slots.
pub struct Plan {
    times: std::vec::IntoIter<Instant>,
}

impl Plan {
    /// `count` faults over `over`, from now.
    pub fn new(count: u32, over: Duration) -> Plan {
        let (start, slot) = (Instant::now(), over / count);
        let times: Vec<Instant> =
            (0..count).map(|k| start + slot * k + rand::random_range(slot / 4..slot * 3 / 4)).collect();
        Plan { times: times.into_iter() }
    }

    /// Sleeps until the next planned time (→ true), or returns false when the plan is done or
    /// `stop` is set.
    fn wait_next(&mut self, stop: &Stop) -> bool {
        self.times.next().is_some_and(|at| stop.sleep(at.saturating_duration_since(Instant::now())))
    }
}

/// A pause between `low` and `high`, at random.
fn between(low: Duration, high: Duration) -> Duration {
    rand::random_range(low..high)
}

/// A service that was killed and restarted `kills` times, running again (the scene reconnects
/// to it before it reports).
pub struct Faulted {
    /// Times the service was killed.
    pub kills: u64,
    #[allow(dead_code, reason = "held so that the service runs until the scene has reported")]
    service: Service,
}

/// At each planned time: holds the publisher (by creating `pause_file`, which the soak load
/// watches), kills redis-server, restarts it on the same port after 0.2-1.5 s.
pub fn redis_faults(mut server: Service, port: u16, mut plan: Plan, pause_file: &Path, stop: &Stop) -> Result<Faulted> {
    let mut kills = 0;
    while plan.wait_next(stop) {
        fs::write(pause_file, "")?;
        // The publisher sees the file within milliseconds; a publish in flight completes, and
        // Redis writes it to the subscriber's socket.
        thread::sleep(Duration::from_millis(150));
        drop(server);
        kills += 1;
        thread::sleep(between(Duration::from_millis(200), Duration::from_millis(1500)));
        server = services::start_redis_on("soak-redis", None, port)?;
        fs::remove_file(pause_file)?;
    }
    Ok(Faulted { kills, service: server })
}

/// The WebSocket server's faults.
pub struct WsFaults {
    /// The kills, and the server running again.
    pub faulted: Faulted,
    /// Times the scene did not answer the pause handshake in time (the server was killed anyway).
    pub handshake_timeouts: u64,
}

/// The Python WebSocket echo server of the soak on 127.0.0.1:`port`, once it listens.
pub fn start_ws(python: &Path, port: u16) -> Result<Service> {
    let mut service = Service::start("soak-ws-echo", services::ws_server_command(python, port))?;
    service.wait_for_port(port, Duration::from_secs(30))?;
    Ok(service)
}

/// At each planned time: asks the scene to pause its sends (`ws-pause`), waits until everything it
/// sent was echoed (`ws-paused`), kills the server, waits until WsEcho noticed (`ws-down`: the
/// scene sends on, into WsEcho's queue), and restarts the server after 0.5-2 s.
pub fn ws_faults(
    mut server: Service,
    python: &Path,
    port: u16,
    dir: &Path,
    mut plan: Plan,
    stop: &Stop,
) -> Result<WsFaults> {
    let (mut kills, mut handshake_timeouts) = (0, 0);
    let limit = Duration::from_secs(20);
    while plan.wait_next(stop) {
        fs::write(dir.join("ws-pause"), "")?;
        handshake_timeouts += u64::from(!wait_quietly(&dir.join("ws-paused"), limit));
        drop(server);
        kills += 1;
        handshake_timeouts += u64::from(!wait_quietly(&dir.join("ws-down"), limit));
        for file in ["ws-pause", "ws-paused", "ws-down"] {
            let _ = fs::remove_file(dir.join(file));
        }
        thread::sleep(between(Duration::from_millis(500), Duration::from_millis(2000)));
        server = start_ws(python, port)?;
    }
    Ok(WsFaults { faulted: Faulted { kills, service: server }, handshake_timeouts })
}

/// The ffmpeg source feeding the soak's icecast mount; waits until the mount is live.
pub fn start_source(tone: &Path, port: u16, icecast: Option<&mut Service>) -> Result<Service> {
    let mount = services::ICECAST_TEST_MOUNT;
    let mut source = services::start_icecast_source("soak-icecast-source", tone, port, mount)?;
    let mut waiting: Vec<&mut Service> = vec![&mut source];
    waiting.extend(icecast);
    services::wait_for_mount(port, mount, &mut waiting)?;
    Ok(source)
}

/// At each planned time: kills the icecast source (the mount goes away, listeners are dropped)
/// and restarts it after 0.5-2 s.
pub fn radio_faults(mut source: Service, tone: &Path, port: u16, mut plan: Plan, stop: &Stop) -> Result<Faulted> {
    let mut kills = 0;
    while plan.wait_next(stop) {
        drop(source);
        kills += 1;
        thread::sleep(between(Duration::from_millis(500), Duration::from_millis(2000)));
        source = start_source(tone, port, None)?;
    }
    Ok(Faulted { kills, service: source })
}

/// Waits until `path` exists (→ true) or `limit` passed (→ false).
fn wait_quietly(path: &Path, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if path.exists() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    false
}
