## The HttpSession benchmarks of `cargo xtask bench` (issue 16, item 6), beside Godot's
## HTTPRequest (use_threads off, its default, and on), against the same nginx in the same run
## (plain http on loopback, started by xtask: `--http-port=PORT`; it serves the 16 MiB big.bin
## and small.json of rust/xtask/src/http_services.rs).
##
## Rows:
## - download: a 16 MiB download to a file at 60 and at 20 fps (Engine.max_fps): wall seconds
##   from the call to the completed signal (timed in its handler); the main thread's CPU (the frames' process phases,
##   less an idle window's per frame) and the whole process's CPU in the detail;
## - small: 1000 GETs of small.json with 50 in flight (HttpSession: 50 requests kept going;
##   HTTPRequest: 50 nodes, each starting its next request when one completes) at 60 fps:
##   requests per second, and main-thread CPU per request;
## - first: a small GET from the call to the completed signal, one at a time, median of 20, at
##   60 fps (the first byte's arrival plus its delivery to GDScript: HTTPRequest has no signal
##   for the first byte).
##
## Prints one line `BENCH {json}` per row, then quits (exit code 1 if something failed).
extends Node

const Util := preload("res://bench/bench_util.gd")
const BIG_BYTES := 16 << 20
const SMALL_REQUESTS := 1000
const IN_FLIGHT := 50
const FIRST_RUNS := 20
const IDLE_FRAMES := 60
const LIMIT_SEC := 540.0
## Issue 16's targets.
const DOWNLOAD_TARGET := 10.0
const MAIN_PER_REQUEST_TARGET := 0.5
const RATE_TARGET := 3.0
## Why the rows give no CPU figure for HTTPRequest with use_threads.
const THREADS_UNMEASURED := ("it starts a thread per request, which the whole-process reading misses when it "
	+ "starts after the window, and emits its signal from a deferred call, after the process phase")

var _base := ""
var _workdir := ""
var _failures := PackedStringArray()
var _phase: Util.Phase


func _ready() -> void:
	OS.low_processor_usage_mode_sleep_usec = 0
	get_tree().create_timer(LIMIT_SEC, true, false, true).timeout.connect(_on_time_limit)
	_phase = Util.Phase.new(self)
	_run.call_deferred()


func _run() -> void:
	var options := Util.options()
	var port := int(options.get("http-port", "0"))
	_workdir = options.get("workdir", "")
	var only: PackedStringArray = options.get("only", "download,small,first").split(",", false)
	if port <= 0 or not DirAccess.dir_exists_absolute(_workdir):
		_fail("needs --http-port=PORT (nginx) and --workdir=DIR; run it with `cargo xtask bench --scene http`")
	else:
		_base = "http://127.0.0.1:%d" % port
		print("bench_http: Godot %s, %d CPU cores, nginx %s" % [Engine.get_version_info().string,
			OS.get_processor_count(), _base])
		if "download" in only:
			for fps in [60, 20]:
				await _bench_download(fps)
		if "small" in only:
			await _bench_small()
		if "first" in only:
			await _bench_first()
	if not _failures.is_empty():
		printerr("bench_http: %d problem(s): %s" % [_failures.size(), "; ".join(_failures)])
	get_tree().quit(1 if not _failures.is_empty() else 0)


# --- download ------------------------------------------------------------------------------------

func _bench_download(fps: int) -> void:
	Engine.max_fps = fps
	var ours := await _download(fps, "ours")
	var plain := await _download(fps, "plain")
	var threaded := await _download(fps, "threads")
	if ours.is_empty() or plain.is_empty() or threaded.is_empty():
		return
	var detail := ("16 MiB from nginx on loopback to a file, at %d fps; wall seconds from the call to the completed "
		+ "signal, timed in its handler. Main-thread CPU of the frames' process phases less an idle window's, and "
		+ "whole-process CPU: ours %.1f / %.1f ms (%d frames), HTTPRequest %.1f / %.1f ms (%d frames). HTTPRequest "
		+ "with use_threads: %.3f s wall (%d frames); its CPU is not measured here (%s)") % [fps, ours.main / 1000.0,
		ours.process / 1000.0, ours.frames, plain.main / 1000.0, plain.process / 1000.0, plain.frames, threaded.wall,
		threaded.frames, THREADS_UNMEASURED]
	var target := ""
	if fps == 20:
		target = Util.verdict(ours.wall * DOWNLOAD_TARGET <= plain.wall, "ours >= %.0fx faster" % DOWNLOAD_TARGET)
	Util.row("HttpSession: 16 MiB download at %d fps" % fps, "s", ours.wall, plain.wall, "HTTPRequest", true,
		detail, target)
	Util.row("HttpSession: 16 MiB download at %d fps, against use_threads" % fps, "s", ours.wall, threaded.wall,
		"HTTPRequest with use_threads", true, "the same downloads as the row before")


