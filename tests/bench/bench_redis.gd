## The RedisSubscriber benchmarks of `cargo xtask bench` (issue 4, item 7), every baseline
## measured in this run against a redis-server the scene starts on a free loopback port
## (no persistence, pub/sub output buffers unlimited so a slow subscriber is never cut off):
##
## 1. messages/s delivered into a GDScript handler that only counts, 100-byte payloads,
##    Engine.max_fps = 0, max_messages_per_frame = 100000, under a `redis-benchmark` PUBLISH
##    flood; against `redis-cli subscribe` (the native client) on the same flood, its output
##    going to a file whose size the scene polls. One subscriber at a time (the machine may
##    have two cores only), alternating, median of REPEATS runs each.
## 2. main-thread microseconds per delivered message at 60 fps under a steady flood (batches
##    of `redis-cli --pipe` from a shell loop): the sum of the hub's step times (read every
##    frame after the hub stepped; the step reads the socket, parses RESP and emits
##    message_received to the counting handler) over the messages delivered; against the
##    floor of emitting the same signal (three Strings) to the same handler from GDScript,
##    timed with Time.get_ticks_usec(). Then the same flood through the batch signal
##    messages_received(channels, payloads, patterns), whose handler counts each message in a
##    loop, against the same per-message floor (issue 4's target is 1.5x that floor); the
##    cost of that handler fed prebuilt batches of the same size from GDScript is in the detail.
## 3. latency from PUBLISH to the handler at 60 fps, in frames (p50 and p99): a shell loop
##    runs one `EVAL` at a time whose Lua stamps the server's TIME into the payload and
##    publishes it; the handler compares with the system clock. Baseline: the target (1 frame).
##
## Prints one line `BENCH {json}` per row and quits with 0, or 1 (with a message) when a row
## could not be measured; every process it started is killed before it quits.
## User arguments (after `--`): --workdir=DIR (files exchanged with the processes; default: a
## temporary directory), --only=rate,cost,latency.
extends Node

## Emitted by the floor measurement of row 2: the signature of RedisSubscriber.message_received.
signal gd_message(channel: String, payload: String, pattern: String)
## Emitted for scale in row 2's batch detail: the signature of RedisSubscriber.messages_received.
signal gd_batch(channels: PackedStringArray, payloads: PackedStringArray, patterns: PackedStringArray)

const Util := preload("res://bench/bench_util.gd")
const CHANNEL := "bench"
const PAYLOAD_BYTES := 100
## Row 1: messages per flood, runs per side (after one warm-up run each). Multiples of
## BENCH_PIPELINE * BENCH_CLIENTS: redis-benchmark sends whole pipelines, so it rounds up.
const FLOOD_MESSAGES := 1024000
const WARMUP_MESSAGES := 102400
const REPEATS := 3
const BENCH_PIPELINE := 64
const BENCH_CLIENTS := 4
## Row 2: messages per `redis-cli --pipe` batch and the pause between batches.
const FPS := 60
const STEADY_BATCH := 500
const STEADY_PAUSE_SEC := "0.01"
const WARMUP_FRAMES := 60
const COST_FRAMES := 300
## Row 3: published messages (the first LATENCY_WARMUP are not counted), pause between them.
const LATENCY_SAMPLES := 420
const LATENCY_WARMUP := 20
const LATENCY_PAUSE_SEC := "0.015"
## The whole scene's time limit.
const LIMIT_SEC := 200.0

const LUA_PUBLISH_NOW := "local t = redis.call('TIME') return redis.call('PUBLISH', KEYS[1], t[1] .. ' ' .. t[2])"

var _workdir := ""
var _port := 0
var _pids: Array[int] = []
var _failures := PackedStringArray()
var _payload := ""
var _runs := 0
## "load average a b c at start", for the details: other work on the machine skews every row.
var _load := ""

# Counting handler state (and batch signals received, for the batch handler).
var _count := 0
var _batches := 0
# Latency handler state: seconds from PUBLISH to the handler.
var _latency := PackedFloat64Array()

