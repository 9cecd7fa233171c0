//! A real Redis Cluster on loopback for the tests, the soak and the benchmarks: six
//! `redis-server` processes in cluster mode (three masters, three replicas) joined with
//! `redis-cli --cluster create`, and what a test does to it (kill a master and wait for its
//! replica to take over, move a slot to another master).
//!
//! Settings, from what Debian's redis-server 7.0 does on a 2-core machine: each node also
//! listens on its port + 10000 (the cluster bus), so the ports are taken below 32768 - 10000,
//! out of the kernel's ephemeral range that [`free_port`](crate::services::free_port) draws
//! from; `--repl-diskless-sync-delay 0` (a replica syncs in well under a second),
//! `--cluster-replica-validity-factor 0` (a replica always takes over) and
//! `--cluster-node-timeout 1500` (a master killed with SIGKILL is replaced in about 3 s);
//! `--cluster-require-full-coverage no`, so the shards that still have a master keep serving
//! while one has none. `DEBUG` is disabled in Redis 7: a node is killed through the
//! `process_id` of its `INFO server`.
//!
//! A watcher thread restarts a node whose process ended (a test killed it), from its
//! `nodes.conf`, once the cluster has marked it failed and handed its slots to its replica: it
//! rejoins as a replica of the new master, so the next test finds six nodes again
//! ([`RedisCluster::wait_healthy`]; tests/helpers/redis_cluster.gd for the Godot tests).
//! Restarting it earlier would bring back an empty master (no persistence) over its replica.
#![allow(dead_code, reason = "kill_master, move_slot and friends are for the soak and the benchmarks")]

use std::collections::BTreeMap;
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::paths;
use crate::process;
use crate::services::{Service, find_program};

/// Number of nodes: three masters, each with one replica.
pub const NODES: usize = 6;

/// The cluster bus of a node listens on its port plus this.
const BUS_OFFSET: u16 = 10000;

/// Ports are taken in `PORT_LOW..PORT_HIGH`; with the bus offset the buses stay below 32768,
/// where Linux's ephemeral ports begin.
const PORT_LOW: u16 = 12000;
const PORT_HIGH: u16 = 32768 - BUS_OFFSET - NODES as u16;

/// How long the cluster may take to be made and agree on it (create, gossip, replicas synced).
const START_LIMIT: Duration = Duration::from_secs(60);

/// A node that ended is restarted after this even when the cluster has not failed it over (its
/// shard had no replica left): the shard comes back empty rather than not at all.
const RESTART_ANYWAY: Duration = Duration::from_secs(20);

/// How often the watcher looks at the nodes.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// The running cluster; dropping it stops every node.
pub struct RedisCluster {
    ports: Vec<u16>,
    stop: Arc<AtomicBool>,
    watcher: Option<JoinHandle<()>>,
}

impl RedisCluster {
    /// Starts six nodes (logs and `nodes.conf` under `target/services/<name>/<port>/`), makes
    /// them a cluster of three masters with one replica each, and waits until it is healthy.
    pub fn start(name: &str) -> Result<Self> {
        let program = find_program("redis-server").context("redis-server is not installed")?;
        let ports = free_ports()?;
        let mut nodes = Vec::with_capacity(NODES);
        for &port in &ports {
            let dir = paths::target_dir()?.join("services").join(name).join(port.to_string());
            if dir.exists() {
                fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
            }
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let node = Node { name: format!("{name}-{port}"), program: program.clone(), port, dir, restarts: 0 };
            nodes.push((node.start()?, node));
        }
        for (service, node) in &mut nodes {
            service.wait_for_port(node.port, Duration::from_secs(20))?;
        }
        let mut create = Command::new(find_program("redis-cli").context("redis-cli is not installed")?);
        create.arg("--cluster").arg("create");
        create.args(ports.iter().map(|p| format!("127.0.0.1:{p}")));
        create.args(["--cluster-replicas", "1", "--cluster-yes"]);
        process::output(&mut create).context("making the redis cluster")?;

        let stop = Arc::new(AtomicBool::new(false));
        let watching = Arc::clone(&stop);
        let watcher = thread::Builder::new()
            .name(format!("{name}-watcher"))
            .spawn(move || watch(nodes, &watching))
            .context("starting the cluster's watcher")?;
        let cluster = RedisCluster { ports, stop, watcher: Some(watcher) };
        cluster.wait_healthy(START_LIMIT)?;
        Ok(cluster)
    }

