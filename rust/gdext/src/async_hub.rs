//! `AsyncHub`: the autoload that steps the shared tokio runtime each frame and
//! gives GDScript timers and a view of every running task.

use std::time::Duration;

use async_net_core::{
    http::{HttpClient, HttpConfig},
    reactor::HUB_OWNER,
};
use godot::{
    classes::{INode, Node, node::ProcessMode},
    prelude::*,
};

use crate::{
    async_task::AsyncTask,
    http_options::{self, Call, Options},
    http_session, runtime, settings,
};

/// The shortest `interval()` period: a millisecond (a shorter one would only
/// tick once per frame anyway, with every missed tick skipped).
const MIN_INTERVAL_SEC: f64 = 0.001;

/// What AsyncHub holds for the reload-probe test build (see `reload_probe.rs`): nothing in a
/// shipped library, 64 bytes more in the probe, so a hot reload between the two changes the
/// layout of the one instance that lives through it.
#[cfg(not(feature = "reload-probe"))]
pub(crate) type ReloadProbeData = ();
#[cfg(feature = "reload-probe")]
pub(crate) type ReloadProbeData = [u64; 8];

/// Drives every async_net node: one tokio runtime, stepped once per frame.
///
/// Registered as the [code]AsyncHub[/code] autoload when the Async Net plugin
/// is enabled. Each frame it runs the network work that is ready (at most
/// [member max_step_usec] of it) and returns; an idle step costs about a
/// microsecond whatever the number of idle connections. It keeps stepping
/// while the game is paused and in the editor.
/// [codeblock]
/// await AsyncHub.sleep(1.0).completed
/// AsyncHub.interval(3.0).ticked.connect(func(n): print("%d x 3 seconds" % n))
/// [/codeblock]
#[derive(GodotClass)]
#[class(tool, base = Node)]
pub struct AsyncHub {
    /// Time budget of one step, in microseconds. Work that is still ready when
    /// it runs out waits for the next frame, so a flood of network traffic
    /// cannot freeze a frame.
    #[export(range = (50.0, 100000.0, 50.0, or_greater, suffix = "usec"))]
    max_step_usec: i64,
    /// The default HTTP session of [method fetch], made on first use.
    http: Option<HttpClient>,
    /// Empty, except in the reload-probe test build.
    #[cfg_attr(
        not(feature = "reload-probe"),
        expect(dead_code, reason = "read only by the reload-probe build's reload_probe_words")
    )]
    reload_probe: ReloadProbeData,
    base: Base<Node>,
}

#[godot_api]
impl INode for AsyncHub {
    fn init(base: Base<Node>) -> Self {
        Self {
            max_step_usec: runtime::DEFAULT_STEP_BUDGET.as_micros() as i64,
            http: None,
            reload_probe: ReloadProbeData::default(),
            base,
        }
    }

    fn enter_tree(&mut self) {
        // Network work goes on while the game is paused, and runs before the
        // nodes that react to it in the same frame.
        self.base_mut().set_process_mode(ProcessMode::ALWAYS);
        self.base_mut().set_process_priority(i32::MIN / 2);
        let id = self.base().instance_id();
        if !runtime::hub_entered(id) {
            godot_warn!("async_net: another AsyncHub is already in the tree; this one stays idle");
        }
    }

    fn exit_tree(&mut self) {
        runtime::hub_exited(self.base().instance_id());
        runtime::with_reactor(|r| r.cancel_owner(HUB_OWNER));
    }

    fn process(&mut self, _delta: f64) {
        if runtime::idle_frame_step() {
            return;
        }
        let budget = self.budget();
        // Holding the base guard lets signal handlers call back into the hub.
        let _guard = self.base_mut();
        runtime::step_once_per_frame(budget);
    }
}

#[godot_api]
impl AsyncHub {
    /// A task failed: [param task_name] is its name, [param message] the reason.
    /// The task's owner also emits [code]error(message)[/code].
    #[signal]
    pub fn task_failed(task_name: GString, message: GString);

    /// A task that completes after [param seconds] (never earlier).
    /// [codeblock]
    /// await AsyncHub.sleep(0.5).completed
    /// [/codeblock]
    #[func]
    pub fn sleep(&self, seconds: f64) -> Gd<AsyncTask> {
        let duration = settings::seconds("seconds", seconds, 0.0);
        AsyncTask::start("sleep", move |_| async move {
            let duration = duration.map_err(|e| format!("sleep: {e}"))?;
            tokio::time::sleep(duration).await;
            Ok(Variant::nil())
        })
    }

