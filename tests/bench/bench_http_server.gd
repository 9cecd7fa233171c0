## The HttpServer benchmarks of `cargo xtask bench` (issue 17, item 6), against GDScript servers
## written the way Godot's server addons are (gd_http_server.gd: TCPServer and StreamPeerTCP in
## _process, with keep-alive; gd_ws_server.gd: WebSocketPeer.accept_stream), in the same run at
## 60 fps. The load comes from outside Godot: Debian's `wrk` (`--wrk=PATH`) for HTTP and the
## release testbed's `ws-clients` (`--loadgen=PATH`) for WebSocket.
##
## Rows:
## - json: GETs of a route whose GDScript handler returns a small Dictionary (the same handler on
##   both sides), wrk with keep-alive, WRK_CONNECTIONS connections for WRK_SECONDS: requests per
##   second (wrk's figure), and main-thread CPU per request (the frames' process phases, less an
##   idle window's per frame), whole-process CPU in the detail; then the same route of ours with
##   `cache_sec` = CACHE_SEC against the GDScript server's figure of the same run (it answers
##   once per connection per frame whatever it would keep, so its row is not run again);
## - broadcast: BROADCASTS_PER_FRAME text messages of 100 B a frame to WS_CLIENTS clients for
##   BROADCAST_FRAMES frames: main-thread CPU per message per client;
## - file: GETs of a 1 MiB file (serve_files; the baseline reads it with FileAccess per request),
##   wrk with FILE_CONNECTIONS connections: main-thread CPU per request.
##
## User arguments (after `--`): --wrk=PATH, --loadgen=PATH, --workdir=DIR (given by `cargo xtask
## bench`), --only=json,broadcast,file, --connections=N (wrk's connections of the json row).
##
## Prints one line `BENCH {json}` per row, then quits (exit code 1 if something failed).
extends Node

const Util := preload("res://bench/bench_util.gd")
const GdHttpServer := preload("res://bench/gd_http_server.gd")
const GdWsServer := preload("res://bench/gd_ws_server.gd")
## wrk's connections in the json row, unless --connections=N says otherwise.
const WRK_CONNECTIONS := 50
const WRK_SECONDS := 5
## The json row with the cache: a status document that games refresh a few times a second, so
## an answer 0.1 s old is as good as a new one (a dashboard polling 4x a second sees each frame's
## state at most one poll late).
const CACHE_SEC := 0.1
const FILE_CONNECTIONS := 4
const FILE_BYTES := 1 << 20
const WS_CLIENTS := 100
const BROADCAST_FRAMES := 240
const BROADCASTS_PER_FRAME := 10
## Frames after the last broadcast inside the window, so that the I/O thread's sending is counted.
const DRAIN_FRAMES := 30
const IDLE_FRAMES := 60
const LIMIT_SEC := 540.0
## Issue 17's targets.
const RATE_TARGET := 10.0
const MAIN_PER_REQUEST_TARGET := 0.3
const FILE_MAIN_TARGET_USEC := 20.0

var _wrk_path := ""
var _connections := WRK_CONNECTIONS
var _program := ""
var _workdir := ""
var _failures := PackedStringArray()
var _phase: Util.Phase
## The broadcast row's per-frame work (a node between the phase's probes, so it is measured).
var _driver: Util.Probe


func _ready() -> void:
	OS.low_processor_usage_mode_sleep_usec = 0
	Engine.max_fps = 60
	get_tree().create_timer(LIMIT_SEC, true, false, true).timeout.connect(_on_time_limit)
	_phase = Util.Phase.new(self)
	_driver = Util.Probe.new()
	_driver.on_process = func() -> void: pass
	add_child(_driver)
	_run.call_deferred()


func _run() -> void:
	var options := Util.options()
	_wrk_path = options.get("wrk", "")
	_program = options.get("loadgen", "")
	_workdir = options.get("workdir", "")
	_connections = int(options.get("connections", str(WRK_CONNECTIONS)))
	var only: PackedStringArray = options.get("only", "json,broadcast,file").split(",", false)
	if _wrk_path.is_empty() or _program.is_empty() or not DirAccess.dir_exists_absolute(_workdir):
		_fail("needs --wrk=PATH, --loadgen=PATH and --workdir=DIR; run it with `cargo xtask bench --scene http_server`")
	else:
		print("bench_http_server: Godot %s, %d CPU cores" % [Engine.get_version_info().string, OS.get_processor_count()])
		if "json" in only:
			await _bench_json()
		if "broadcast" in only:
			await _bench_broadcast()
		if "file" in only:
			await _bench_file()
	if not _failures.is_empty():
		printerr("bench_http_server: %d problem(s): %s" % [_failures.size(), "; ".join(_failures)])
	get_tree().quit(1 if not _failures.is_empty() else 0)