    /// The ports of the six nodes on 127.0.0.1 (masters and replicas, in no particular order).
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// `redis://127.0.0.1:<port>` of every node: the seeds a client is given.
    pub fn urls(&self) -> Vec<String> {
        self.ports.iter().map(|p| format!("redis://127.0.0.1:{p}")).collect()
    }

    /// The ports of the masters that serve slots, as a node that is up sees them.
    pub fn masters(&self) -> Result<Vec<u16>> {
        let view = self.view()?;
        Ok(view.iter().filter(|n| n.is_master() && !n.slots.is_empty() && !n.failed()).map(|n| n.port).collect())
    }

    /// The port of the master that serves `slot`.
    pub fn master_of_slot(&self, slot: u16) -> Result<u16> {
        let view = self.view()?;
        let owner = view.iter().find(|n| n.is_master() && !n.failed() && n.serves(slot));
        owner.map(|n| n.port).with_context(|| format!("no master serves slot {slot}"))
    }

    /// The hash slot of `key` (or of a sharded channel).
    pub fn keyslot(&self, key: &str) -> Result<u16> {
        let answer = self.cli_any(&["CLUSTER", "KEYSLOT", key])?;
        answer.trim().parse().with_context(|| format!("CLUSTER KEYSLOT answered {answer:?}"))
    }

    /// Kills the master on `port` with SIGKILL (through the `process_id` of its INFO server) and
    /// waits until its replica has taken its slots over and the cluster is `ok` again; the
    /// watcher then brings the killed node back as a replica ([`Self::wait_healthy`]).
    pub fn kill_master(&self, port: u16, limit: Duration) -> Result<()> {
        let id = cli(port, &["CLUSTER", "MYID"])?.trim().to_string();
        let slots = self.view()?.into_iter().find(|n| n.id == id).map(|n| n.slots).unwrap_or_default();
        let Some(slot) = slots.first().map(|r| r.0) else { bail!("127.0.0.1:{port} is not a master with slots") };
        let pid = info_field(&cli(port, &["INFO", "server"])?, "process_id").context("no process_id in INFO")?;
        process::output(Command::new("kill").args(["-KILL", &pid])).context("killing a redis node")?;
        let start = Instant::now();
        loop {
            if self.master_of_slot(slot).is_ok_and(|p| p != port) && self.state_ok() {
                return Ok(());
            }
            if start.elapsed() > limit {
                bail!("no replica took over the slots of 127.0.0.1:{port} within {limit:?}");
            }
            thread::sleep(WATCH_EVERY);
        }
    }