# Per-frame recording in _process (this node runs after the hub).
enum Rec { NONE, COUNT, COST, FILE }
var _rec := Rec.NONE
var _rec_file := ""
var _ticks := PackedInt64Array()
var _values := PackedInt64Array()
var _steps := PackedFloat64Array()


func _ready() -> void:
	process_priority = 1 << 20
	# Headless Godot sleeps ~7 ms after every frame unless told not to; uncapped must mean uncapped.
	OS.low_processor_usage_mode_sleep_usec = 0
	get_tree().create_timer(LIMIT_SEC, true, false, true).timeout.connect(_on_time_limit)
	_payload = "x".repeat(PAYLOAD_BYTES)
	_run.call_deferred()


func _exit_tree() -> void:
	_kill_all()


func _process(_delta: float) -> void:
	match _rec:
		Rec.COUNT:
			_ticks.append(Time.get_ticks_usec())
			_values.append(_count)
		Rec.COST:
			_steps.append(AsyncHub.get_last_step_usec())
			_values.append(_count)
		Rec.FILE:
			_ticks.append(Time.get_ticks_usec())
			_values.append(_file_size(_rec_file))


func _run() -> void:
	var options := Util.options()
	_workdir = options.get("workdir", "")
	if _workdir.is_empty():
		_workdir = OS.get_temp_dir().path_join("bench_redis_%d" % OS.get_process_id())
	DirAccess.make_dir_recursive_absolute(_workdir)
	var only: PackedStringArray = options.get("only", "rate,cost,latency").split(",", false)
	var missing := PackedStringArray()
	for program in ["redis-server", "redis-cli", "redis-benchmark"]:
		if OS.execute("sh", ["-c", "command -v %s" % program]) != 0:
			missing.append(program)
	if not missing.is_empty():
		_fail("not installed: %s (Debian: redis-server, redis-tools)" % ", ".join(missing))
	elif await _start_server():
		var loadavg := FileAccess.open("/proc/loadavg", FileAccess.READ)
		if loadavg != null:
			_load = "load average %s at start" % " ".join(loadavg.get_line().split(" ").slice(0, 3))
		print("bench_redis: Godot %s, %d CPU cores, redis-server on 127.0.0.1:%d, AsyncHub.max_step_usec = %d, %s" % [
			Engine.get_version_info().string, OS.get_processor_count(), _port, AsyncHub.max_step_usec, _load])
		if "rate" in only:
			await _bench_rate()
		if "cost" in only:
			await _bench_cost()
		if "latency" in only:
			await _bench_latency()
	_kill_all()
	if not _failures.is_empty():
		printerr("bench_redis: %d problem(s): %s" % [_failures.size(), "; ".join(_failures)])
	get_tree().quit(1 if not _failures.is_empty() else 0)


# --- Row 1: messages per second, uncapped -----------------------------------------------------

func _bench_rate() -> void:
	# Warm-up (discarded): connections, allocators, caches.
	await _rate_ours(WARMUP_MESSAGES)
	await _rate_cli(WARMUP_MESSAGES)
	var ours := PackedFloat64Array()
	var base := PackedFloat64Array()
	var publisher := PackedFloat64Array()
	for i in REPEATS:
		var run := await _rate_ours(FLOOD_MESSAGES)
		if run.is_empty():
			return
		ours.append(run.rate)
		publisher.append(run.published)
		run = await _rate_cli(FLOOD_MESSAGES)
		if run.is_empty():
			return
		base.append(run.rate)
		publisher.append(run.published)
	Engine.max_fps = FPS
	_row("Redis pub/sub messages/s delivered into a GDScript handler (count only), %d-byte payloads, uncapped fps" % PAYLOAD_BYTES,
			"msg/s", Util.median(ours), Util.median(base), "redis-cli subscribe (output to a file)", false,
			("%d messages per run published by `redis-benchmark -P %d -c %d PUBLISH` (%s msg/s published, per run); "
			+ "rate = messages counted between the first frame (poll) that saw one and the one that saw the last, "
			+ "over that time; one subscriber at a time, alternating, median of %d runs each after a warm-up "
			+ "(ours: %s; redis-cli: %s); Engine.max_fps = 0, max_messages_per_frame = 100000, "
			+ "AsyncHub.max_step_usec = %d; %d CPU cores shared by redis-server, redis-benchmark and the subscriber")
			% [FLOOD_MESSAGES, BENCH_PIPELINE, BENCH_CLIENTS, _list(publisher), REPEATS, _list(ours), _list(base),
			AsyncHub.max_step_usec, OS.get_processor_count()])


