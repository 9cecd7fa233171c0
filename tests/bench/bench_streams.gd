## The RedisStreamConsumer benchmarks of `cargo xtask bench` (issue 18, item 5), every baseline
## measured in this run against a redis-server the scene starts on a free loopback port:
##
## 1. entries/s read through a consumer group into a GDScript handler that only counts (one
##    field of 100 bytes, uncapped fps, COUNT 100 per read, acknowledged), from a backlog of
##    ENTRIES entries that `redis-benchmark` added before; against a plain Rust consumer on the
##    same `redis` crate (`testbed stream-consumer`: XREADGROUP, fields as Strings, XACK per
##    batch; it times itself) and `redis-cli` reading the group (XREADGROUP COUNT 100 commands
##    from a file, output to /dev/null; it acknowledges nothing: its figure is a bound). Each
##    reader has a group of its own on the same stream, so each reads every entry; one at a time.
## 2. main-thread CPU per entry at 60 fps under a steady producer (`redis-cli --pipe` batches of
##    XADD): per-entry signal and batch signal, less the consumer's own idle frames, against the
##    floor of emitting the same per-entry signal (a String and a Dictionary) from GDScript.
##
## Prints one `BENCH {json}` line per row; quits with 0, or 1 when a row could not be measured.
## User arguments (after `--`): --loadgen=PATH (the release testbed), --workdir=DIR, --only=rate,cost.
extends Node

## The floor of row 2: the signature of RedisStreamConsumer.entry_received.
signal gd_entry(id: String, fields: Dictionary)

const Util := preload("res://bench/bench_util.gd")
const STREAM := "bench"
const PAYLOAD_BYTES := 100
const ENTRIES := 200000
const READ_COUNT := 100
const FPS := 60
const STEADY_BATCH := 500
const STEADY_PAUSE_SEC := "0.01"
const WARMUP_FRAMES := 60
const IDLE_FRAMES := 60
const COST_FRAMES := 300
const LIMIT_SEC := 300.0

var _workdir := ""
var _testbed := ""
var _port := 0
var _processes := Util.Processes.new("bench_streams")
var _failures := PackedStringArray()
var _payload := ""
var _load := ""
var _runs := 0
var _count := 0
var _first_usec := 0
var _last_usec := 0
var _target := 0
var _batches := 0
var _phase: Util.Phase


func _ready() -> void:
	process_priority = 1 << 20
	OS.low_processor_usage_mode_sleep_usec = 0
	get_tree().create_timer(LIMIT_SEC, true, false, true).timeout.connect(_on_time_limit)
	_payload = "x".repeat(PAYLOAD_BYTES)
	_phase = Util.Phase.new(self)
	_run.call_deferred()


func _exit_tree() -> void:
	_processes.kill_all()


func _run() -> void:
	var options := Util.options()
	_workdir = options.get("workdir", OS.get_temp_dir().path_join("bench_streams_%d" % OS.get_process_id()))
	_testbed = options.get("loadgen", "")
	DirAccess.make_dir_recursive_absolute(_workdir)
	var only: PackedStringArray = options.get("only", "rate,cost").split(",", false)
	var loadavg := FileAccess.open("/proc/loadavg", FileAccess.READ)
	if loadavg != null:
		_load = "load average %s at start" % " ".join(loadavg.get_line().split(" ").slice(0, 3))
	if "rate" in only and not FileAccess.file_exists(_testbed):
		_fail("the rate row needs --loadgen=PATH (the release testbed); run it with `cargo xtask bench --scene streams`")
	elif await _start_server():
		print("bench_streams: Godot %s, %d CPU cores, redis-server on 127.0.0.1:%d, %s" % [
			Engine.get_version_info().string, OS.get_processor_count(), _port, _load])
		if "rate" in only:
			await _bench_rate()
		if "cost" in only:
			await _bench_cost()
	_processes.kill_all()
	if not _failures.is_empty():
		printerr("bench_streams: %d problem(s): %s" % [_failures.size(), "; ".join(_failures)])
	get_tree().quit(1 if not _failures.is_empty() else 0)


# --- S1: entries per second, uncapped -------------------------------------------------------------

