## The sharded pub/sub benchmark of `cargo xtask bench` (issue 18, item 5), against the six-node
## Redis Cluster that xtask starts for this scene (rust/xtask/src/redis_cluster.rs; its seeds in
## --cluster-urls=URL,URL,...):
##
## messages/s delivered into a GDScript handler that only counts, 100-byte payloads,
## Engine.max_fps = 0, max_messages_per_frame = 100000, a RedisSubscriber with `cluster = true`
## holding three sharded channels, each flooded by its own `redis-benchmark SPUBLISH` aimed at
## the channel's master: the three channels on the three masters (the spread a cluster is for)
## against the same load on three channels that one master serves. Alternating, median of
## REPEATS runs each, in the same run.
##
## Prints one line `BENCH {json}` per row and quits with 0, or 1 (with a message) when a row
## could not be measured; every process it started is killed before it quits.
## User arguments (after `--`): --cluster-urls=URL,... (from xtask), --workdir=DIR, --only=sharded.
extends Node

const Util := preload("res://bench/bench_util.gd")
const PAYLOAD_BYTES := 100
## Per run, over the three publishers: BENCH_PIPELINE * BENCH_CLIENTS divides each third.
const FLOOD_MESSAGES := 600000
const WARMUP_MESSAGES := 60000
const REPEATS := 3
const BENCH_PIPELINE := 64
const BENCH_CLIENTS := 1
const LIMIT_SEC := 300.0

var _urls := PackedStringArray()
var _ports := PackedInt32Array()
var _workdir := ""
var _payload := ""
var _processes := Util.Processes.new("bench_sharded_redis")
var _failures := PackedStringArray()
var _runs := 0
var _count := 0
var _load := ""
var _ticks := PackedInt64Array()
var _values := PackedInt64Array()
var _recording := false


func _ready() -> void:
	process_priority = 1 << 20
	OS.low_processor_usage_mode_sleep_usec = 0
	get_tree().create_timer(LIMIT_SEC, true, false, true).timeout.connect(_on_time_limit)
	_payload = "x".repeat(PAYLOAD_BYTES)
	_run.call_deferred()


func _exit_tree() -> void:
	_processes.kill_all()


func _process(_delta: float) -> void:
	if _recording:
		_ticks.append(Time.get_ticks_usec())
		_values.append(_count)


func _run() -> void:
	var options := Util.options()
	_urls = options.get("cluster-urls", "").split(",", false)
	_workdir = options.get("workdir", "")
	if _workdir.is_empty():
		_workdir = OS.get_temp_dir().path_join("bench_sharded_%d" % OS.get_process_id())
	DirAccess.make_dir_recursive_absolute(_workdir)
	for url in _urls:
		_ports.append(url.get_slice(":", 2).to_int())
	var only: PackedStringArray = options.get("only", "sharded").split(",", false)
	if not "sharded" in only:
		pass
	elif _ports.size() != 6:
		_fail("needs --cluster-urls with the six nodes of a cluster; run it with `cargo xtask bench --scene sharded`")
	else:
		var loadavg := FileAccess.open("/proc/loadavg", FileAccess.READ)
		if loadavg != null:
			_load = "load average %s at start" % " ".join(loadavg.get_line().split(" ").slice(0, 3))
		await _bench()
	_processes.kill_all()
	if not _failures.is_empty():
		printerr("bench_sharded_redis: %d problem(s): %s" % [_failures.size(), "; ".join(_failures)])
	get_tree().quit(1 if not _failures.is_empty() else 0)


func _bench() -> void:
	var masters := _masters()
	if masters.size() != 3:
		_fail("the cluster has %d masters serving slots, not 3" % masters.size())
		return
	for port in masters:
		# A subscriber that falls behind for a moment is never cut off.
		_cli(port, ["CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 0 0"])
	var spread := PackedStringArray()
	for port in masters:
		spread.append(_channel_on(port, "spread:"))
	var one := PackedStringArray()
	for i in 3:
		one.append(_channel_on(masters[0], "one%d:" % i))
	print("bench_sharded_redis: Godot %s, %d CPU cores, masters %s, %s" % [
		Engine.get_version_info().string, OS.get_processor_count(), masters, _load])
	await _rate(spread, WARMUP_MESSAGES)
	await _rate(one, WARMUP_MESSAGES)
	var runs := {"spread": PackedFloat64Array(), "one": PackedFloat64Array()}
	var published := {"spread": PackedFloat64Array(), "one": PackedFloat64Array()}
	for i in REPEATS:
		for who: String in runs:
			var run := await _rate(spread if who == "spread" else one, FLOOD_MESSAGES)
			if run.is_empty():
				return
			runs[who].append(run.rate)
			published[who].append(run.published)
	Engine.max_fps = 60
	Util.row("Sharded pub/sub messages/s into a GDScript handler (count only), three channels, %d-byte payloads, uncapped fps" % PAYLOAD_BYTES,
			"msg/s", Util.median(runs.spread), Util.median(runs.one), "the same three channels on one master", false,
			("%d messages per run, a third per channel, each third published by its own `redis-benchmark -P %d -c %d "
			+ "SPUBLISH` at the channel's master; one RedisSubscriber (cluster = true, shard_channels = the three, "
			+ "max_messages_per_frame = 100000, Engine.max_fps = 0) counting in its message_received handler, from the "
			+ "first frame that saw a message to the one that saw the last; spread over the three masters (%s msg/s, "
			+ "publishers %s) against three channels on one master (%s msg/s, publishers %s), alternating, median of %d "
			+ "runs each. Six redis-server nodes (replicas receive every SPUBLISH too), three redis-benchmark and Godot "
			+ "share %d CPU cores; %s") % [FLOOD_MESSAGES, BENCH_PIPELINE, BENCH_CLIENTS, Util.list(runs.spread),
			Util.list(published.spread), Util.list(runs.one), Util.list(published.one), REPEATS, OS.get_processor_count(), _load])