## One flood into a RedisSubscriber: {"rate", "published"}, or {} on failure.
func _rate_ours(messages: int) -> Dictionary:
	Engine.max_fps = 0
	var sub := await _new_subscriber(_on_count, 100000)
	if sub == null:
		return {}
	_count = 0
	await Util.frames(get_tree(), 10)
	_start_recording(Rec.COUNT)
	var flood := _start_flood(messages)
	# Judged on the recorded samples, so that the last one is the one that saw the end.
	var done := await Util.wait_until(get_tree(), func() -> bool: return not _values.is_empty() and _values[-1] >= messages, 90.0)
	_rec = Rec.NONE
	var stats := sub.get_stats()
	sub.free()
	var published := await _flood_result(flood)
	if not done:
		_fail("rate ours: %d of %d messages arrived (stats %s)" % [_count, messages, stats])
		return {}
	if int(stats.dropped) != 0:
		_fail("rate ours: %d messages dropped" % int(stats.dropped))
		return {}
	var rate := _rate_from(_ticks, _values, 0, messages)
	print("bench_redis: rate ours: %d messages, %.0f msg/s (peak backlog %d, published at %.0f msg/s)" % [
		messages, rate, int(stats.peak_backlog), published])
	return {"rate": rate, "published": published}


## One flood into `redis-cli subscribe`: {"rate", "published"}, or {} on failure.
func _rate_cli(messages: int) -> Dictionary:
	# Godot only polls a file here; 1 kHz keeps it off the CPU the others need.
	Engine.max_fps = 1000
	_runs += 1
	var out := _workdir.path_join("redis-cli-sub-%d.txt" % _runs)
	var pid := _spawn("sh", ["-c", 'exec redis-cli -h 127.0.0.1 -p "$1" subscribe "$2" > "$3"', "sh", str(_port), CHANNEL, out])
	# In raw mode (not a terminal) redis-cli prints each reply element on a line of its own.
	var header := "subscribe\n%s\n1\n" % CHANNEL
	var per_message := ("message\n%s\n%s\n" % [CHANNEL, _payload]).length()
	var subscribed := await Util.wait_until(get_tree(), func() -> bool: return _file_size(out) >= header.length(), 10.0)
	if pid <= 0 or not subscribed or FileAccess.get_file_as_string(out) != header:
		_fail("rate redis-cli: no subscription confirmed in %s" % out)
		_kill(pid)
		return {}
	var expected := header.length() + messages * per_message
	_start_recording(Rec.FILE, out)
	var flood := _start_flood(messages)
	var done := await Util.wait_until(get_tree(), func() -> bool: return not _values.is_empty() and _values[-1] >= expected, 90.0)
	_rec = Rec.NONE
	_kill(pid)
	var published := await _flood_result(flood)
	var size := _file_size(out)
	DirAccess.remove_absolute(out)
	if not done or size != expected:
		_fail("rate redis-cli: %d bytes written, %d expected" % [size, expected])
		return {}
	for i in _values.size():
		_values[i] = maxi(_values[i] - header.length(), 0)
	var rate := _rate_from(_ticks, _values, 0, messages * per_message) / per_message
	print("bench_redis: rate redis-cli: %d messages, %.0f msg/s (published at %.0f msg/s)" % [messages, rate, published])
	return {"rate": rate, "published": published}


