## The soak scene of `cargo xtask soak` (rust/xtask/src/commands/soak/): every node at once
## against real services while the harness injects faults from outside (kills and restarts
## redis-server, the WebSocket server and the icecast source; floods, bursts, slowloris and
## garbage on the spawner's port). This scene adds the main-thread stalls itself.
##
## Environment (set by xtask): ASYNC_NET_SOAK_DIR (exchange folder), ASYNC_NET_SOAK_REDIS_PORT,
## ASYNC_NET_SOAK_CHANNEL, ASYNC_NET_SOAK_WS_URL, ASYNC_NET_SOAK_RADIO_URL,
## ASYNC_NET_SOAK_TCP_PORT, ASYNC_NET_SOAK_STALL_EVERY_SEC.
##
## Files in the exchange folder (the harness writes the first ones, this scene the others):
## - `ready.json` ({pid}) once every node is connected;
## - `finish`: stop sending, wait until everything reconnected and every echo is back, write
##   `report.json` and `spawned.txt` (the names of the nodes the spawner made), then wait for
##   `quit` (the harness samples descriptors and memory in between) and quit.
##
## Frame time, not wall time: the span of each frame's `_process` calls, from a node that runs
## first to this node, which runs last (the hub step, RadioStream's audio push, every signal
## handler), and the hub's own step time of the frame (AsyncHub.get_last_step_usec(), which also
## counts the end-of-frame flush step after every `_process`). A frame is long when either
## passes 50 ms. The injected 250 ms stalls happen after the measurement and are in neither.
## AsyncHub.get_slowest_task() names the task that held the main thread longest in one go.
##
## WebSocket: the scene sends numbered messages every frame, whatever the server's state (the
## harness kills it mid-flight). It reports the numbers that never came back and the ones it
## queued while WsEcho was not connected (the queue's promise: those all come back, in order);
## the harness matches them against what the server recorded. RadioStream: the time of every
## `underrun`, which the harness matches against the source's restarts.
extends Node

const Env := preload("res://runner/env.gd")

const LONG_FRAME_USEC := 50_000
const STALL_MSEC := 250
## WebSocket messages sent per frame while sending.
const WS_PER_FRAME := 4
## How long the end of the run may take to reconnect and drain.
const FINISH_LIMIT_MSEC := 30_000
const POLL_EVERY_FRAMES := 5

var dir := ""
var sub: RedisSubscriber
var ws: WsEcho
var radio: RadioStream
var server: TcpSpawnerServer
var spawn_parent: Node
var rng := RandomNumberGenerator.new()
var stall_every_sec := 3.0

var frame_start_usec := 0
var frames := 0
var long_frames := 0
var max_frame_usec := 0
var max_step_usec := 0.0
## The longest single task poll seen, and whose (AsyncHub.get_slowest_task()).
var slowest_task := {}
var frame_usec_total := 0
var stalls := 0
var started := false
var finishing := false

var ws_next_seq := 0
var ws_expected_seq := 0
var ws_out_of_order := 0
var ws_refused := 0
## Numbers that were skipped over when a later one came back.
var ws_missing := PackedInt64Array()
## Numbers sent while WsEcho was not CONNECTED.
var ws_queued_down := PackedInt64Array()
## When each RadioStream `underrun` was emitted, in milliseconds since the Unix epoch.
var radio_underruns := PackedInt64Array()
## The radio's last seconds, sampled every 100 ms: [unix ms, bytes_received, buffered_sec,
## frames_pushed]; copied into `radio_underrun_context` at each underrun, so the report shows
## whether the network stopped bringing audio or the node stopped playing what it had.
var radio_samples: Array = []
var radio_underrun_context: Array = []
var next_radio_sample_msec := 0
var redis_received := PackedInt64Array()
var redis_bad := 0
var spawned_names := PackedStringArray()
var node_errors := {}
var error_samples := PackedStringArray()
var last_counts := {}
var http: Node = preload("res://soak/soak_http.gd").new()


## Runs first each frame: remembers when this frame's _process calls began.
class FrameStart extends Node:
	var soak: Node

	func _process(_delta: float) -> void:
		soak.frame_start_usec = Time.get_ticks_usec()


func _ready() -> void:
	process_mode = Node.PROCESS_MODE_ALWAYS
	process_priority = 2147483647
	Engine.max_fps = 60
	rng.randomize()
	dir = Env.value(Env.SOAK_DIR)
	if dir.is_empty():
		printerr("soak: run through `cargo xtask soak`")
		get_tree().quit(2)
		return
	stall_every_sec = maxf(0.5, Env.value(Env.SOAK_STALL_EVERY_SEC).to_float())
	var start := FrameStart.new()
	start.soak = self
	start.process_priority = -2147483648
	add_child(start)
	spawn_parent = Node.new()
	spawn_parent.name = "Spawned"
	add_child(spawn_parent)
	_make_nodes()