## One download by `who` ("ours", "plain": HTTPRequest, "threads": HTTPRequest with use_threads):
## {wall: s, main, process: CPU us, frames}, or {} after a failure.
func _download(fps: int, who: String) -> Dictionary:
	var path := _workdir.path_join("big-%s-%d.bin" % [who, fps])
	var session: HttpSession = null
	if who == "ours":
		session = HttpSession.new()
		add_child(session)
		# Untimed: starts tokio's blocking threads (they write the file) before the window, whose
		# whole-process figure counts only threads that exist when it starts.
		await session.download(_base + "/small.json", path).completed
	var idle := await Util.measure(get_tree(), _phase, IDLE_FRAMES)
	var meter := Util.Meter.new(get_tree(), _phase)
	var state := {"done": false, "ok": false, "at": 0}
	meter.start()
	await get_tree().process_frame
	var started := Time.get_ticks_usec()
	var node: Node = null
	if who == "ours":
		node = session
		var task := session.download(_base + "/big.bin", path)
		task.completed.connect(func(_r: Variant) -> void:
			state.merge({"done": true, "ok": true, "at": Time.get_ticks_usec()}, true))
		task.failed.connect(func(message: String) -> void:
			_fail("download: " + message)
			state.done = true)
	else:
		var request := HTTPRequest.new()
		node = request
		request.use_threads = who == "threads"
		request.download_file = path
		add_child(request)
		request.request_completed.connect(func(result: int, code: int, _h: PackedStringArray, _b: PackedByteArray) -> void:
			if result != HTTPRequest.RESULT_SUCCESS or code != 200:
				_fail("download with HTTPRequest: result %d, HTTP %d" % [result, code])
			var ok := result == HTTPRequest.RESULT_SUCCESS and code == 200
			state.merge({"done": true, "ok": ok, "at": Time.get_ticks_usec()}, true))
		request.request(_base + "/big.bin")
	if not await Util.wait_until(get_tree(), func() -> bool: return state.done, 300.0):
		_fail("download (%s, %d fps): not done within 300 s" % [who, fps])
	var wall: float = (state.at - started) / 1e6
	await meter.stop()
	node.free()
	var size := FileAccess.open(path, FileAccess.READ).get_length() if FileAccess.file_exists(path) else 0
	DirAccess.remove_absolute(path)
	if not state.ok:
		return {}
	if size != BIG_BYTES:
		_fail("download (%s): %d bytes written, not %d" % [who, size, BIG_BYTES])
		return {}
	var cost := Util.marginal(meter, idle, 1)
	return {"wall": wall, "main": cost.main, "process": cost.process, "frames": meter.frames()}


# --- many small requests ---------------------------------------------------------------------------

func _bench_small() -> void:
	Engine.max_fps = 60
	var ours := await _small("ours")
	var plain := await _small("plain")
	var threaded := await _small("threads")
	if ours.is_empty() or plain.is_empty() or threaded.is_empty():
		return
	var detail := ("%d GETs of small.json from nginx, %d in flight, 60 fps. HttpSession: one session; HTTPRequest: "
		+ "%d nodes, each starting its next request when one completes. Wall: ours %.3f s, HTTPRequest %.3f s, with "
		+ "use_threads %.3f s (%.0f/s). Main-thread CPU per request (process phases less an idle window's): ours "
		+ "%.1f, HTTPRequest %.1f us; whole process per request: %.1f, %.1f us. With use_threads, CPU is not "
		+ "measured here (%s)") % [SMALL_REQUESTS, IN_FLIGHT, IN_FLIGHT, ours.wall, plain.wall, threaded.wall,
		threaded.rate, ours.main, plain.main, ours.process, plain.process, THREADS_UNMEASURED]
	Util.row("HttpSession: small GETs per second, 50 in flight", "req/s", ours.rate, plain.rate, "HTTPRequest x 50",
		false, detail, Util.verdict(ours.rate >= RATE_TARGET * plain.rate, "ours >= %.0fx HTTPRequest's" % RATE_TARGET))
	Util.row("HttpSession: main-thread CPU per small GET", "us/request", ours.main, plain.main, "HTTPRequest x 50",
		true, "the same requests as the row before", Util.verdict(ours.main <= MAIN_PER_REQUEST_TARGET * plain.main,
			"ours <= %.1fx HTTPRequest's" % MAIN_PER_REQUEST_TARGET))


