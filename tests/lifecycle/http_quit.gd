## Run in a Godot subprocess by tests/cases/test_http_session.gd: an HttpSession with downloads
## stalled mid-body, an event stream ticking, fetches waiting on a server that never answers and
## a 16 MiB download, all in flight; then the game quits. Prints `HTTP in flight (...)` and
## `QUITTING <unix time>` right before `get_tree().quit()`; the test measures how long the
## process takes to exit and checks its log.
extends Node

const Env := preload("res://runner/env.gd")
const LIMIT_MSEC := 20_000

var session := HttpSession.new()
var counts := {"progress": 0, "events": 0}
var started_msec := 0
var done := false


func _ready() -> void:
	started_msec = Time.get_ticks_msec()
	var aio := "http://127.0.0.1:%d" % Env.port(Env.AIOHTTP_PORT)
	var nginx := "http://127.0.0.1:%d" % Env.port(Env.NGINX_PORT)
	session.proxy = "direct"
	add_child(session)
	session.download_progress.connect(func(_url: String, _received: int, _total: int) -> void: counts.progress += 1)
	var dir := OS.get_temp_dir().path_join("async_net_http_quit_%d" % OS.get_process_id())
	DirAccess.make_dir_recursive_absolute(dir)
	for i in 3:
		session.download(aio + "/stall-body", dir.path_join("stalled%d.bin" % i))
	session.download(nginx + "/big.bin", dir.path_join("big.bin"))
	var ticker := session.stream("GET", aio + "/sse/ticker", {"query": {"interval": 10}})
	ticker.event_received.connect(func(_e: String, _d: String, _id: String) -> void: counts.events += 1)
	for i in 20:
		AsyncHub.fetch(aio + "/stall")


func _process(_delta: float) -> void:
	if done:
		return
	if Time.get_ticks_msec() - started_msec > LIMIT_MSEC:
		printerr("HTTP nothing in flight after %d ms: %s" % [LIMIT_MSEC, counts])
		done = true
		get_tree().quit(3)
		return
	if counts.progress >= 3 and counts.events >= 3:
		done = true
		print("HTTP in flight (%s, %d tasks)" % [counts, AsyncHub.task_count()])
		print("QUITTING %.6f" % Time.get_unix_time_from_system())
		get_tree().quit(0)