## The route both servers answer: a small JSON object, as a game's status endpoint would.
static func _status_route(_request: Variant) -> Dictionary:
	return {"ok": true, "frame": Engine.get_process_frames(), "players": 3, "map": "arena"}


# --- HTTP: a small JSON route, and a 1 MiB file ------------------------------------------------------

func _bench_json() -> void:
	var ours := await _wrk_run("ours", "/status", _connections)
	var gd := await _wrk_run("gd", "/status", _connections)
	if ours.is_empty() or gd.is_empty():
		return
	var detail := ("wrk -t1 -c%d -d%ds with keep-alive against GET /status, whose GDScript handler returns a small "
		+ "Dictionary (the same handler on both sides), at 60 fps. Requests: ours %d (%.0f/s), GDScript server %d "
		+ "(%.0f/s). Main-thread CPU per request (process phases less an idle window's per frame): ours %.2f, "
		+ "GDScript %.2f us; whole process per request: ours %.2f, GDScript %.2f us; fps during the load: ours %.1f, "
		+ "GDScript %.1f") % [_connections, WRK_SECONDS, ours.requests, ours.rate, gd.requests, gd.rate,
		ours.main, gd.main, ours.process, gd.process, ours.fps, gd.fps]
	Util.row("HttpServer: small JSON GETs per second, keep-alive", "req/s", ours.rate, gd.rate,
		"GDScript server on TCPServer", false, detail,
		Util.verdict(ours.rate >= RATE_TARGET * gd.rate, "ours >= %.0fx the GDScript server's" % RATE_TARGET))
	Util.row("HttpServer: main-thread CPU per small JSON GET", "us/request", ours.main, gd.main,
		"GDScript server on TCPServer", true, "the same requests as the row before",
		Util.verdict(ours.main <= MAIN_PER_REQUEST_TARGET * gd.main, "ours <= %.1fx the GDScript server's" % MAIN_PER_REQUEST_TARGET))
	var kept := await _wrk_run("ours", "/status", _connections, CACHE_SEC)
	if kept.is_empty():
		return
	detail = ("The same load and handler, the route added with {\"cache_sec\": %.1f}: answers are kept on the I/O "
		+ "worker for %.1f s and answered there without waiting for a frame. Against the GDScript server's figure "
		+ "above (one answer per connection per frame, whatever it keeps). Requests: %d (%.0f/s); handler calls %d, "
		+ "answered from the kept answer %d; main-thread CPU per request %.3f us (request_received is still emitted "
		+ "for each), whole process %.2f us; fps during the load %.1f") % [CACHE_SEC, CACHE_SEC, kept.requests,
		kept.rate, kept.handled, kept.cached, kept.main, kept.process, kept.fps]
	Util.row("HttpServer: small JSON GETs per second, keep-alive, cache_sec %.1f" % CACHE_SEC, "req/s", kept.rate,
		gd.rate, "GDScript server on TCPServer", false, detail,
		Util.verdict(kept.rate >= RATE_TARGET * gd.rate, "ours >= %.0fx the GDScript server's" % RATE_TARGET))


func _bench_file() -> void:
	var file := _workdir.path_join("files").path_join("big.bin")
	DirAccess.make_dir_recursive_absolute(file.get_base_dir())
	var bytes := PackedByteArray()
	bytes.resize(FILE_BYTES)
	for i in range(0, FILE_BYTES, 4096):
		bytes.encode_u32(i, hash(i))
	var out := FileAccess.open(file, FileAccess.WRITE)
	out.store_buffer(bytes)
	out.close()
	var ours := await _wrk_run("ours", "/files/big.bin", FILE_CONNECTIONS)
	var gd := await _wrk_run("gd", "/files/big.bin", FILE_CONNECTIONS)
	if ours.is_empty() or gd.is_empty():
		return
	var detail := ("wrk -t1 -c%d -d%ds against GET /files/big.bin (1 MiB), at 60 fps: HttpServer.serve_files, and "
		+ "the GDScript server reading the file with FileAccess per request and writing it with put_partial_data. "
		+ "Requests: ours %d (%.0f/s), GDScript %d (%.0f/s). Whole process per request: ours %.1f, GDScript %.1f us") % [
		FILE_CONNECTIONS, WRK_SECONDS, ours.requests, ours.rate, gd.requests, gd.rate, ours.process, gd.process]
	Util.row("HttpServer: main-thread CPU per 1 MiB file GET (serve_files)", "us/request", ours.main, gd.main,
		"GDScript server on TCPServer", true, detail,
		Util.verdict(ours.main < FILE_MAIN_TARGET_USEC, "ours < %.0f us" % FILE_MAIN_TARGET_USEC))


