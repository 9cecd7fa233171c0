## The WsEcho benchmarks of `cargo xtask bench` (issue 6, item 5): WsEcho (the release library)
## against Godot's WebSocketPeer polled from GDScript in _process (poll(),
## get_available_packet_count(), get_packet()), both against the same echo server in the same run:
## `testbed ws-echo` (rust/testbed/src/ws_echo/), a separate process from the release
## testbed binary passed as --loadgen, on a free loopback port.
##
## Rows (all at Engine.max_fps = 60):
## - rtt: round trip in frames, one message in flight, p50 and p99;
## - flood: main-thread microseconds per message delivered to GDScript while the server pushes
##   200 messages of 100 bytes per frame period (binary and text), once with one signal per
##   message and once with the batch signals (binaries_received / messages_received), whose
##   handler loops over the batch doing what the per-message handler does;
## - idle: main-thread microseconds per frame with 100 idle connections;
## - large: the largest message echoed intact with default settings.
##
## Prints one line `BENCH {json}` per row, then quits (exit code 1 if something failed, 2 on
## the time limit). User arguments (after `--`): --loadgen=PATH (the release testbed binary),
## --workdir=DIR; optionally --only=rtt,flood,idle,large.
##
## Main-thread cost: for ours, the hub's step time (AsyncHub.get_last_step_usec(), read every
## frame after the hub stepped; it includes the GDScript signal handlers, which run inside the
## step); for WebSocketPeer, the time of the poller's _process (poll + get_packet loop, see
## GdPeers). Neither includes Godot's own frame work, which both pay alike.
extends Node

const Util := preload("res://bench/bench_util.gd")
const FPS := 60
const WARMUP_FRAMES := 30
## Round trips measured per side, after RTT_WARMUP unmeasured ones.
const RTT_SAMPLES := 300
const RTT_WARMUP := 20
## A round trip not back within this many frames fails the row.
const RTT_TIMEOUT_FRAMES := 300
## Flood: the server pushes FLOOD_PER_TICK messages of FLOOD_BYTES every frame period
## (1/60 s), FLOOD_TICKS times.
const FLOOD_PER_TICK := 200
const FLOOD_BYTES := 100
const FLOOD_TICKS := 180
## Flood runs per side and kind (alternating ours and WebSocketPeer; median reported).
const FLOOD_REPEATS := 2
const IDLE_CONNECTIONS := 100
const IDLE_FRAMES := 300
## Largest-message search: these sizes in order, until the first failure.
const LARGE_SIZES: Array[int] = [1024, 16384, 64512, 65536, 262144, 1048576, 4194304, 16777152, 16777216]
const LARGE_TIMEOUT_SEC := 15.0
## The whole scene's time limit (the server exits by itself a little later).
const LIMIT_SEC := 240.0
const SERVER_MAX_SEC := 270

const BASE_NAME := "WebSocketPeer polled in _process (poll + get_available_packet_count + get_packet)"


## The baseline: WebSocketPeers polled in _process, as the Godot docs show. Runs before the bench
## node (which reads last_process_usec) and after the hub.
class GdPeers extends Node:
	var peers: Array[WebSocketPeer] = []
	var as_text := false
	var received := 0
	var last_packet := PackedByteArray()
	var last_text := ""
	var last_process_usec := 0

	func _process(_delta: float) -> void:
		var start := Time.get_ticks_usec()
		for peer in peers:
			peer.poll()
			while peer.get_available_packet_count() > 0:
				if as_text:
					last_text = peer.get_packet().get_string_from_utf8()
				else:
					last_packet = peer.get_packet()
				received += 1
		last_process_usec = Time.get_ticks_usec() - start

	func open_count() -> int:
		var n := 0
		for peer in peers:
			if peer.get_ready_state() == WebSocketPeer.STATE_OPEN:
				n += 1
		return n

	func close_all() -> void:
		for peer in peers:
			peer.close()
		peers.clear()


## Emitted from GDScript only to time one emit to the flood's handler, for scale.
signal _probe_binary(data: PackedByteArray)
signal _probe_text(text: String)

var _program := ""
var _workdir := ""
var _url := ""
var _server_pid := 0
var _stop_file := ""
var _failures := PackedStringArray()

# Ours: WsEcho nodes of the current measurement and what their handlers saw.
var _ws_nodes: Array[WsEcho] = []
var _received := 0
## Batch signals received (batch flood runs).
var _batches := 0
var _last_binary := PackedByteArray()
var _last_text := ""
var _ws_errors := PackedStringArray()
var _gd: GdPeers

