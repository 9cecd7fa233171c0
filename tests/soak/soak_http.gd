## The HTTP nodes of the soak scene (soak.gd adds this node): an HttpSession downloading files
## with `resume` through a proxy whose origin and proxy the harness kills and restarts
## (rust/xtask/src/commands/soak/http.rs), and an HttpServer under the testbed's
## `soak-http-load` (real clients, slow heads, aborts).
##
## The harness writes `http.json` in the exchange folder before the scene starts: `urls` (the
## files, through nginx), `proxy` (tinyproxy, with its credentials), `server_port`, `parallel`.
## Downloads go to `http/part/slot-K.bin` (HttpSession keeps `.part` beside it for a resume);
## each completed one is moved to `http/done/SEQ-NAME`, where the harness compares it with the
## original and deletes it. A failed download (the task failed, or a non-2xx answer such as
## tinyproxy's 500 while the origin is down) is tried again, with `resume`, until it completes.
## The testbed's load starts with the scene; [method warmed_up] holds the scene's `ready.json`
## (the end of the warm-up, from which memory growth is judged) until the first downloads have
## completed and the server has answered [constant WARM_UP_ANSWERS] requests. Once `finish`
## exists no new download begins; [method drained] says when the last one has completed and
## the server has no connection left.
extends Node

const Env := preload("res://runner/env.gd")

## Retry delays after a failure, doubling.
const RETRY_MIN_SEC := 0.1
const RETRY_MAX_SEC := 1.0
const MAX_SAMPLES := 20
## Requests the server answers before the warm-up is over.
const WARM_UP_ANSWERS := 300

var session: HttpSession
var server: HttpServer
var urls: Array = []
var part_dir := ""
var done_dir := ""
var finish_file := ""
var finishing := false
## One entry per parallel download: {url, name, path, delay, retry_at, task} or {} when idle.
var slots: Array[Dictionary] = []
var next_seq := 0
var downloads := {
	"started": 0, "completed": 0, "bytes": 0, "attempts": 0, "resumed_attempts": 0,
	"completed_206": 0, "failed": 0, "non_2xx": 0,
}
var handled := {"json": 0, "echo": 0, "deferred": 0, "deferred_refused": 0}
var statuses := {}
var samples := PackedStringArray()


func _init() -> void:
	# Stable paths in the log: the kills make the downloads' tasks fail (and log) on purpose.
	name = "Http"


func _ready() -> void:
	var dir := Env.value(Env.SOAK_DIR)
	var config: Dictionary = JSON.parse_string(FileAccess.get_file_as_string(dir.path_join("http.json")))
	urls = config.urls
	part_dir = dir.path_join("http/part")
	done_dir = dir.path_join("http/done")
	finish_file = dir.path_join("finish")

	session = HttpSession.new()
	session.name = "Downloads"
	session.proxy = config.proxy
	session.timeout_sec = 10.0
	session.connect_timeout_sec = 2.0
	session.read_timeout_sec = 5.0
	add_child(session)
	for k in int(config.parallel):
		slots.append({})

	server = HttpServer.new()
	server.name = "Server"
	server.port = int(config.server_port)
	server.request_timeout_sec = 5.0
	server.route("GET", "/json", _on_json)
	server.route("POST", "/echo", _on_echo)
	server.route("GET", "/deferred", _on_deferred)
	server.request_received.connect(func(_method: String, _path: String, status: int) -> void:
		statuses[status] = statuses.get(status, 0) + 1)
	add_child(server)


func _process(_delta: float) -> void:
	if not finishing and Engine.get_process_frames() % 5 == 0 and FileAccess.file_exists(finish_file):
		finishing = true
	var now := Time.get_ticks_msec() / 1000.0
	for k in slots.size():
		var slot := slots[k]
		if slot.is_empty():
			if finishing:
				continue
			var index := next_seq % urls.size()
			slot = {"url": urls[index], "name": urls[index].get_file(), "path": part_dir.path_join("slot-%d.bin" % k),
					"delay": RETRY_MIN_SEC, "retry_at": 0.0, "task": null}
			slots[k] = slot
			next_seq += 1
			downloads.started += 1
		if slot.task == null and now >= slot.retry_at:
			_attempt(slot)


## True once every download slot has completed one download and the server has answered
## [constant WARM_UP_ANSWERS] requests.
func warmed_up() -> bool:
	return downloads.completed >= slots.size() and statuses.get(200, 0) >= WARM_UP_ANSWERS


## True once no download is left and the server has no connection: the end of the run.
func drained() -> bool:
	return finishing and slots.all(func(slot: Dictionary) -> bool: return slot.is_empty()) \
			and server.get_stats().connections == 0


## This node's section of the soak report.
func report() -> Dictionary:
	var unfinished := slots.filter(func(slot: Dictionary) -> bool: return not slot.is_empty()).size()
	return {
		"downloads": downloads.merged({"unfinished": unfinished, "stats": session.get_stats()}),
		"server": {"handled": handled, "statuses": statuses, "stats": server.get_stats(), "state": server.state},
		"samples": samples,
	}


func _attempt(slot: Dictionary) -> void:
	downloads.attempts += 1
	if FileAccess.file_exists(slot.path + ".part"):
		downloads.resumed_attempts += 1
	var task := session.download(slot.url, slot.path, {"resume": true})
	slot.task = task
	task.completed.connect(func(res: HttpResponse) -> void: _on_done(slot, res))
	task.failed.connect(func(message: String) -> void:
		downloads.failed += 1
		_retry(slot, "failed: " + message))


func _on_done(slot: Dictionary, res: HttpResponse) -> void:
	# 416 with the file in place: the part of an earlier attempt was already complete.
	var complete := res.is_ok() or (res.status == 416 and FileAccess.file_exists(slot.path))
	if not complete:
		downloads.non_2xx += 1
		_retry(slot, "HTTP %d" % res.status)
		return
	var size := FileAccess.open(slot.path, FileAccess.READ).get_length()
	downloads.completed += 1
	downloads.bytes += size
	if res.status == 206:
		downloads.completed_206 += 1
	var done := done_dir.path_join("%d-%s" % [downloads.completed, slot.name])
	var moved := DirAccess.rename_absolute(slot.path, done)
	if moved != OK:
		_sample("cannot move %s to %s: %s" % [slot.path, done, error_string(moved)])
	slot.clear()


func _retry(slot: Dictionary, why: String) -> void:
	_sample("%s: %s" % [slot.name, why])
	slot.task = null
	slot.retry_at = Time.get_ticks_msec() / 1000.0 + slot.delay
	slot.delay = minf(slot.delay * 2.0, RETRY_MAX_SEC)


func _sample(text: String) -> void:
	if samples.size() < MAX_SAMPLES:
		samples.append(text)


# --- the server's handlers --------------------------------------------------------------------

func _on_json(req: HttpServerRequest) -> Dictionary:
	handled.json += 1
	return {"n": int(req.query.get("n", "0")), "items": [1, 2, 3], "frame": Engine.get_process_frames()}


func _on_echo(req: HttpServerRequest) -> PackedByteArray:
	handled.echo += 1
	return req.body


func _on_deferred(req: HttpServerRequest) -> void:
	handled.deferred += 1
	req.defer()
	var n := int(req.query.get("n", "0"))
	get_tree().create_timer(int(req.query.get("ms", "0")) / 1000.0).timeout.connect(func() -> void:
		if not req.respond(200, {"n": n}):
			handled.deferred_refused += 1)