## Units per second between the first sample above `start` and the first at `end` or more.
func _rate_from(ticks: PackedInt64Array, values: PackedInt64Array, start: int, end: int) -> float:
	var first := -1
	var last := -1
	for i in values.size():
		if first < 0 and values[i] > start:
			first = i
		if values[i] >= end:
			last = i
			break
	if first < 0 or last <= first:
		return 0.0
	return (values[last] - values[first]) / ((ticks[last] - ticks[first]) / 1e6)


## Starts `redis-benchmark` publishing `messages` payloads to CHANNEL; returns {pid, out}.
func _start_flood(messages: int) -> Dictionary:
	_runs += 1
	var out := _workdir.path_join("redis-benchmark-%d.txt" % _runs)
	var pid := _spawn("sh", ["-c", 'out=$1; shift; exec "$@" > "$out" 2>&1', "sh", out,
			"redis-benchmark", "-h", "127.0.0.1", "-p", str(_port), "-n", str(messages), "-P", str(BENCH_PIPELINE),
			"-c", str(BENCH_CLIENTS), "-q", "PUBLISH", CHANNEL, _payload])
	return {"pid": pid, "out": out}


## Waits for the flood's publisher to exit; its publish rate (msg/s), or 0 if unknown.
func _flood_result(flood: Dictionary) -> float:
	await Util.wait_until(get_tree(), func() -> bool: return not OS.is_process_running(flood.pid), 30.0)
	_kill(flood.pid)
	var text := FileAccess.get_file_as_string(flood.out)
	DirAccess.remove_absolute(flood.out)
	var found := RegEx.create_from_string("([0-9.]+) requests per second").search_all(text)
	return found[-1].get_string(1).to_float() if not found.is_empty() else 0.0


# --- Row 2: main-thread time per message at 60 fps --------------------------------------------

func _bench_cost() -> void:
	Engine.max_fps = FPS
	var ours := await _steady_cost(false)
	if ours.is_empty():
		return

	# The floor: the same signal, the same handler, emitted from GDScript as often per frame.
	var per_emit := maxi(int(roundf(ours.per_frame)), 1)
	gd_message.connect(_on_count)
	await Util.frames(get_tree(), WARMUP_FRAMES)
	var floor_usec := 0
	var emitted := 0
	for frame in COST_FRAMES:
		var t0 := Time.get_ticks_usec()
		for i in per_emit:
			gd_message.emit(CHANNEL, _payload, "")
		floor_usec += Time.get_ticks_usec() - t0
		emitted += per_emit
		await get_tree().process_frame
	gd_message.disconnect(_on_count)
	var floor := float(floor_usec) / emitted
	print("bench_redis: cost floor: %d emissions in %d frames, %d us, %.3f us/msg" % [emitted, COST_FRAMES, floor_usec, floor])
	var flood := "batches of %d PUBLISH via `redis-cli --pipe` every ~%s s + process start" % [STEADY_BATCH, STEADY_PAUSE_SEC]
	var floor_detail := ("floor: %d emissions per frame of a GDScript signal with three String arguments to the same "
			+ "handler, timed with Time.get_ticks_usec() around each frame's loop, %d frames") % [per_emit, COST_FRAMES]
	_row("main-thread time per Redis message delivered to a GDScript handler at %d fps, steady flood" % FPS,
			"us/msg", ours.usec, floor, "floor: the same signal emitted from GDScript to the same handler", true,
			("ours: sum of AsyncHub.get_last_step_usec() over %d frames (the step reads the socket, parses RESP and "
			+ "emits message_received(channel, payload, pattern) to a handler that counts) / the %d messages "
			+ "delivered (%.0f per frame, %.1f fps, backlog %d at the end); flood: %s; %s")
			% [ours.frames, ours.delivered, ours.per_frame, ours.fps, ours.backlog, flood, floor_detail])

	var batched := await _steady_cost(true)
	if batched.is_empty():
		return
	# For scale: the batch handler fed prebuilt batches of the same size from GDScript.
	var size := maxi(int(roundf(batched.per_batch)), 1)
	var channels := PackedStringArray()
	var payloads := PackedStringArray()
	var patterns := PackedStringArray()
	for i in size:
		channels.append(CHANNEL)
		payloads.append(_payload)
		patterns.append("")
	gd_batch.connect(_on_batch)
	await Util.frames(get_tree(), WARMUP_FRAMES)
	var batch_usec := 0
	var batch_messages := 0
	for frame in COST_FRAMES:
		var t0 := Time.get_ticks_usec()
		for i in maxi(int(roundf(batched.per_frame / size)), 1):
			gd_batch.emit(channels, payloads, patterns)
			batch_messages += size
		batch_usec += Time.get_ticks_usec() - t0
		await get_tree().process_frame
	gd_batch.disconnect(_on_batch)
	var batch_floor := float(batch_usec) / batch_messages
	print("bench_redis: cost batch floor: %d messages in batches of %d, %d us, %.3f us/msg" % [batch_messages, size, batch_usec, batch_floor])
	_row("main-thread time per Redis message delivered to a GDScript handler at %d fps, steady flood, batch signal" % FPS,
			"us/msg", batched.usec, floor, "floor: the per-message signal emitted from GDScript to the per-message handler", true,
			("ours: as the row above, through messages_received(channels, payloads, patterns) whose handler loops over "
			+ "the batch counting each message; %d frames, %d messages delivered (%.0f per frame, %.1f fps, backlog %d "
			+ "at the end) in %d batches (%.1f messages each); flood: %s; baseline: the per-message floor of the row "
			+ "above, measured in this run (%s). For scale: the same batch handler fed prebuilt batches of %d from "
			+ "GDScript costs %.3f us/msg")
			% [batched.frames, batched.delivered, batched.per_frame, batched.fps, batched.backlog, batched.batches,
			batched.per_batch, flood, floor_detail, size, batch_floor])