# Per-frame recording, in _process (this node runs after the hub and the poller).
var _recording_ours := false
var _recording_base := false
var _samples := PackedFloat64Array()

# Round-trip driver, in _process.
var _rtt_on := false
var _rtt_ours := true
var _rtt_in_flight := false
var _rtt_sent_frame := 0
var _rtt_seen := 0
var _rtt_done := 0
var _rtt_frames := PackedFloat64Array()
var _rtt_error := ""


func _ready() -> void:
	process_priority = 1 << 20
	# Headless Godot sleeps this long after every frame; at 60 fps pacing is unchanged.
	OS.low_processor_usage_mode_sleep_usec = 0
	Engine.max_fps = FPS
	get_tree().create_timer(LIMIT_SEC, true, false, true).timeout.connect(_on_time_limit)
	_run.call_deferred()


func _process(_delta: float) -> void:
	if _recording_ours:
		_samples.append(AsyncHub.get_last_step_usec())
	elif _recording_base:
		_samples.append(float(_gd.last_process_usec))
	if _rtt_on:
		_rtt_tick()


func _run() -> void:
	var options := Util.options()
	_program = options.get("loadgen", "")
	_workdir = options.get("workdir", "")
	var only: PackedStringArray = options.get("only", "rtt,flood,idle,large").split(",", false)
	if not FileAccess.file_exists(_program) or not DirAccess.dir_exists_absolute(_workdir):
		_fail("needs --loadgen=PATH (the release testbed) and --workdir=DIR; run it with `cargo xtask bench --scene ws`")
	elif await _start_server():
		print("bench_ws: Godot %s, %d CPU cores, AsyncHub.max_step_usec = %d, server %s" % [
			Engine.get_version_info().string, OS.get_processor_count(), AsyncHub.max_step_usec, _url])
		_gd = GdPeers.new()
		_gd.name = "GdPeers"
		add_child(_gd)
		if "rtt" in only:
			await _bench_rtt()
		if "flood" in only:
			await _bench_flood()
		if "idle" in only:
			await _bench_idle()
		if "large" in only:
			await _bench_large()
		_clear()
	await _stop_server()
	if not _failures.is_empty():
		printerr("bench_ws: %d problem(s): %s" % [_failures.size(), "; ".join(_failures)])
	get_tree().quit(1 if not _failures.is_empty() else 0)


# --- Row 1: round trip in frames, one message in flight ----------------------------------------

func _bench_rtt() -> void:
	var ours := await _rtt(true)
	var base := await _rtt(false)
	if ours.is_empty() or base.is_empty():
		return
	var detail := ("%d round trips each after %d unmeasured, one message (16 bytes of text) in flight, "
			+ "%d fps. The next message is sent from the bench node's _process (last in the frame) in the "
			+ "frame its echo arrived; frames = Engine.get_process_frames() when the echo was delivered "
			+ "(ours: message_received during the hub step; WebSocketPeer: its poll in _process) minus "
			+ "that at the send. Ours: %s. WebSocketPeer: %s") % [
			RTT_SAMPLES, RTT_WARMUP, FPS, _spread(ours), _spread(base)]
	Util.row("WebSocket round trip, one message in flight, p50", "frames",
			Util.percentile(ours, 50), Util.percentile(base, 50), BASE_NAME, true, detail)
	Util.row("WebSocket round trip, one message in flight, p99", "frames",
			Util.percentile(ours, 99), Util.percentile(base, 99), BASE_NAME, true, detail)


## The round trips of one side, in frames (empty after a failure).
func _rtt(ours: bool) -> PackedFloat64Array:
	if not await _connect(ours, 1):
		return PackedFloat64Array()
	if ours:
		_ws_nodes[0].message_received.connect(_on_text)
	await Util.frames(get_tree(), WARMUP_FRAMES)
	_rtt_ours = ours
	_rtt_in_flight = false
	_rtt_seen = _delivered(ours)
	_rtt_done = 0
	_rtt_frames = PackedFloat64Array()
	_rtt_error = ""
	_rtt_on = true
	var finished := await Util.wait_until(get_tree(), func() -> bool:
		return _rtt_frames.size() >= RTT_SAMPLES or _rtt_error != "", 60.0)
	_rtt_on = false
	var frames := _rtt_frames
	_clear()
	var label := _label(ours)
	if _rtt_error != "" or not finished:
		_fail("rtt %s: %s" % [label, _rtt_error if _rtt_error != "" else "not done within 60 s (%d samples)" % frames.size()])
		return PackedFloat64Array()
	print("bench_ws: rtt %s: %s" % [label, _spread(frames)])
	return frames