## SMALL_REQUESTS GETs by `who`, IN_FLIGHT at a time: {wall, rate, main, process}, or {}.
func _small(who: String) -> Dictionary:
	var url := _base + "/small.json"
	# In a Dictionary: lambdas capture locals by value, and "next" calls itself.
	var state := {"started": 0, "done": 0, "failed": 0, "next": Callable(), "at": 0}
	var session: HttpSession = null
	var requests: Array[HTTPRequest] = []
	if who == "ours":
		session = HttpSession.new()
		add_child(session)
		state.next = func() -> void:
			state.started += 1
			var task := session.request("GET", url)
			task.completed.connect(func(_r: Variant) -> void:
				state.done += 1
				state.at = Time.get_ticks_usec()
				if state.started < SMALL_REQUESTS:
					state.next.call())
			task.failed.connect(func(_m: String) -> void:
				state.failed += 1
				state.done += 1)
	else:
		for i in IN_FLIGHT:
			var request := HTTPRequest.new()
			request.use_threads = who == "threads"
			add_child(request)
			request.request_completed.connect(func(result: int, code: int, _h: PackedStringArray, _b: PackedByteArray) -> void:
				if result != HTTPRequest.RESULT_SUCCESS or code != 200:
					state.failed += 1
				state.done += 1
				state.at = Time.get_ticks_usec()
				if state.started < SMALL_REQUESTS:
					state.started += 1
					# Deferred: a request started from its own completed signal is refused as busy.
					request.request.call_deferred(url))
			requests.append(request)
	var idle := await Util.measure(get_tree(), _phase, IDLE_FRAMES)
	var meter := Util.Meter.new(get_tree(), _phase)
	meter.start()
	await get_tree().process_frame
	var started := Time.get_ticks_usec()
	for i in IN_FLIGHT:
		if who == "ours":
			state.next.call()
		else:
			state.started += 1
			requests[i].request(url)
	if not await Util.wait_until(get_tree(), func() -> bool: return state.done >= SMALL_REQUESTS, 120.0):
		_fail("small (%s): %d of %d done within 120 s" % [who, state.done, SMALL_REQUESTS])
	var wall: float = (state.at - started) / 1e6
	await meter.stop()
	if session != null:
		session.free()
	for request in requests:
		request.free()
	if state.failed > 0:
		_fail("small (%s): %d requests failed" % [who, state.failed])
	if state.done < SMALL_REQUESTS or state.failed > 0:
		return {}
	var cost := Util.marginal(meter, idle, SMALL_REQUESTS)
	return {"wall": wall, "rate": SMALL_REQUESTS / wall, "main": cost.main, "process": cost.process}


# --- one small request at a time -----------------------------------------------------------------------

func _bench_first() -> void:
	Engine.max_fps = 60
	var ours := await _first("ours")
	var plain := await _first("plain")
	var threaded := await _first("threads")
	if ours < 0.0 or plain < 0.0 or threaded < 0.0:
		return
	Util.row("HttpSession: small GET, call to completed", "ms", ours, plain, "HTTPRequest", true,
		("median of %d GETs of small.json one at a time (a session or node kept, so connections are reused), 60 "
		+ "fps; HTTPRequest with use_threads: %.2f ms") % [FIRST_RUNS, threaded])


## The median milliseconds from the call to the completed signal of FIRST_RUNS GETs by `who`, or -1.
func _first(who: String) -> float:
	var url := _base + "/small.json"
	var session: HttpSession = null
	var request: HTTPRequest = null
	if who == "ours":
		session = HttpSession.new()
		add_child(session)
	else:
		request = HTTPRequest.new()
		request.use_threads = who == "threads"
		add_child(request)
	var times := PackedFloat64Array()
	for i in FIRST_RUNS + 1:
		await get_tree().process_frame
		var state := {"done": false, "at": 0}
		var started := Time.get_ticks_usec()
		if session != null:
			session.request("GET", url).completed.connect(func(_r: Variant) -> void:
				state.merge({"done": true, "at": Time.get_ticks_usec()}, true))
		else:
			request.request_completed.connect(func(_a: int, _b: int, _c: PackedStringArray, _d: PackedByteArray) -> void:
				state.merge({"done": true, "at": Time.get_ticks_usec()}, true), CONNECT_ONE_SHOT)
			request.request(url)
		var answered := await Util.wait_until(get_tree(), func() -> bool: return state.done, 10.0)
		if not answered:
			_fail("first (%s): no answer within 10 s" % who)
			break
		# The first request opens the connection: not counted.
		if i > 0:
			times.append((state.at - started) / 1000.0)
	if session != null:
		session.free()
	if request != null:
		request.free()
	return Util.median(times) if times.size() == FIRST_RUNS else -1.0


func _fail(message: String) -> void:
	_failures.append(message)
	printerr("bench_http: " + message)


func _on_time_limit() -> void:
	_fail("time limit of %d s reached" % LIMIT_SEC)
	get_tree().quit(2)