## Main-thread cost of a RedisSubscriber under the steady flood, through the per-message signal
## or the batch signal: {usec (per message), per_frame, fps, frames, delivered, backlog,
## batches, per_batch}, or {} after a failure.
func _steady_cost(batch: bool) -> Dictionary:
	var sub := await _new_subscriber(_on_batch if batch else _on_count, 1000, batch)
	if sub == null:
		return {}
	_runs += 1
	var file_name := _workdir.path_join("batch-%d.resp" % _runs)
	var stop := _workdir.path_join("batch-%d.stop" % _runs)
	var file := FileAccess.open(file_name, FileAccess.WRITE)
	var command := "*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % [CHANNEL.length(), CHANNEL, _payload.length(), _payload]
	file.store_string(command.repeat(STEADY_BATCH))
	file.close()
	var pid := _spawn("sh", ["-c",
			'while [ ! -e "$3" ]; do redis-cli -h 127.0.0.1 -p "$1" --pipe < "$2" > /dev/null 2>&1; sleep "$4"; done',
			"sh", str(_port), file_name, stop, STEADY_PAUSE_SEC])
	_count = 0
	var flowing := await Util.wait_until(get_tree(), func() -> bool: return _count > 0, 10.0)
	await Util.frames(get_tree(), WARMUP_FRAMES)
	var before := _count
	_batches = 0
	var started := Time.get_ticks_usec()
	_start_recording(Rec.COST)
	await Util.frames(get_tree(), COST_FRAMES)
	_rec = Rec.NONE
	var batches := _batches
	var seconds := (Time.get_ticks_usec() - started) / 1e6
	var stats := sub.get_stats()
	FileAccess.open(stop, FileAccess.WRITE).close()
	await Util.wait_until(get_tree(), func() -> bool: return not OS.is_process_running(pid), 5.0)
	_kill(pid)
	sub.free()
	DirAccess.remove_absolute(file_name)
	DirAccess.remove_absolute(stop)
	var delivered := (_values[-1] if not _values.is_empty() else before) - before
	var label := "batch" if batch else "ours"
	if not flowing or delivered <= 0:
		_fail("cost %s: no messages delivered during the steady flood" % label)
		return {}
	var hub_usec := Util.sum(_steps)
	var result := {
		"usec": hub_usec / delivered,
		"per_frame": float(delivered) / _steps.size(),
		"fps": _steps.size() / seconds,
		"frames": _steps.size(),
		"delivered": delivered,
		"backlog": int(stats.backlog),
		"batches": batches,
		"per_batch": float(delivered) / maxi(batches, 1),
	}
	print("bench_redis: cost %s: %d messages in %d frames (%.1f fps, %.0f/frame), %.0f us of hub steps, %.3f us/msg, backlog %d%s" % [
		label, delivered, result.frames, result.fps, result.per_frame, hub_usec, result.usec, result.backlog,
		", %d batches (%.1f messages each)" % [batches, result.per_batch] if batch else ""])
	return result