## One frame of the round-trip driver: notes an echo that arrived this frame, sends the next.
func _rtt_tick() -> void:
	var frame := Engine.get_process_frames()
	var delivered := _delivered(_rtt_ours)
	if _rtt_in_flight:
		if delivered > _rtt_seen:
			_rtt_seen = delivered
			_rtt_in_flight = false
			_rtt_done += 1
			if _rtt_done > RTT_WARMUP:
				_rtt_frames.append(float(frame - _rtt_sent_frame))
		elif frame - _rtt_sent_frame > RTT_TIMEOUT_FRAMES:
			_rtt_error = "no echo within %d frames" % RTT_TIMEOUT_FRAMES
			return
	if not _rtt_in_flight and _rtt_frames.size() < RTT_SAMPLES:
		var message := "rtt %012d" % _rtt_done
		var sent := _ws_nodes[0].send_text(message) if _rtt_ours else _gd.peers[0].send_text(message) == OK
		if not sent:
			_rtt_error = "send failed"
			return
		_rtt_in_flight = true
		_rtt_sent_frame = frame


# --- Row 2: main-thread time per message under a flood -------------------------------------------

func _bench_flood() -> void:
	for kind: String in ["binary", "text"]:
		var ours := PackedFloat64Array()
		var batched := PackedFloat64Array()
		var base := PackedFloat64Array()
		var batch_sizes := PackedFloat64Array()
		for i in FLOOD_REPEATS:
			var run := await _flood_cost(true, kind)
			if not run.is_empty():
				ours.append(run.usec)
			run = await _flood_cost(false, kind)
			if not run.is_empty():
				base.append(run.usec)
			run = await _flood_cost(true, kind, true)
			if not run.is_empty():
				batched.append(run.usec)
				batch_sizes.append(run.per_batch)
		if base.is_empty():
			continue
		var emit_usec := await _emit_cost(kind)
		var flood := ("the server pushes %d %s messages of %d bytes every 1/60 s, %d times (%d messages; receive only, "
				+ "no client sends during the flood); sum of per-frame main-thread time from the flood command "
				+ "to the last message, divided by the messages; %d fps") % [
				FLOOD_PER_TICK, kind, FLOOD_BYTES, FLOOD_TICKS, FLOOD_PER_TICK * FLOOD_TICKS, FPS]
		var peer := ("WebSocketPeer: get_packet() stored and counted" if kind == "binary"
				else "WebSocketPeer: get_packet().get_string_from_utf8() stored and counted")
		if not ours.is_empty():
			var handling := ("ours: binary_received(PackedByteArray) handler storing the array and counting; "
					if kind == "binary" else "ours: message_received(String) handler storing the string and counting; ") + peer
			Util.row("main-thread time per %s message delivered to GDScript, flood of %d x %d B per frame, one signal per message"
					% [kind, FLOOD_PER_TICK, FLOOD_BYTES],
					"us/message", Util.percentile(ours, 50), Util.percentile(base, 50), BASE_NAME, true,
					("%s; %s; median of %d runs each (ours: %s; WebSocketPeer: %s). For scale: a GDScript emit of one "
					+ "such argument to the same handler costs %.3f us. The batch signals are the next row.")
					% [flood, handling, FLOOD_REPEATS, _list(ours), _list(base), emit_usec])
		if not batched.is_empty():
			var signal_name := "binaries_received(Array[PackedByteArray])" if kind == "binary" else "messages_received(PackedStringArray)"
			Util.row("main-thread time per %s message delivered to GDScript, flood of %d x %d B per frame, batch signal"
					% [kind, FLOOD_PER_TICK, FLOOD_BYTES],
					"us/message", Util.percentile(batched, 50), Util.percentile(base, 50), BASE_NAME, true,
					("%s; ours: %s handler looping over the batch, storing each %s and counting it (the per-message "
					+ "row's work, per message); %s; %.1f messages per batch on average (%s per run); median of %d "
					+ "runs each (ours: %s; WebSocketPeer: %s, the same runs as the row above)")
					% [flood, signal_name, "array" if kind == "binary" else "string", peer, Util.percentile(batch_sizes, 50),
					_list(batch_sizes), FLOOD_REPEATS, _list(batched), _list(base)])