    /// Moves `slot` to the master on `to` while the cluster serves it: IMPORTING on the target,
    /// MIGRATING on the source, its keys moved with MIGRATE, then SETSLOT NODE on every master.
    pub fn move_slot(&self, slot: u16, to: u16) -> Result<()> {
        let from = self.master_of_slot(slot)?;
        if from == to {
            return Ok(());
        }
        let (from_id, to_id) = (cli(from, &["CLUSTER", "MYID"])?, cli(to, &["CLUSTER", "MYID"])?);
        let (from_id, to_id, slot) = (from_id.trim(), to_id.trim(), slot.to_string());
        cli_ok(to, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", from_id])?;
        cli_ok(from, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", to_id])?;
        loop {
            let keys = cli(from, &["CLUSTER", "GETKEYSINSLOT", &slot, "100"])?;
            let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let to_port = to.to_string();
            let mut args = vec!["MIGRATE", "127.0.0.1", &to_port, "", "0", "5000", "KEYS"];
            args.extend(keys);
            cli_ok(from, &args)?;
        }
        // The target first, then the source (so it stops answering ASK), then the others.
        let mut order = vec![to, from];
        order.extend(self.masters()?.into_iter().filter(|p| *p != to && *p != from));
        for port in order {
            cli_ok(port, &["CLUSTER", "SETSLOT", &slot, "NODE", to_id])?;
        }
        Ok(())
    }

    /// Waits until all six nodes are up and agree: `cluster_state:ok` on each, three masters
    /// serving all slots with no migration open, each with one replica whose link is up and
    /// synced.
    pub fn wait_healthy(&self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let why = match self.health() {
                Ok(()) => return Ok(()),
                Err(err) => err,
            };
            if start.elapsed() > limit {
                return Err(why.context(format!("the redis cluster is not healthy after {limit:?}")));
            }
            thread::sleep(WATCH_EVERY);
        }
    }

    /// Why the cluster is not healthy yet, if it is not.
    fn health(&self) -> Result<()> {
        for &port in &self.ports {
            let info = cli(port, &["CLUSTER", "INFO"])?;
            if info_field(&info, "cluster_state").as_deref() != Some("ok") {
                bail!("127.0.0.1:{port} says the cluster is not ok");
            }
        }
        let view = self.view()?;
        check_view(&view)?;
        for node in view.iter().filter(|n| !n.is_master()) {
            let info = cli(node.port, &["INFO", "replication"])?;
            let synced = info_field(&info, "master_link_status").as_deref() == Some("up")
                && info_field(&info, "master_sync_in_progress").as_deref() == Some("0");
            if !synced {
                bail!("the replica 127.0.0.1:{} is not in sync", node.port);
            }
        }
        Ok(())
    }

    /// Whether every node that is up says `cluster_state:ok`.
    fn state_ok(&self) -> bool {
        let answers: Vec<String> = self.ports.iter().filter_map(|p| cli(*p, &["CLUSTER", "INFO"]).ok()).collect();
        !answers.is_empty() && answers.iter().all(|info| info_field(info, "cluster_state").as_deref() == Some("ok"))
    }

    /// CLUSTER NODES as the first node that answers sees it.
    fn view(&self) -> Result<Vec<ClusterNode>> {
        parse_nodes(&self.cli_any(&["CLUSTER", "NODES"])?)
    }

    /// Runs a command on the first node that answers.
    fn cli_any(&self, args: &[&str]) -> Result<String> {
        first_answer(&self.ports, args)
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}

/// How to (re)start one node.
struct Node {
    name: String,
    program: PathBuf,
    port: u16,
    dir: PathBuf,
    restarts: u32,
}

impl Node {
    fn start(&self) -> Result<Service> {
        let mut cmd = Command::new(&self.program);
        cmd.current_dir(&self.dir);
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        cmd.args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]);
        cmd.args(["--cluster-node-timeout", "1500", "--cluster-replica-validity-factor", "0"]);
        cmd.args(["--cluster-require-full-coverage", "no", "--repl-diskless-sync-delay", "0"]);
        cmd.arg("--dir").arg(&self.dir);
        let name =
            if self.restarts == 0 { self.name.clone() } else { format!("{}-restart{}", self.name, self.restarts) };
        Service::start(&name, cmd)
    }
}

/// The watcher: restarts a node whose process ended once the cluster has failed it over (see
/// the module doc); stops (and drops, so kills) every node when `stop` is set.
fn watch(mut nodes: Vec<(Service, Node)>, stop: &AtomicBool) {
    let ports: Vec<u16> = nodes.iter().map(|(_, n)| n.port).collect();
    let mut down_since: BTreeMap<u16, Instant> = BTreeMap::new();
    while !stop.load(Ordering::Relaxed) {
        for (service, node) in &mut nodes {
            if service.check_running().is_ok() {
                continue;
            }
            let since = *down_since.entry(node.port).or_insert_with(Instant::now);
            if !failed_over(&ports, node.port) && since.elapsed() < RESTART_ANYWAY {
                continue;
            }
            node.restarts += 1;
            match node.start() {
                Ok(new) => {
                    *service = new;
                    down_since.remove(&node.port);
                    eprintln!("xtask: redis cluster: 127.0.0.1:{} restarted after it ended", node.port);
                }
                Err(err) => eprintln!("xtask: redis cluster: restarting 127.0.0.1:{}: {err:#}", node.port),
            }
        }
        thread::sleep(WATCH_EVERY);
    }
}