# --- Row 3: latency from PUBLISH to the handler at 60 fps -------------------------------------

func _bench_latency() -> void:
	Engine.max_fps = FPS
	var sub := await _new_subscriber(_on_latency, 1000)
	if sub == null:
		return
	_latency = PackedFloat64Array()
	var pid := _spawn("sh", ["-c",
			'i=0; while [ $i -lt "$4" ]; do redis-cli -h 127.0.0.1 -p "$1" EVAL "$2" 1 "$3" > /dev/null; sleep "$5"; i=$((i+1)); done',
			"sh", str(_port), LUA_PUBLISH_NOW, CHANNEL, str(LATENCY_SAMPLES), LATENCY_PAUSE_SEC])
	var frames_before := Engine.get_process_frames()
	var started := Time.get_ticks_usec()
	var done := await Util.wait_until(get_tree(), func() -> bool: return _latency.size() >= LATENCY_SAMPLES, 60.0)
	var fps := (Engine.get_process_frames() - frames_before) / ((Time.get_ticks_usec() - started) / 1e6)
	_kill(pid)
	sub.free()
	if not done:
		_fail("latency: %d of %d messages arrived" % [_latency.size(), LATENCY_SAMPLES])
		return
	var samples := _latency.slice(LATENCY_WARMUP)
	samples.sort()
	var frame_sec := 1.0 / FPS
	var p50 := Util.percentile(samples, 50)
	var p99 := Util.percentile(samples, 99)
	print("bench_redis: latency: %d samples at %.1f fps: min %.2f ms, p50 %.2f ms, p99 %.2f ms, max %.2f ms" % [
		samples.size(), fps, samples[0] * 1e3, p50 * 1e3, p99 * 1e3, samples[-1] * 1e3])
	var detail := ("%d messages published one at a time from outside (`redis-cli EVAL`: Lua stamps the server's TIME "
			+ "into the payload and PUBLISHes it; ~%s s apart plus process start, so at random phases of the "
			+ "frame); latency = system clock in the handler - that stamp, in frames of 1/%d s; measured at %.1f fps; "
			+ "min %.2f ms, p50 %.2f ms, p99 %.2f ms, max %.2f ms. A message arriving just after a step waits "
			+ "for the next frame's step, so the latency is spread over about one frame") % [
			samples.size(), LATENCY_PAUSE_SEC, FPS, fps, samples[0] * 1e3, p50 * 1e3, p99 * 1e3, samples[-1] * 1e3]
	_row("latency from PUBLISH to the GDScript handler at %d fps, median" % FPS, "frames",
			p50 / frame_sec, 1.0, "target (issue 4: at most one frame)", true, detail)
	_row("latency from PUBLISH to the GDScript handler at %d fps, p99" % FPS, "frames",
			p99 / frame_sec, 1.0, "target (issue 4: at most one frame)", true, detail)


# --- Handlers ---------------------------------------------------------------------------------

func _on_count(_channel: String, _payload_text: String, _pattern: String) -> void:
	_count += 1


func _on_batch(_channels: PackedStringArray, payloads: PackedStringArray, _patterns: PackedStringArray) -> void:
	_batches += 1
	for payload in payloads:
		_count += 1