## Microseconds of one GDScript emit of a 100-byte argument to the flood's handler (best of 3).
func _emit_cost(kind: String) -> float:
	var count := FLOOD_PER_TICK * FLOOD_TICKS
	var data := "x".repeat(FLOOD_BYTES)
	var bytes := data.to_utf8_buffer()
	_probe_text.connect(_on_text)
	_probe_binary.connect(_on_binary)
	var best := INF
	for attempt in 3:
		var start := Time.get_ticks_usec()
		if kind == "text":
			for i in count:
				_probe_text.emit(data)
		else:
			for i in count:
				_probe_binary.emit(bytes)
		best = minf(best, float(Time.get_ticks_usec() - start) / count)
		await get_tree().process_frame
	_probe_text.disconnect(_on_text)
	_probe_binary.disconnect(_on_binary)
	_clear()
	return best


## One flood: {"usec": main-thread microseconds per message, "per_batch": messages per batch
## signal (batch runs)}, or {} after a failure. `batch`: ours through the batch signals.
func _flood_cost(ours: bool, kind: String, batch := false) -> Dictionary:
	if not await _connect(ours, 1):
		return {}
	var text := kind == "text"
	if ours:
		if batch:
			if text:
				_ws_nodes[0].messages_received.connect(_on_texts)
			else:
				_ws_nodes[0].binaries_received.connect(_on_binaries)
		elif text:
			_ws_nodes[0].message_received.connect(_on_text)
		else:
			_ws_nodes[0].binary_received.connect(_on_binary)
	_gd.as_text = text
	await Util.frames(get_tree(), WARMUP_FRAMES)
	var want := FLOOD_PER_TICK * FLOOD_TICKS
	var start := _delivered(ours)
	_batches = 0
	_record(ours)
	var command := "flood %d %d %d %d %s" % [FLOOD_PER_TICK, 1000000 / FPS, FLOOD_TICKS, FLOOD_BYTES, kind]
	var sent := _ws_nodes[0].send_text(command) if ours else _gd.peers[0].send_text(command) == OK
	var done := sent and await Util.wait_until(get_tree(), func() -> bool: return _delivered(ours) - start >= want,
			FLOOD_TICKS / float(FPS) + 20.0)
	var samples := _stop_recording()
	var got := _delivered(ours) - start
	var batches := _batches
	var frames := samples.size()
	_clear()
	var label := "%s %s%s" % [_label(ours), kind, " batch" if batch else ""]
	if not done or got != want:
		_fail("flood %s: %d of %d messages delivered%s" % [label, got, want, "" if sent else " (send failed)"])
		return {}
	var total := Util.sum(samples)
	var per_batch := float(got) / maxi(batches, 1)
	print("bench_ws: flood %s: %d messages, %d frames, %.0f us main thread, %.3f us/message%s" % [
		label, got, frames, total, total / got, ", %d batches (%.1f messages each)" % [batches, per_batch] if batch else ""])
	return {"usec": total / got, "per_batch": per_batch}


# --- Row 3: cost of a frame with idle connections ------------------------------------------------

func _bench_idle() -> void:
	var ours0 := await _idle_frames(true, 0)
	var ours := await _idle_frames(true, IDLE_CONNECTIONS)
	var base0 := await _idle_frames(false, 0)
	var base := await _idle_frames(false, IDLE_CONNECTIONS)
	if ours.is_empty() or base.is_empty():
		return
	Util.row("main-thread cost per frame, %d idle WebSocket connections" % IDLE_CONNECTIONS, "us/frame",
			Util.trimmed_mean(ours), Util.trimmed_mean(base), BASE_NAME + ", one poll per peer per frame", true,
			("10%% trimmed mean of %d frames at %d fps, %d connected WsEcho nodes (default heartbeat_sec, no "
			+ "ping falls in the window) against %d open WebSocketPeers; with 0 connections: ours %.2f, "
			+ "WebSocketPeer %.2f us/frame (flat = the same with %d); medians at %d: ours %.2f, WebSocketPeer %.2f")
			% [IDLE_FRAMES, FPS, IDLE_CONNECTIONS, IDLE_CONNECTIONS, Util.trimmed_mean(ours0), Util.trimmed_mean(base0),
			IDLE_CONNECTIONS, IDLE_CONNECTIONS, Util.percentile(ours, 50), Util.percentile(base, 50)])