## `who` ("ours": HttpServer, "gd": the GDScript server) serves the status route (ours keeps its
## answers for `cache_sec` when above 0) and the files folder while wrk loads `path` with
## `connections` connections: {requests, rate, main, process, fps} (CPU figures per request; ours
## also handled and cached, from get_stats()), or {} after a failure.
func _wrk_run(who: String, path: String, connections: int, cache_sec := 0.0) -> Dictionary:
	var server: Node
	var port := 0
	if who == "ours":
		var http := HttpServer.new()
		http.port = 0
		http.max_connections = 1024
		http.route("GET", "/status", _status_route, {"cache_sec": cache_sec})
		DirAccess.make_dir_recursive_absolute(_workdir.path_join("files"))
		http.serve_files("/files/", _workdir.path_join("files"))
		add_child(http)
		if not await Util.wait_until(get_tree(), func() -> bool: return http.get_bound_port() > 0, 10.0):
			_fail("HttpServer did not listen: state %d" % http.state)
		server = http
		port = http.get_bound_port()
	else:
		var gd := GdHttpServer.new()
		gd.route("/status", _status_route)
		gd.serve_files("/files/", _workdir.path_join("files"))
		add_child(gd)
		server = gd
		port = gd.listen()
	var report := {}
	if port > 0:
		var idle := await Util.measure(get_tree(), _phase, IDLE_FRAMES)
		var meter := Util.Meter.new(get_tree(), _phase)
		meter.start()
		await get_tree().process_frame
		var output := await _wrk("http://127.0.0.1:%d%s" % [port, path], connections)
		await meter.stop()
		var parsed := _parse_wrk(output)
		if parsed.is_empty():
			_fail("%s %s: wrk printed no result:\n%s" % [who, path, output])
		else:
			var cost := Util.marginal(meter, idle, parsed.requests)
			report = {"requests": parsed.requests, "rate": parsed.rate, "main": cost.main, "process": cost.process,
				"fps": meter.fps()}
			if server is HttpServer:
				var stats: Dictionary = server.get_stats()
				report.merge({"handled": stats.handled, "cached": stats.cached})
	server.free()
	return report


## Runs wrk against `url` and returns what it printed.
func _wrk(url: String, connections: int) -> String:
	var out := _workdir.path_join("wrk.txt")
	DirAccess.remove_absolute(out)
	var command := "exec '%s' -t1 -c%d -d%ds '%s' > '%s' 2>&1" % [_wrk_path, connections, WRK_SECONDS, url, out]
	var pid := OS.create_process("/bin/sh", ["-c", command])
	if pid <= 0:
		_fail("could not start %s" % _wrk_path)
		return ""
	if not await Util.wait_until(get_tree(), func() -> bool: return not OS.is_process_running(pid), WRK_SECONDS + 60.0):
		OS.kill(pid)
		_fail("wrk did not end")
	return FileAccess.get_file_as_string(out)


## wrk's report: {requests, rate}, or {} when it failed (errors or answers other than 2xx).
func _parse_wrk(output: String) -> Dictionary:
	var requests := -1
	var rate := -1.0
	for line in output.split("\n"):
		line = line.strip_edges()
		if line.contains(" requests in "):
			requests = line.get_slice(" ", 0).to_int()
		elif line.begins_with("Requests/sec:"):
			rate = line.trim_prefix("Requests/sec:").strip_edges().to_float()
		elif line.begins_with("Non-2xx") or line.begins_with("Socket errors"):
			_fail("wrk: " + line)
	return {"requests": requests, "rate": rate} if requests > 0 and rate > 0.0 else {}