func _on_latency(_channel: String, payload: String, _pattern: String) -> void:
	var now := Time.get_unix_time_from_system()
	var parts := payload.split(" ")
	if parts.size() == 2:
		_latency.append(now - (parts[0].to_float() + parts[1].to_float() / 1e6))


# --- Redis, processes, frames, statistics -----------------------------------------------------

## A started RedisSubscriber on CHANNEL whose subscription the server confirmed, or null;
## `handler` is connected to message_received, or to messages_received when `batch`.
func _new_subscriber(handler: Callable, per_frame: int, batch := false) -> RedisSubscriber:
	var sub := RedisSubscriber.new()
	sub.autostart = false
	sub.url = "redis://127.0.0.1:%d" % _port
	sub.channels = PackedStringArray([CHANNEL])
	sub.max_messages_per_frame = per_frame
	sub.max_backlog = 20000000
	add_child(sub)
	var confirmed := [false]
	sub.subscribed.connect(func(_name: String) -> void: confirmed[0] = true)
	if batch:
		sub.messages_received.connect(handler)
	else:
		sub.message_received.connect(handler)
	sub.start()
	if not await Util.wait_until(get_tree(), func() -> bool: return confirmed[0], 10.0):
		_fail("RedisSubscriber did not subscribe (state %d)" % sub.state)
		sub.free()
		return null
	return sub


func _start_server() -> bool:
	var probe := TCPServer.new()
	if probe.listen(0, "127.0.0.1") != OK:
		_fail("no free loopback port")
		return false
	_port = probe.get_local_port()
	probe.stop()
	var pid := _spawn("redis-server", ["--port", str(_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", _workdir, "--logfile", _workdir.path_join("redis-server.log"),
			"--client-output-buffer-limit", "pubsub 0 0 0"])
	var ready := await Util.wait_until(get_tree(), _redis_answers, 10.0)
	if pid <= 0 or not ready:
		_fail("redis-server did not start on port %d (see %s)" % [_port, _workdir.path_join("redis-server.log")])
		return false
	return true


## Whether the server answers PING (blocks the main thread for a few ms; setup only).
func _redis_answers() -> bool:
	var output := []
	OS.execute("redis-cli", ["-h", "127.0.0.1", "-p", str(_port), "PING"], output, true)
	return output.size() > 0 and output[0].strip_edges() == "PONG"


func _spawn(program: String, args: Array) -> int:
	var pid := OS.create_process(program, PackedStringArray(args))
	if pid > 0:
		_pids.append(pid)
	else:
		push_error("bench_redis: cannot start %s" % program)
	return pid


func _kill(pid: int) -> void:
	if pid > 0 and OS.is_process_running(pid):
		OS.kill(pid)
	_pids.erase(pid)


func _kill_all() -> void:
	for pid in _pids.duplicate():
		_kill(pid)


func _start_recording(mode: Rec, file := "") -> void:
	_ticks = PackedInt64Array()
	_values = PackedInt64Array()
	_steps = PackedFloat64Array()
	_rec_file = file
	_rec = mode


func _file_size(path: String) -> int:
	var file := FileAccess.open(path, FileAccess.READ)
	return file.get_length() if file != null else 0


## A row whose detail also says how loaded the machine was.
func _row(metric: String, unit: String, ours: float, baseline: float, baseline_name: String,
		lower_is_better: bool, detail: String) -> void:
	Util.row(metric, unit, ours, baseline, baseline_name, lower_is_better, "%s; %s" % [detail, _load])


func _fail(message: String) -> void:
	printerr("bench_redis: FAILED: " + message)
	_failures.append(message)


func _on_time_limit() -> void:
	printerr("bench_redis: FAILED: time limit of %.0f s reached" % LIMIT_SEC)
	_kill_all()
	get_tree().quit(2)


func _list(values: PackedFloat64Array) -> String:
	var parts := PackedStringArray()
	for v in values:
		parts.append("%.0f" % v)
	return ", ".join(parts)