func _idle_frames(ours: bool, count: int) -> PackedFloat64Array:
	if count > 0 and not await _connect(ours, count):
		return PackedFloat64Array()
	await Util.frames(get_tree(), WARMUP_FRAMES)
	_record(ours)
	await Util.frames(get_tree(), IDLE_FRAMES)
	var samples := _stop_recording()
	var still := _open_count(ours)
	_clear()
	if still != count:
		_fail("idle %s: %d of %d connections open at the end" % [_label(ours), still, count])
		return PackedFloat64Array()
	print("bench_ws: idle %s, %d connections: trimmed mean %.2f us/frame, median %.2f" % [
		_label(ours), count, Util.trimmed_mean(samples), Util.percentile(samples, 50)])
	return samples


# --- Row 4: largest message echoed intact with default settings ----------------------------------

func _bench_large() -> void:
	var ours := await _largest(true)
	var base := await _largest(false)
	Util.row("largest binary message echoed intact, default settings", "bytes", ours.size, base.size,
			"WebSocketPeer, default buffers (inbound and outbound 64 KiB)", false,
			("sizes tried in order until the first failure: %s; random bytes, one message in flight, compared "
			+ "byte for byte, %.0f s allowed each. Ours (max_message_bytes 16 MiB): %s. WebSocketPeer: %s")
			% [_sizes_text(), LARGE_TIMEOUT_SEC, ours.why, base.why])


## {"size": largest size echoed intact, "why": what stopped the search}.
func _largest(ours: bool) -> Dictionary:
	var best := 0
	var why := "every size passed"
	var crypto := Crypto.new()
	for size in LARGE_SIZES:
		# A fresh connection per size: a failure may leave the connection unusable.
		if not await _connect(ours, 1):
			why = "could not connect"
			break
		if ours:
			_ws_nodes[0].binary_received.connect(_on_binary)
		_gd.as_text = false
		var data := crypto.generate_random_bytes(size)
		var start := _delivered(ours)
		var sent := _ws_nodes[0].send_binary(data) if ours else _gd.peers[0].send(data) == OK
		var arrived := sent and await Util.wait_until(get_tree(), func() -> bool:
				return _delivered(ours) > start or _open_count(ours) == 0, LARGE_TIMEOUT_SEC)
		var echo := _last_binary if ours else _gd.last_packet
		var intact := arrived and _delivered(ours) > start and echo == data
		var errors := "; ".join(_ws_errors)
		_clear()
		if intact:
			best = size
			continue
		if not sent:
			why = "%d bytes: the send was refused" % size
		elif not arrived:
			why = "%d bytes: no echo within %.0f s" % [size, LARGE_TIMEOUT_SEC]
		elif _delivered(ours) <= start:
			why = "%d bytes: the connection closed without an echo" % size
		else:
			why = "%d bytes: the echo differed (%d bytes back)" % [size, echo.size()]
		if errors != "":
			why += " (error: %s)" % errors
		break
	print("bench_ws: largest %s: %d bytes; %s" % [_label(ours), best, why])
	return {"size": best, "why": "%d bytes intact; stopped: %s" % [best, why]}


func _sizes_text() -> String:
	var parts := PackedStringArray()
	for size in LARGE_SIZES:
		parts.append(str(size))
	return ", ".join(parts)


# --- Connections -----------------------------------------------------------------------------

## Opens `count` connections of one side to the server and waits until all are open.
func _connect(ours: bool, count: int) -> bool:
	_clear()
	for i in count:
		if ours:
			var ws := WsEcho.new()
			ws.autostart = false
			ws.url = _url
			ws.error.connect(_on_ws_error)
			add_child(ws)
			_ws_nodes.append(ws)
			ws.start()
		else:
			var peer := WebSocketPeer.new()
			var err := peer.connect_to_url(_url)
			if err != OK:
				_fail("WebSocketPeer.connect_to_url: error %d" % err)
				_clear()
				return false
			_gd.peers.append(peer)
	var open := await Util.wait_until(get_tree(), func() -> bool: return _open_count(ours) == count, 30.0)
	if not open:
		_fail("%s: %d of %d connections open after 30 s (%s)" % [
			_label(ours), _open_count(ours), count, "; ".join(_ws_errors)])
		_clear()
	return open