# --- WebSocket broadcast ----------------------------------------------------------------------------

func _bench_broadcast() -> void:
	var ours := await _broadcast("ours")
	var gd := await _broadcast("gd")
	if ours.is_empty() or gd.is_empty():
		return
	var detail := ("%d text messages of 100 B a frame to %d clients (testbed ws-clients, its own process) for %d frames "
		+ "at 60 fps, counted by every client. Main-thread CPU per message per client (process phases less an idle "
		+ "window's per frame): ours %.3f, WebSocketPeer %.3f us; whole process: ours %.3f, WebSocketPeer %.3f us; "
		+ "per broadcast call (all %d clients): ours %.1f, WebSocketPeer %.1f us") % [BROADCASTS_PER_FRAME, WS_CLIENTS,
		BROADCAST_FRAMES, ours.main, gd.main, ours.process, gd.process, WS_CLIENTS, ours.main * WS_CLIENTS,
		gd.main * WS_CLIENTS]
	Util.row("HttpServer: WebSocket broadcast of 100 B to 100 clients, main-thread CPU per message per client",
		"us/message", ours.main, gd.main, "WebSocketPeer server in GDScript", true, detail)


## `who` broadcasts to WS_CLIENTS clients: {main, process} per message per client, or {}.
func _broadcast(who: String) -> Dictionary:
	var server: Node
	var port := 0
	var send: Callable
	if who == "ours":
		var http := HttpServer.new()
		http.port = 0
		http.max_connections = 1024
		http.websocket("/ws")
		add_child(http)
		await Util.wait_until(get_tree(), func() -> bool: return http.get_bound_port() > 0, 10.0)
		port = http.get_bound_port()
		send = func(text: String) -> void: http.broadcast_text("/ws", text)
		server = http
	else:
		var gd := GdWsServer.new()
		add_child(gd)
		port = gd.listen()
		send = gd.broadcast_text
		server = gd
	var report := {}
	var ready_file := _workdir.path_join("ws-ready.txt")
	var out_file := _workdir.path_join("ws-clients.json")
	for file in [ready_file, out_file]:
		DirAccess.remove_absolute(file)
	var pid := OS.create_process(_program, ["ws-clients", "--url", "ws://127.0.0.1:%d/ws" % port, "--clients",
		str(WS_CLIENTS), "--ready-file", ready_file, "--out", out_file, "--max-sec", "120"])
	if port <= 0 or pid <= 0 or not await Util.wait_until(get_tree(), func() -> bool: return FileAccess.file_exists(ready_file), 60.0):
		_fail("broadcast (%s): the clients did not connect" % who)
	else:
		# The last handshakes finish on the server's side a frame or two after the clients see them.
		await Util.frames(get_tree(), 10)
		var payload := "x".repeat(100)
		var idle := await Util.measure(get_tree(), _phase, IDLE_FRAMES)
		var meter := Util.Meter.new(get_tree(), _phase)
		var frames := [0]
		_driver.on_process = func() -> void:
			if frames[0] < BROADCAST_FRAMES:
				for i in BROADCASTS_PER_FRAME:
					send.call(payload)
			frames[0] += 1
		meter.start()
		await Util.frames(get_tree(), BROADCAST_FRAMES + DRAIN_FRAMES + 1)
		await meter.stop()
		_driver.on_process = func() -> void: pass
		send.call("end")
		await Util.wait_until(get_tree(), func() -> bool: return FileAccess.file_exists(out_file), 60.0)
		var result: Variant = JSON.parse_string(FileAccess.get_file_as_string(out_file))
		var expected := BROADCAST_FRAMES * BROADCASTS_PER_FRAME * WS_CLIENTS
		if not result is Dictionary or not result.get("ok", false) or int(result.get("messages", 0)) != expected:
			_fail("broadcast (%s): the clients report %s, not %d messages" % [who, result, expected])
		else:
			var cost := Util.marginal(meter, idle, expected)
			report = {"main": cost.main, "process": cost.process}
	if pid > 0 and OS.is_process_running(pid):
		OS.kill(pid)
	server.free()
	return report


func _fail(message: String) -> void:
	_failures.append(message)
	printerr("bench_http_server: " + message)


func _on_time_limit() -> void:
	_fail("time limit of %d s reached" % LIMIT_SEC)
	get_tree().quit(2)