func _bench_rate() -> void:
	Engine.max_fps = 0
	var added := _cli(["XGROUP", "CREATE", STREAM, "warm", "0", "MKSTREAM"])
	if added != "OK":
		_fail("XGROUP CREATE answered %s" % added)
		return
	var filler := _processes.start_redis_benchmark(_workdir.path_join("fill.txt"), ["-h", "127.0.0.1", "-p", str(_port),
			"-n", str(ENTRIES), "-P", "64", "XADD", STREAM, "*", "payload", _payload])
	await _processes.redis_benchmark_rate(get_tree(), filler)
	var length := _cli(["XLEN", STREAM]).to_int()
	if length != ENTRIES:
		_fail("the backlog has %d entries, %d expected" % [length, ENTRIES])
		return
	var ours := await _rate_ours("ours")
	var rust := await _rate_rust("rust")
	var cli := await _rate_cli("cli")
	if ours <= 0.0 or rust <= 0.0 or cli <= 0.0:
		return
	Engine.max_fps = FPS
	var method := ("a backlog of %d entries (one %d-byte field) added by redis-benchmark before; each reader has its "
			+ "own consumer group (from 0) on the same stream and reads every entry, COUNT %d per read; one reader at "
			+ "a time; ours: RedisStreamConsumer (batch_size %d, auto_ack) to entry_received(id, fields) whose "
			+ "handler counts, from the first entry handled to the last (Engine.max_fps = 0, AsyncHub.max_step_usec "
			+ "= %d); %d CPU cores shared with redis-server") % [ENTRIES, PAYLOAD_BYTES, READ_COUNT, READ_COUNT,
			AsyncHub.max_step_usec, OS.get_processor_count()]
	var metric := "Redis stream entries/s read through a consumer group into a GDScript handler (count only), acknowledged"
	_row(metric, "entries/s", ours, rust, "a plain Rust consumer on the same redis crate (testbed stream-consumer)", false,
			"%s. Rust: XREADGROUP into the crate's StreamReadReply, fields taken as Strings, XACK per batch, timed by itself" % method)
	_row(metric, "entries/s", ours, cli, "redis-cli reading the group (no XACK: a bound)", false,
			("%s. redis-cli: XREADGROUP commands from a file, output to /dev/null, from the first byte it wrote "
			+ "(/proc/<pid>/io, polled at 1 kHz) to its exit; it acknowledges nothing") % method)


func _rate_ours(group: String) -> float:
	_cli(["XGROUP", "CREATE", STREAM, group, "0"])
	var consumer := RedisStreamConsumer.new()
	consumer.autostart = false
	consumer.url = "redis://127.0.0.1:%d" % _port
	consumer.stream = STREAM
	consumer.group = group
	consumer.create_group = false
	consumer.batch_size = READ_COUNT
	consumer.entry_received.connect(_on_entry)
	add_child(consumer)
	_count = 0
	_target = ENTRIES
	consumer.start()
	var done := await Util.wait_until(get_tree(), func() -> bool: return _count >= ENTRIES, 120.0)
	var acked := await Util.wait_until(get_tree(), func() -> bool: return consumer.get_stats().acked >= ENTRIES, 20.0)
	var stats := consumer.get_stats()
	consumer.free()
	if not done or not acked:
		_fail("rate ours: %d of %d entries handled (stats %s)" % [_count, ENTRIES, stats])
		return 0.0
	var rate := (ENTRIES - 1) / ((_last_usec - _first_usec) / 1e6)
	print("bench_streams: rate ours: %d entries, %.0f entries/s" % [ENTRIES, rate])
	return rate


func _rate_rust(group: String) -> float:
	_cli(["XGROUP", "CREATE", STREAM, group, "0"])
	var out := _workdir.path_join("stream-consumer.json")
	var pid := _processes.spawn(_testbed, ["stream-consumer", "--url", "redis://127.0.0.1:%d" % _port, "--stream", STREAM,
			"--group", group, "--entries", str(ENTRIES), "--count", str(READ_COUNT), "--out", out, "--max-sec", "120"])
	var reported := await Util.wait_until(get_tree(), func() -> bool: return FileAccess.file_exists(out), 125.0)
	_processes.kill(pid)
	var report: Variant = JSON.parse_string(FileAccess.get_file_as_string(out)) if reported else null
	if not report is Dictionary or not report.get("ok", false):
		_fail("rate Rust consumer: %s" % (report if report != null else "no report"))
		return 0.0
	print("bench_streams: rate Rust consumer: %.0f entries/s" % report.rate)
	return float(report.rate)