func _make_nodes() -> void:
	sub = RedisSubscriber.new()
	sub.url = "redis://127.0.0.1:%s" % Env.value(Env.SOAK_REDIS_PORT)
	sub.channels = PackedStringArray([Env.value(Env.SOAK_CHANNEL)])
	sub.reconnect_min_sec = 0.1
	sub.reconnect_max_sec = 1.0
	sub.message_received.connect(_on_redis_message)
	_watch_errors(sub, "redis")
	add_child(sub)

	ws = WsEcho.new()
	ws.url = Env.value(Env.SOAK_WS_URL)
	ws.reconnect_min_sec = 0.1
	ws.reconnect_max_sec = 1.0
	ws.max_queued_messages = 100_000
	ws.message_received.connect(_on_ws_message)
	_watch_errors(ws, "ws")
	add_child(ws)

	var player := AudioStreamPlayer.new()
	add_child(player)
	radio = RadioStream.new()
	radio.url = Env.value(Env.SOAK_RADIO_URL)
	radio.reconnect_min_sec = 0.1
	radio.reconnect_max_sec = 1.0
	radio.underrun.connect(_on_radio_underrun)
	_watch_errors(radio, "radio")
	player.add_child(radio)
	radio.play()

	server = TcpSpawnerServer.new()
	server.port = Env.port(Env.SOAK_TCP_PORT)
	server.max_clients = 1500
	server.spawn_parent = spawn_parent.get_path()
	server.spawned.connect(_on_spawned)
	_watch_errors(server, "tcp")
	add_child(server)
	add_child(http)


func _watch_errors(node: Node, label: String) -> void:
	node_errors[label] = 0
	node.error.connect(func(message: String) -> void:
		node_errors[label] += 1
		if error_samples.size() < 40:
			error_samples.append("%s: %s" % [label, message]))


func _process(_delta: float) -> void:
	if frame_start_usec > 0:
		_measure_frame(Time.get_ticks_usec() - frame_start_usec)
	if not finishing and Engine.get_process_frames() % POLL_EVERY_FRAMES == 0 and FileAccess.file_exists(dir.path_join("quit")):
		get_tree().quit(1)
		return
	if not started:
		if _all_connected() and http.warmed_up():
			started = true
			_write(dir.path_join("ready.json"), JSON.stringify({"pid": OS.get_process_id()}))
		elif Engine.get_process_frames() % 120 == 0:
			print("soak: waiting for connections: redis %d, ws %d, radio %d, tcp %d, http warmed up %s" % [sub.state, ws.state, radio.state, server.state, http.warmed_up()])
		return
	if Engine.get_process_frames() % POLL_EVERY_FRAMES == 0 and not finishing:
		_poll_commands()
	_send_ws()
	_sample_radio()
	# The injected stall: after this frame's measurement, so it is not counted as node time.
	if not finishing and rng.randf() < _delta / stall_every_sec:
		stalls += 1
		OS.delay_msec(STALL_MSEC)


func _measure_frame(usec: int) -> void:
	if not started:
		return
	frames += 1
	frame_usec_total += usec
	var step := AsyncHub.get_last_step_usec()
	max_frame_usec = maxi(max_frame_usec, usec)
	max_step_usec = maxf(max_step_usec, step)
	var slowest := AsyncHub.get_slowest_task()
	if slowest.get("usec", 0.0) > slowest_task.get("usec", 0.0):
		slowest_task = slowest
	var work := _frame_work()
	if usec > LONG_FRAME_USEC or step > LONG_FRAME_USEC:
		long_frames += 1
		print("soak: a long frame: _process calls %.1f ms, hub steps %.1f ms, slowest task %s; since the last frame: %s" % [usec / 1000.0, step / 1000.0, slowest, work])


## What each node did since the last call (counters' growth), to tell which one a long frame
## belongs to.
func _frame_work() -> Dictionary:
	var now := {
		"tcp_lines": server.get_stats().lines,
		"tcp_accepted": server.get_stats().accepted,
		"tcp_clients": server.get_stats().clients,
		"tcp_spawned": spawned_names.size(),
		"ws_received": ws_expected_seq,
		"redis_received": redis_received.size(),
		"radio_frames": radio.get_stats().get("frames_pushed", 0),
	}
	var grown := {}
	for key in now:
		grown[key] = now[key] - last_counts.get(key, 0)
	last_counts = now
	return grown


