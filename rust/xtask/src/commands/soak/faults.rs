//! The soak's faults: redis-server, the WebSocket echo server and the icecast source killed
//! (SIGKILL) and restarted at random moments while traffic flows, each kind on its own thread
//! until the harness stops. Nothing is paused or drained before a kill: each fault records when
//! the service died and when it was back, and the verdict ([`super::judge`]) tells messages in
//! flight at a kill from lost ones.

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
    pub(super) fn wait_next(&mut self, stop: &Stop) -> bool {
        self.times.next().is_some_and(|at| stop.sleep(at.saturating_duration_since(Instant::now())))
    }
}

/// A pause between `low` and `high`, at random.
fn between(low: Duration, high: Duration) -> Duration {
    rand::random_range(low..high)
}

/// When one kill happened, in milliseconds since the Unix epoch (the clock the soak load and
/// the scene stamp their traffic with).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outage {
    /// Just before the SIGKILL.
    pub killed_ms: u64,
    /// Once the restarted service was ready again.
    pub back_ms: u64,
}

/// A service that was killed and restarted at random moments, running again (the scene
/// reconnects to it before it reports).
pub struct Faulted {
    /// Each kill, in order.
    pub outages: Vec<Outage>,
    #[allow(dead_code, reason = "held so that the service runs until the scene has reported")]
    service: Service,
}

/// Now, in milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// At each planned time: kills `server` and starts it again with `restart` after a pause
/// between `low` and `high`, recording each outage.
fn kill_and_restart(
    server: Service,
    plan: Plan,
    stop: &Stop,
    pause: (Duration, Duration),
    restart: impl FnMut() -> Result<Service>,
) -> Result<Faulted> {
    let (kills, service) = kill_and_restart_when(server, plan, stop, pause, || Some(()), restart)?;
    Ok(Faulted { outages: kills.into_iter().map(|(outage, ())| outage).collect(), service })
}

/// [`kill_and_restart`], with `ready` called at each planned time just before the kill: what
/// it returns is recorded with the outage, and `None` (the harness stopped meanwhile) ends the
/// faults. Returns the kills and the service running again.
pub(super) fn kill_and_restart_when<T>(
    mut server: Service,
    mut plan: Plan,
    stop: &Stop,
    (low, high): (Duration, Duration),
    mut ready: impl FnMut() -> Option<T>,
    mut restart: impl FnMut() -> Result<Service>,
) -> Result<(Vec<(Outage, T)>, Service)> {
    let mut kills = Vec::new();
    while plan.wait_next(stop) {
        let Some(seen) = ready() else { break };
        let killed_ms = unix_ms();
        drop(server);
        thread::sleep(between(low, high));
        server = restart()?;
        kills.push((Outage { killed_ms, back_ms: unix_ms() }, seen));
    }
    Ok((kills, server))
}

/// At each planned time: kills redis-server while the publisher publishes, restarts it on the
/// same port after 0.2-1.5 s.
pub fn redis_faults(server: Service, port: u16, plan: Plan, stop: &Stop) -> Result<Faulted> {
    let pause = (Duration::from_millis(200), Duration::from_millis(1500));
    kill_and_restart(server, plan, stop, pause, || services::start_redis_on("soak-redis", None, port))
}

/// The Python WebSocket echo server of the soak on 127.0.0.1:`port`, once it listens; it
/// appends every message it receives to `record` (see tests/helpers/ws_server.py).
pub fn start_ws(python: &Path, port: u16, record: &Path) -> Result<Service> {
    let mut cmd = services::ws_server_command(python, port);
    cmd.arg("--record").arg(record);
    let mut service = Service::start("soak-ws-echo", cmd)?;
    service.wait_for_port(port, Duration::from_secs(30))?;
    Ok(service)
}

/// At each planned time: kills the WebSocket server while the scene sends and messages are in
/// flight both ways, restarts it after 0.5-2 s.
pub fn ws_faults(server: Service, python: &Path, port: u16, record: &Path, plan: Plan, stop: &Stop) -> Result<Faulted> {
    let pause = (Duration::from_millis(500), Duration::from_millis(2000));
    kill_and_restart(server, plan, stop, pause, || start_ws(python, port, record))
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
pub fn radio_faults(source: Service, tone: &Path, port: u16, plan: Plan, stop: &Stop) -> Result<Faulted> {
    let pause = (Duration::from_millis(500), Duration::from_millis(2000));
    kill_and_restart(source, plan, stop, pause, || start_source(tone, port, None))
}