func _open_count(ours: bool) -> int:
	if not ours:
		return _gd.open_count()
	var n := 0
	for ws in _ws_nodes:
		if ws.state == WsEcho.CONNECTED:
			n += 1
	return n


## Messages delivered to GDScript so far on one side.
func _delivered(ours: bool) -> int:
	return _received if ours else _gd.received


## Closes every connection of both sides and resets the counters.
func _clear() -> void:
	for ws in _ws_nodes:
		if is_instance_valid(ws):
			ws.free()
	_ws_nodes.clear()
	_received = 0
	_last_binary = PackedByteArray()
	_last_text = ""
	_ws_errors.clear()
	if _gd:
		_gd.close_all()
		_gd.received = 0
		_gd.last_packet = PackedByteArray()
		_gd.last_text = ""


func _on_text(text: String) -> void:
	_last_text = text
	_received += 1


func _on_binary(data: PackedByteArray) -> void:
	_last_binary = data
	_received += 1


func _on_texts(texts: PackedStringArray) -> void:
	_batches += 1
	for text in texts:
		_last_text = text
		_received += 1


func _on_binaries(data: Array[PackedByteArray]) -> void:
	_batches += 1
	for bytes in data:
		_last_binary = bytes
		_received += 1


func _on_ws_error(message: String) -> void:
	_ws_errors.append(message)


# --- The echo server -------------------------------------------------------------------------

## Starts `testbed ws-echo` and waits for its port.
func _start_server() -> bool:
	var port_file := _workdir.path_join("ws-echo.port")
	_stop_file = _workdir.path_join("ws-echo.stop")
	if FileAccess.file_exists(_stop_file):
		DirAccess.remove_absolute(_stop_file)
	var argv := PackedStringArray(["ws-echo", "--port-file", port_file, "--stop-file", _stop_file,
			"--max-sec", str(SERVER_MAX_SEC)])
	var started := await Util.start_port_server(get_tree(), _program, argv, port_file, 10.0)
	_server_pid = started[0]
	if _server_pid <= 0:
		_fail("cannot start %s %s" % [_program, " ".join(argv)])
		return false
	var port := started[1]
	if port <= 0:
		_fail("the echo server (%s ws-echo) did not report its port within 10 s" % _program)
		return false
	_url = "ws://127.0.0.1:%d/" % port
	return true


## Asks the server to exit; kills it if it has not within 3 s.
func _stop_server() -> void:
	if _server_pid <= 0:
		return
	var file := FileAccess.open(_stop_file, FileAccess.WRITE)
	if file:
		file.close()
	var deadline := Time.get_ticks_msec() + 3000
	while OS.is_process_running(_server_pid) and Time.get_ticks_msec() < deadline:
		await get_tree().process_frame
	if OS.is_process_running(_server_pid):
		OS.kill(_server_pid)
	_server_pid = 0


# --- Frames, recording, statistics, rows ----------------------------------------------------

func _record(ours: bool) -> void:
	_samples = PackedFloat64Array()
	_recording_ours = ours
	_recording_base = not ours


func _stop_recording() -> PackedFloat64Array:
	_recording_ours = false
	_recording_base = false
	return _samples


func _label(ours: bool) -> String:
	return "WsEcho" if ours else "WebSocketPeer"


func _fail(message: String) -> void:
	printerr("bench_ws: FAILED: " + message)
	_failures.append(message)


func _on_time_limit() -> void:
	printerr("bench_ws: FAILED: time limit of %.0f s reached" % LIMIT_SEC)
	if _server_pid > 0:
		OS.kill(_server_pid)
	get_tree().quit(2)


## How round trips spread: p50, p99, max, mean and a histogram.
func _spread(frames: PackedFloat64Array) -> String:
	var histogram := {}
	for f in frames:
		histogram[int(f)] = histogram.get(int(f), 0) + 1
	var keys := histogram.keys()
	keys.sort()
	var parts := PackedStringArray()
	for k: int in keys:
		parts.append("%d frames x%d" % [k, histogram[k]])
	return "p50 %.0f, p99 %.0f, max %.0f, mean %.2f (%s)" % [
		Util.percentile(frames, 50), Util.percentile(frames, 99), Util.percentile(frames, 100),
		Util.sum(frames) / maxi(frames.size(), 1), ", ".join(parts)]


func _list(values: PackedFloat64Array) -> String:
	var parts := PackedStringArray()
	for v in values:
		parts.append("%.3f" % v)
	return ", ".join(parts)