func _rate_cli(group: String) -> float:
	_cli(["XGROUP", "CREATE", STREAM, group, "0"])
	var commands := _workdir.path_join("xreadgroup.txt")
	var file := FileAccess.open(commands, FileAccess.WRITE)
	file.store_string(("XREADGROUP GROUP %s cli COUNT %d STREAMS %s >\n" % [group, READ_COUNT, STREAM]).repeat(ENTRIES / READ_COUNT))
	file.close()
	Engine.max_fps = 1000
	var pid := _processes.spawn("sh", ["-c", 'exec redis-cli -h 127.0.0.1 -p "$1" < "$2" > /dev/null', "sh", str(_port), commands])
	var io := FileAccess.open("/proc/%d/io" % pid, FileAccess.READ) if pid > 0 else null
	var first := 0
	while pid > 0 and OS.is_process_running(pid) and io != null:
		if first == 0 and _written(io) > 0:
			first = Time.get_ticks_usec()
		await get_tree().process_frame
	var last := Time.get_ticks_usec()
	Engine.max_fps = 0
	var pending := _cli(["XINFO", "GROUPS", STREAM])
	if first == 0:
		_fail("rate redis-cli: nothing read (%s)" % pending)
		return 0.0
	var rate := ENTRIES / ((last - first) / 1e6)
	print("bench_streams: rate redis-cli: %.0f entries/s" % rate)
	return rate


func _written(io: FileAccess) -> int:
	io.flush()
	io.seek(0)
	while not io.eof_reached():
		var line := io.get_line()
		if line.begins_with("wchar:"):
			return line.get_slice(":", 1).strip_edges().to_int()
	return -1


# --- S2: main-thread CPU per entry at 60 fps --------------------------------------------------------

func _bench_cost() -> void:
	Engine.max_fps = FPS
	var ours := await _steady_cost(false)
	if ours.is_empty():
		return
	var floor_ := await _emit_floor(maxi(int(roundf(ours.per_frame)), 1))
	var method := ("main-thread CPU of %d frames' process phases (the hub's step builds each entry's Dictionary and "
			+ "emits; the I/O worker reads the socket, parses the reply and makes the Strings; acknowledgements go back "
			+ "in one XACK per batch), less the consumer's own idle frames before the producer started (%d frames) "
			+ "times as many, over the %d entries delivered (%.0f per frame, %.1f fps). Whole-process CPU per entry %.3f "
			+ "us; fixed per frame %.1f us of main-thread CPU; producer: batches of %d XADD (one %d-byte field) via "
			+ "`redis-cli --pipe` every ~%s s")
	var floor_detail := "floor: entry_received's signature (a String and a 1-field Dictionary) emitted from GDScript to the same handler"
	_row("main-thread CPU per Redis stream entry delivered to a GDScript handler at %d fps, steady producer" % FPS,
			"us/entry", ours.main, floor_, "floor: the same signal emitted from GDScript to the same handler", true,
			"ours: entry_received(id, fields) to a handler that counts; %s; %s" % [method % [ours.frames, IDLE_FRAMES,
			ours.delivered, ours.per_frame, ours.fps, ours.process, ours.fixed_main, STEADY_BATCH, PAYLOAD_BYTES,
			STEADY_PAUSE_SEC], floor_detail])
	var batched := await _steady_cost(true)
	if batched.is_empty():
		return
	_row("main-thread CPU per Redis stream entry delivered to a GDScript handler at %d fps, steady producer, batch signal" % FPS,
			"us/entry", batched.main, floor_, "floor: the per-entry signal emitted from GDScript to the per-entry handler", true,
			"ours: entries_received(ids, fields) whose handler loops over the batch counting each entry, %d batches; %s; %s" % [
			batched.batches, method % [batched.frames, IDLE_FRAMES, batched.delivered, batched.per_frame, batched.fps,
			batched.process, batched.fixed_main, STEADY_BATCH, PAYLOAD_BYTES, STEADY_PAUSE_SEC], floor_detail])