    /// A task that emits [signal AsyncTask.ticked] every [param seconds] (at
    /// least 0.001) until cancelled. Ticks missed during a long frame are
    /// skipped, not bunched.
    #[func]
    pub fn interval(&self, seconds: f64) -> Gd<AsyncTask> {
        let period = settings::seconds("seconds", seconds, MIN_INTERVAL_SEC);
        AsyncTask::start("interval", move |task| async move {
            let period = period.map_err(|e| format!("interval: {e}"))?;
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut count = 0i64;
            loop {
                ticker.tick().await;
                count += 1;
                task.signals().ticked().emit(count);
            }
        })
    }

    /// Fetches [param url] with the hub's own HTTP session (the
    /// [HttpSession] defaults: redirects followed, 30 s timeout, proxy from
    /// the environment) and returns a task completed with an [HttpResponse].
    /// [param options] are [method HttpSession.request]'s, and
    /// [code]method[/code] (default "GET").
    /// [codeblock]
    /// var res: HttpResponse = await AsyncHub.fetch("https://example.com/news.json").completed
    /// if res.is_ok():
    ///     print(res.json())
    /// [/codeblock]
    /// Like every hub task, it is cancelled by [method cancel_all]; a
    /// response that is not 2xx still completes (check its status).
    #[func]
    pub fn fetch(&mut self, url: GString, #[opt(default = Options::empty())] options: Options) -> Gd<AsyncTask> {
        let spec = http_options::read(Call::Fetch, "GET", &url.to_string(), &options.0).map(|(spec, _)| spec);
        let client = match &self.http {
            Some(client) => Ok(client.clone()),
            None => HttpClient::new(HttpConfig::default()).inspect(|client| self.http = Some(client.clone())),
        };
        http_session::start_request(client, HUB_OWNER, spec)
    }

    /// Cancels every task of every node and returns how many were cancelled.
    #[func]
    pub fn cancel_all(&self) -> i64 {
        runtime::with_reactor(|r| r.cancel_all() as i64).unwrap_or(0)
    }

    /// Only in the reload-probe test build: the words of data it holds more than a shipped hub.
    #[cfg(feature = "reload-probe")]
    #[func]
    fn reload_probe_words(&self) -> i64 {
        self.reload_probe.len() as i64
    }

    /// How many tasks are running.
    #[func]
    pub fn task_count(&self) -> i64 {
        runtime::with_reactor(|r| r.task_count() as i64).unwrap_or(0)
    }

    /// The running tasks, oldest first: each a Dictionary with [code]id[/code],
    /// [code]name[/code], [code]owner[/code] (a node path, or "AsyncHub") and
    /// [code]age_sec[/code].
    #[func]
    pub fn tasks(&self) -> Array<VarDictionary> {
        let list = runtime::with_reactor(|r| r.tasks()).unwrap_or_default();
        list.into_iter()
            .map(|t| {
                vdict! {
                    "id" => t.id as i64,
                    "name" => t.name,
                    "owner" => runtime::owner_label(t.owner),
                    "age_sec" => t.age.as_secs_f64(),
                }
            })
            .collect()
    }

    /// Runs one step now, outside the frame loop (tools, tests). Ignored when
    /// called from inside a step.
    #[func]
    pub fn step(&self) {
        runtime::step_now(self.budget());
    }

    /// Main-thread time the runtime took in the last frame, in microseconds:
    /// its step plus any extra steps since the previous frame (also the
    /// [code]async_net/step_usec[/code] Performance monitor).
    #[func]
    pub fn get_last_step_usec(&self) -> f64 {
        runtime::last_step_usec()
    }

    /// Which task held the main thread longest in one go during the last
    /// frame: [code]{"task": name, "owner": node path, "usec": time}[/code],
    /// or an empty Dictionary when no task ran. A step ends only between
    /// task polls, so when [method get_last_step_usec] is over
    /// [member max_step_usec] this names the work that overran. A single
    /// poll over 16 ms is also logged as a warning.
    /// [codeblock]
    /// var slowest := AsyncHub.get_slowest_task()
    /// if slowest.get("usec", 0.0) > 5000.0:
    ///     print("%s (%s) took %.1f ms" % [slowest.task, slowest.owner, slowest.usec / 1000.0])
    /// [/codeblock]
    #[func]
    pub fn get_slowest_task(&self) -> VarDictionary {
        match runtime::last_frame_slowest() {
            Some(slow) => vdict! {
                "task" => slow.name.to_string(),
                "owner" => runtime::owner_label(slow.owner),
                "usec" => slow.duration.as_secs_f64() * 1e6,
            },
            None => VarDictionary::new(),
        }
    }
}

impl AsyncHub {
    fn budget(&self) -> Duration {
        Duration::from_micros(self.max_step_usec.max(1) as u64)
    }
}