## One flood of `messages` over `channels` into a cluster RedisSubscriber: {"rate", "published"}
## (the three publishers' rates summed), or {} on failure.
func _rate(channels: PackedStringArray, messages: int) -> Dictionary:
	Engine.max_fps = 0
	var sub := RedisSubscriber.new()
	sub.autostart = false
	sub.cluster = true
	sub.url = _urls[0]
	sub.cluster_urls = _urls.slice(1)
	sub.shard_channels = channels
	sub.max_messages_per_frame = 100000
	sub.max_backlog = 20000000
	add_child(sub)
	var confirmed := {}
	sub.subscribed.connect(func(name: String) -> void: confirmed[name] = true)
	sub.message_received.connect(_on_count)
	sub.start()
	if not await Util.wait_until(get_tree(), func() -> bool: return confirmed.size() == channels.size(), 10.0):
		_fail("the RedisSubscriber did not subscribe %s (state %d)" % [channels, sub.state])
		sub.free()
		return {}
	_count = 0
	await Util.frames(get_tree(), 10)
	_ticks = PackedInt64Array()
	_values = PackedInt64Array()
	_recording = true
	var floods := []
	for channel in channels:
		floods.append(_start_flood(_master_of(channel), channel, messages / channels.size()))
	var done := await Util.wait_until(get_tree(), func() -> bool: return not _values.is_empty() and _values[-1] >= messages, 90.0)
	_recording = false
	var stats := sub.get_stats()
	sub.free()
	var rate_published := 0.0
	for flood in floods:
		rate_published += await _processes.redis_benchmark_rate(get_tree(), flood)
	if not done or int(stats.dropped) != 0:
		_fail("%d of %d messages arrived, %d dropped (stats %s)" % [_count, messages, int(stats.dropped), stats])
		return {}
	var rate := _rate_from(messages)
	print("bench_sharded_redis: %s: %d messages, %.0f msg/s (published at %.0f msg/s)" % [
		channels, messages, rate, rate_published])
	return {"rate": rate, "published": rate_published}


func _on_count(_channel: String, _payload_text: String, _pattern: String) -> void:
	_count += 1


## Messages per second between the first sample that saw one and the first that saw `end`.
func _rate_from(end: int) -> float:
	var first := -1
	for i in _values.size():
		if first < 0 and _values[i] > 0:
			first = i
		if _values[i] >= end and first >= 0 and i > first:
			return (_values[i] - _values[first]) / ((_ticks[i] - _ticks[first]) / 1e6)
	return 0.0


func _start_flood(port: int, channel: String, messages: int) -> Dictionary:
	_runs += 1
	var out := _workdir.path_join("redis-benchmark-sharded-%d.txt" % _runs)
	return _processes.start_redis_benchmark(out, ["-h", "127.0.0.1", "-p", str(port), "-n", str(messages),
			"-P", str(BENCH_PIPELINE), "-c", str(BENCH_CLIENTS), "SPUBLISH", channel, _payload])


# --- the cluster, through redis-cli (setup only: it blocks the main thread a few ms) -----------

func _cli(port: int, args: Array) -> String:
	var output := []
	OS.execute("redis-cli", PackedStringArray(["-h", "127.0.0.1", "-p", str(port)] + args), output, true)
	return output[0].strip_edges() if output.size() > 0 else ""


## The masters serving slots, from CLUSTER NODES: [[first slot, port], ...] sorted, as ports.
func _masters() -> PackedInt32Array:
	var found := []
	for line in _cli(_ports[0], ["CLUSTER", "NODES"]).split("\n", false):
		var fields := line.split(" ", false)
		if fields.size() > 8 and "master" in fields[2] and not "fail" in fields[2]:
			found.append([fields[8].get_slice("-", 0).to_int(), fields[1].get_slice("@", 0).get_slice(":", 1).to_int()])
	found.sort()
	var ports := PackedInt32Array()
	for pair in found:
		ports.append(pair[1])
	return ports


func _master_of(channel: String) -> int:
	var slot := _cli(_ports[0], ["CLUSTER", "KEYSLOT", channel]).to_int()
	for line in _cli(_ports[0], ["CLUSTER", "NODES"]).split("\n", false):
		var fields := line.split(" ", false)
		if fields.size() > 8 and "master" in fields[2]:
			for i in range(8, fields.size()):
				var range_ := fields[i].split("-")
				if slot >= range_[0].to_int() and slot <= range_[-1].to_int():
					return fields[1].get_slice("@", 0).get_slice(":", 1).to_int()
	return 0


func _channel_on(port: int, prefix: String) -> String:
	for i in 1000:
		if _master_of("%s%d" % [prefix, i]) == port:
			return "%s%d" % [prefix, i]
	return ""


func _fail(message: String) -> void:
	printerr("bench_sharded_redis: FAILED: " + message)
	_failures.append(message)


func _on_time_limit() -> void:
	printerr("bench_sharded_redis: FAILED: time limit of %.0f s reached" % LIMIT_SEC)
	_processes.kill_all()
	get_tree().quit(2)