func _steady_cost(batch: bool) -> Dictionary:
	_runs += 1
	var stream := "%s-steady-%d" % [STREAM, _runs]
	var consumer := RedisStreamConsumer.new()
	consumer.autostart = false
	consumer.url = "redis://127.0.0.1:%d" % _port
	consumer.stream = stream
	consumer.group = "cost"
	if batch:
		consumer.entries_received.connect(_on_batch)
	else:
		consumer.entry_received.connect(_on_entry)
	add_child(consumer)
	consumer.start()
	if not await Util.wait_until(get_tree(), func() -> bool: return consumer.state == RedisStreamConsumer.CONNECTED, 10.0):
		_fail("cost: the consumer did not connect")
		consumer.free()
		return {}
	await Util.frames(get_tree(), WARMUP_FRAMES)
	var idle := await Util.measure(get_tree(), _phase, IDLE_FRAMES, AsyncHub.get_last_step_usec)
	var file_name := _workdir.path_join("xadd-%d.resp" % _runs)
	var stop := _workdir.path_join("xadd-%d.stop" % _runs)
	var file := FileAccess.open(file_name, FileAccess.WRITE)
	var command := "*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$7\r\npayload\r\n$%d\r\n%s\r\n" % [stream.length(), stream, _payload.length(), _payload]
	file.store_string(command.repeat(STEADY_BATCH))
	file.close()
	var pid := _processes.spawn("sh", ["-c",
			'while [ ! -e "$3" ]; do redis-cli -h 127.0.0.1 -p "$1" --pipe < "$2" > /dev/null 2>&1; sleep "$4"; done',
			"sh", str(_port), file_name, stop, STEADY_PAUSE_SEC])
	_count = 0
	_target = 1 << 62
	var flowing := await Util.wait_until(get_tree(), func() -> bool: return _count > 0, 10.0)
	await Util.frames(get_tree(), WARMUP_FRAMES)
	var busy := Util.Meter.new(get_tree(), _phase, AsyncHub.get_last_step_usec)
	busy.start()
	await get_tree().process_frame
	var before := _count
	_batches = 0
	await Util.frames(get_tree(), COST_FRAMES)
	await busy.stop()
	var delivered := _count - before
	var batches := _batches
	FileAccess.open(stop, FileAccess.WRITE).close()
	await Util.wait_until(get_tree(), func() -> bool: return not OS.is_process_running(pid), 5.0)
	_processes.kill(pid)
	consumer.free()
	if not flowing or delivered <= 0:
		_fail("cost: no entries delivered during the steady producer")
		return {}
	var result := Util.marginal(busy, idle, delivered)
	result.merge({"per_frame": float(delivered) / busy.frames(), "fps": busy.fps(), "frames": busy.frames(),
			"delivered": delivered, "batches": batches})
	print("bench_streams: cost %s: %d entries in %d frames (%.1f fps), main-thread CPU %.3f us/entry (fixed %.1f us/frame), process %.3f" % [
		"batch" if batch else "ours", delivered, result.frames, result.fps, result.main, result.fixed_main, result.process])
	return result


func _emit_floor(per_frame: int) -> float:
	var cpu := Util.Cpu.new()
	var readings := cpu.pair_usec()
	gd_entry.connect(_on_entry)
	_target = 1 << 62
	await Util.frames(get_tree(), WARMUP_FRAMES)
	var total := 0.0
	for frame in COST_FRAMES:
		var start := cpu.main_usec()
		for i in per_frame:
			gd_entry.emit("1700000000000-%d" % i, {"payload": _payload})
		total += cpu.main_usec() - start - readings
		await get_tree().process_frame
	gd_entry.disconnect(_on_entry)
	return total / (COST_FRAMES * per_frame)


func _on_entry(_id: String, _fields: Dictionary) -> void:
	_count += 1
	if _count == 1:
		_first_usec = Time.get_ticks_usec()
	if _count == _target:
		_last_usec = Time.get_ticks_usec()


func _on_batch(ids: PackedStringArray, _fields: Array[Dictionary]) -> void:
	_batches += 1
	for id in ids:
		_count += 1


# --- processes ------------------------------------------------------------------------------------

func _start_server() -> bool:
	var probe := TCPServer.new()
	if probe.listen(0, "127.0.0.1") != OK:
		_fail("no free loopback port")
		return false
	_port = probe.get_local_port()
	probe.stop()
	var pid := _processes.spawn("redis-server", ["--port", str(_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", _workdir, "--logfile", _workdir.path_join("redis-server.log")])
	if pid <= 0 or not await Util.wait_until(get_tree(), func() -> bool: return _cli(["PING"]) == "PONG", 10.0):
		_fail("redis-server did not start on port %d" % _port)
		return false
	return true


## Runs one redis-cli command (blocks the main thread for a few ms; setup only); its first line.
func _cli(args: Array) -> String:
	var output := []
	OS.execute("redis-cli", PackedStringArray(["-h", "127.0.0.1", "-p", str(_port)] + args), output, true)
	return output[0].strip_edges().get_slice("\n", 0) if output.size() > 0 else ""


func _row(metric: String, unit: String, ours: float, baseline: float, baseline_name: String,
		lower_is_better: bool, detail: String) -> void:
	Util.row(metric, unit, ours, baseline, baseline_name, lower_is_better, "%s; %s" % [detail, _load])


func _fail(message: String) -> void:
	printerr("bench_streams: FAILED: " + message)
	_failures.append(message)


func _on_time_limit() -> void:
	printerr("bench_streams: FAILED: time limit of %.0f s reached" % LIMIT_SEC)
	_processes.kill_all()
	get_tree().quit(2)