func _all_connected() -> bool:
	return sub.state == RedisSubscriber.CONNECTED and ws.state == WsEcho.CONNECTED \
			and radio.state == RadioStream.CONNECTED and server.state == TcpSpawnerServer.LISTENING


# --- WebSocket: sequence numbers ---------------------------------------------------------------

func _send_ws() -> void:
	if finishing:
		return
	var down := ws.state != WsEcho.CONNECTED
	for i in WS_PER_FRAME:
		if ws.send_text("seq:%d" % ws_next_seq):
			if down:
				ws_queued_down.append(ws_next_seq)
			ws_next_seq += 1
		else:
			ws_refused += 1


func _on_ws_message(text: String) -> void:
	var seq := text.trim_prefix("seq:").to_int()
	if seq < ws_expected_seq:
		ws_out_of_order += 1
		if error_samples.size() < 40:
			error_samples.append("ws: expected seq %d, got %s" % [ws_expected_seq, text])
		return
	for missing in range(ws_expected_seq, seq):
		ws_missing.append(missing)
	ws_expected_seq = seq + 1


func _poll_commands() -> void:
	if FileAccess.file_exists(dir.path_join("finish")):
		_finish()


# --- RadioStream ---------------------------------------------------------------------------

func _sample_radio() -> void:
	if Time.get_ticks_msec() < next_radio_sample_msec:
		return
	next_radio_sample_msec = Time.get_ticks_msec() + 100
	var stats := radio.get_stats()
	radio_samples.append([int(Time.get_unix_time_from_system() * 1000.0), stats.bytes_received,
			snappedf(stats.buffered_sec, 0.01), stats.frames_pushed])
	if radio_samples.size() > 50:
		radio_samples.pop_front()


func _on_radio_underrun() -> void:
	var now := int(Time.get_unix_time_from_system() * 1000.0)
	radio_underruns.append(now)
	if radio_underrun_context.size() < 20:
		radio_underrun_context.append({"at": now, "last_5_s": radio_samples.duplicate()})


# --- Redis and the spawner ------------------------------------------------------------------

func _on_redis_message(_channel: String, payload: String, _pattern: String) -> void:
	if payload.is_valid_int():
		redis_received.append(payload.to_int())
	else:
		redis_bad += 1


func _on_spawned(node: Node, _peer: String) -> void:
	spawned_names.append(node.name)
	node.queue_free()


# --- the end ----------------------------------------------------------------------------------

func _finish() -> void:
	finishing = true
	var deadline := Time.get_ticks_msec() + FINISH_LIMIT_MSEC
	while Time.get_ticks_msec() < deadline:
		if _all_connected() and ws_expected_seq >= ws_next_seq and server.get_stats().clients == 0 and http.drained():
			break
		await get_tree().process_frame
	# A few frames so the last disconnects and frees settle before descriptors are counted.
	for i in 30:
		await get_tree().process_frame
	var names := FileAccess.open(dir.path_join("spawned.txt"), FileAccess.WRITE)
	names.store_string("\n".join(spawned_names) + "\n")
	names.close()
	var report := {
		"frames": frames,
		"long_frames": long_frames,
		"max_frame_usec": max_frame_usec,
		"mean_frame_usec": float(frame_usec_total) / maxi(frames, 1),
		"max_hub_step_usec": max_step_usec,
		"slowest_task": slowest_task,
		"stalls": stalls,
		"stall_msec": STALL_MSEC,
		"all_connected": _all_connected(),
		"ws": {
			"sent": ws_next_seq,
			"next_expected": ws_expected_seq,
			"echoed": ws_expected_seq - ws_missing.size(),
			"missing": ws_missing,
			"queued_while_down": ws_queued_down,
			"out_of_order": ws_out_of_order,
			"refused": ws_refused,
			"stats": ws.get_stats(),
		},
		"redis": {"received": redis_received, "bad_payloads": redis_bad, "stats": sub.get_stats()},
		"radio": radio.get_stats(),
		"radio_underruns": radio_underruns,
		"radio_underrun_context": radio_underrun_context,
		"tcp": {"spawned": spawned_names.size(), "stats": server.get_stats()},
		"node_errors": node_errors,
		"error_samples": error_samples,
		"hub_tasks": AsyncHub.task_count(),
		"http": http.report(),
	}
	_write(dir.path_join("report.json"), JSON.stringify(report))
	while not FileAccess.file_exists(dir.path_join("quit")):
		await get_tree().create_timer(0.05).timeout
	get_tree().quit(0)


func _write(path: String, text: String) -> void:
	var tmp := path + ".tmp"
	var file := FileAccess.open(tmp, FileAccess.WRITE)
	file.store_string(text)
	file.close()
	DirAccess.rename_absolute(tmp, path)