/// Whether the nodes that are up have marked the node on `port` failed and it serves no slot.
fn failed_over(ports: &[u16], port: u16) -> bool {
    let others: Vec<u16> = ports.iter().copied().filter(|p| *p != port).collect();
    let Ok(view) = first_answer(&others, &["CLUSTER", "NODES"]).and_then(|text| parse_nodes(&text)) else {
        return false;
    };
    view.iter().any(|n| n.port == port && n.failed() && n.slots.is_empty())
}

/// One line of CLUSTER NODES.
#[derive(Debug, PartialEq)]
struct ClusterNode {
    id: String,
    port: u16,
    flags: Vec<String>,
    /// The master's id, for a replica.
    master: Option<String>,
    /// Slot ranges served (inclusive); migration markers (`[slot->-id]`) are in `migrating`.
    slots: Vec<(u16, u16)>,
    migrating: bool,
    connected: bool,
}

impl ClusterNode {
    fn is_master(&self) -> bool {
        self.flags.iter().any(|f| f == "master")
    }

    fn failed(&self) -> bool {
        self.flags.iter().any(|f| f == "fail" || f == "fail?")
    }

    fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(low, high)| (low..=high).contains(&slot))
    }
}

/// Parses CLUSTER NODES: `<id> <ip:port@bus[,hostname]> <flags> <master|-> <ping> <pong>
/// <epoch> <link> <slot>...`.
fn parse_nodes(text: &str) -> Result<Vec<ClusterNode>> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                bail!("a CLUSTER NODES line with too few fields: {line:?}");
            }
            let address = fields[1].split(['@', ',']).next().unwrap_or_default();
            let port = address.rsplit(':').next().and_then(|p| p.parse().ok());
            let port = port.with_context(|| format!("no port in {line:?}"))?;
            let mut slots = Vec::new();
            let mut migrating = false;
            for slot in &fields[8..] {
                if slot.starts_with('[') {
                    migrating = true;
                    continue;
                }
                let (low, high) = slot.split_once('-').unwrap_or((slot, slot));
                slots.push((low.parse()?, high.parse()?));
            }
            Ok(ClusterNode {
                id: fields[0].to_string(),
                port,
                flags: fields[2].split(',').map(str::to_string).collect(),
                master: (fields[3] != "-").then(|| fields[3].to_string()),
                slots,
                migrating,
                connected: fields[7] == "connected",
            })
        })
        .collect()
}

/// Why a view of the cluster is not that of a healthy one, if it is not.
fn check_view(view: &[ClusterNode]) -> Result<()> {
    if view.len() != NODES {
        bail!("{} nodes known, not {NODES}", view.len());
    }
    if let Some(node) = view.iter().find(|n| !n.connected || n.failed() || n.migrating) {
        bail!("127.0.0.1:{} is {:?}, link {}", node.port, node.flags, if node.connected { "up" } else { "down" });
    }
    let masters: Vec<&ClusterNode> = view.iter().filter(|n| n.is_master()).collect();
    let served: u32 = masters.iter().flat_map(|m| &m.slots).map(|&(l, h)| u32::from(h - l) + 1).sum();
    if masters.len() != NODES / 2 || served != 16384 {
        bail!("{} masters serve {served} slots", masters.len());
    }
    for master in masters {
        let replicas = view.iter().filter(|n| n.master.as_deref() == Some(&master.id)).count();
        if replicas != 1 {
            bail!("the master 127.0.0.1:{} has {replicas} replicas", master.port);
        }
    }
    Ok(())
}

/// The value of `field` in an INFO answer (`field:value` lines).
fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines().find_map(|line| line.trim_end().strip_prefix(field)?.strip_prefix(':').map(str::to_string))
}

/// Runs `redis-cli -p port args...` and returns what it printed; an error reply (`-e`: exit
/// code 1) or no connection fails.
fn cli(port: u16, args: &[&str]) -> Result<String> {
    let program = find_program("redis-cli").context("redis-cli is not installed")?;
    let mut cmd = Command::new(program);
    cmd.args(["-e", "-h", "127.0.0.1", "-p", &port.to_string()]).args(args);
    let out = cmd.stdin(std::process::Stdio::null()).output().context("running redis-cli")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let why = format!("{}{}", text.trim_end(), String::from_utf8_lossy(&out.stderr).trim_end());
        bail!("127.0.0.1:{port} answered {} with {why}", args.join(" "));
    }
    Ok(text)
}

/// Like [`cli`], for a command that answers `OK`.
fn cli_ok(port: u16, args: &[&str]) -> Result<()> {
    let out = cli(port, args)?;
    if out.trim() != "OK" && out.trim() != "NOKEY" {
        bail!("127.0.0.1:{port} answered {} with {}", args.join(" "), out.trim_end());
    }
    Ok(())
}

/// Runs a command on the first of `ports` that answers.
fn first_answer(ports: &[u16], args: &[&str]) -> Result<String> {
    let mut last = None;
    for &port in ports {
        match cli(port, args) {
            Ok(out) => return Ok(out),
            Err(err) => last = Some(err),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no node to ask")))
}

/// Six ports `base..base + 6` free on 127.0.0.1, with their bus ports (`+ 10000`).
fn free_ports() -> Result<Vec<u16>> {
    for _ in 0..100 {
        let base = rand::random_range(PORT_LOW..PORT_HIGH);
        let ports: Vec<u16> = (base..base + NODES as u16).collect();
        let free = ports
            .iter()
            .all(|&p| [p, p + BUS_OFFSET].iter().all(|&q| TcpListener::bind((Ipv4Addr::LOCALHOST, q)).is_ok()));
        if free {
            return Ok(ports);
        }
    }
    bail!("found no six free loopback ports (and their cluster bus ports) in {PORT_LOW}..{PORT_HIGH}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEALTHY: &str = "\
e8ca 127.0.0.1:30005@40005 slave b282 0 1796632754195 3 connected
9b2f 127.0.0.1:30001@40001 myself,master - 0 1796632754000 1 connected 0-5460
b282 127.0.0.1:30003@40003 master - 0 1796632754195 3 connected 10923-16383
ee56 127.0.0.1:30004@40004 slave b2d9 0 1796632754598 2 connected
f967 127.0.0.1:30006@40006 slave 9b2f 0 1796632754396 1 connected
b2d9 127.0.0.1:30002@40002,host master - 0 1796632754195 2 connected 5461-10922
";

    #[test]
    fn a_healthy_view_passes() {
        let view = parse_nodes(HEALTHY).unwrap();
        assert_eq!(view.len(), 6);
        assert_eq!(view[5].port, 30002);
        assert_eq!(view[1].slots, vec![(0, 5460)]);
        assert!(view[1].is_master() && view[1].serves(5460) && !view[1].serves(5461));
        assert_eq!(view[0].master.as_deref(), Some("b282"));
        check_view(&view).unwrap();
    }

    #[test]
    fn a_failed_master_or_an_open_migration_is_not_healthy() {
        let failed =
            HEALTHY.replace("myself,master - 0 1796632754000 1 connected 0-5460", "master,fail - 0 0 1 disconnected");
        let view = parse_nodes(&failed).unwrap();
        assert!(view[1].failed() && view[1].slots.is_empty());
        assert!(check_view(&view).is_err());
        let migrating = HEALTHY.replace("connected 0-5460", "connected 0-5460 [7->-b2d9]");
        let view = parse_nodes(&migrating).unwrap();
        assert!(view[1].migrating);
        assert_eq!(view[1].slots, vec![(0, 5460)]);
        assert!(check_view(&view).is_err());
    }

    #[test]
    fn info_fields_are_read() {
        let info = "# Server\r\nredis_version:7.0.15\r\nprocess_id:4242\r\nprocess_supervised:no\r\n";
        assert_eq!(info_field(info, "process_id").as_deref(), Some("4242"));
        assert_eq!(info_field(info, "process"), None);
    }
}
