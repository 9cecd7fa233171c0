extends DemoScreen
## The game as a web server: an HttpServer serves a page (web/, beside this
## script) that shows AsyncHub's live monitors and every network node's state,
## pushed over a WebSocket four times a second, with a button whose POST spawns
## a character in this scene. Open the address it shows in a browser.
## `cargo xtask demo` prints the address, and passes its port in
## ASYNC_NET_DEMO_DASHBOARD_PORT. Headless (and for screenshots) the demo
## posts a few spawns to itself, as a browser would.

const DemoEnv := preload("res://common/demo_env.gd")
const Character := preload("res://demos/tcp_spawner/character.gd")

const INFO := {
	"order": 8,
	"title": "Dashboard",
	"summary": "The game serves a web page: live monitors over a WebSocket, and a button that spawns.",
	"classes": "HttpServer · WebSocketServerPeer",
	"tag": "dashboard",
}

## Where the page is served from (HTML, CSS and JavaScript).
const WEB_DIR := "res://demos/dashboard/web"
## The WebSocket path the page listens on for snapshots.
const LIVE_PATH := "/live"
## The port when ASYNC_NET_DEMO_DASHBOARD_PORT is not set (0 if it is taken).
const DEFAULT_PORT := 8090
## Seconds between two snapshots pushed to the browsers.
const PUSH_SEC := 0.25
## Tasks listed in a snapshot.
const MAX_TASKS := 8
## Longest character name a browser may ask for.
const MAX_NAME := 24
## Most characters the scene takes (browsers are outside the game: they get a limit).
const MAX_CHARACTERS := 100
const SPACING := 1.6
const SAMPLE_NAMES := ["Ada", "Grace", "Linus"]

var _since_push := 0.0
## The longest hub step since the last push, in microseconds (a step with nothing to do is 0).
var _longest_step := 0.0
var _clients := 0
var _pushes := 0
var _spawned: Array[String] = []

@onready var _server: HttpServer = %HttpServer
@onready var _characters: Node3D = %Characters


func _ready() -> void:
	super()
	status.watch(_server)
	var port := DemoEnv.value(DemoEnv.DASHBOARD_PORT)
	_server.port = port.to_int() if port.is_valid_int() else DEFAULT_PORT
	_server.serve_files("/", WEB_DIR)
	_server.websocket(LIVE_PATH)
	_server.route("GET", "/api/state", func(_request: HttpServerRequest) -> Dictionary: return snapshot())
	_server.route("POST", "/api/spawn", _on_spawn_request)
	_server.listening.connect(_on_listening)
	_server.websocket_connected.connect(_on_browser)
	_server.error.connect(func(message: String) -> void: say("error: " + message, ERROR_COLOR))
	%Open.pressed.connect(func() -> void: OS.shell_open(_url()))
	_server.start()
	if _server.state == HttpServer.FAILED and _server.port != 0:
		# The port is taken (another copy of the demo, another program): any free port will do.
		say("port %d is taken: listening on a free port instead" % _server.port)
		_server.port = 0
		_server.start()


## Pushes a snapshot every PUSH_SEC, from _process: the hub's step time is read between steps
## (inside one, as from an AsyncHub.interval handler, it is not known yet).
func _process(delta: float) -> void:
	_longest_step = maxf(_longest_step, float(Performance.get_custom_monitor(&"async_net/step_usec")))
	_since_push += delta
	if _since_push >= PUSH_SEC:
		_since_push = 0.0
		_push()
		_longest_step = 0.0


func has_live_data() -> bool:
	return _pushes >= 3 and _spawned.size() >= SAMPLE_NAMES.size()


## What the page shows: the hub's monitors (the step time is the longest step since the last
## snapshot), its tasks, each network node's state and stats, and the characters spawned here.
func snapshot() -> Dictionary:
	var tasks: Array = []
	for task in AsyncHub.tasks().slice(0, MAX_TASKS):
		tasks.append({"name": task.name, "owner": task.owner, "age_sec": snappedf(task.age_sec, 0.1)})
	return {
		"frame": Engine.get_process_frames(),
		"fps": Engine.get_frames_per_second(),
		"uptime_sec": snappedf(Time.get_ticks_msec() / 1000.0, 0.01),
		"tasks": AsyncHub.task_count(),
		"step_usec": snappedf(_longest_step, 0.01),
		"task_list": tasks,
		"nodes": _network_nodes(),
		"characters": _spawned,
		"browsers": _clients,
	}


## Every node of the running game whose class comes from the extension and has stats: its path,
## class, state name (when it has a state) and `get_stats()`.
func _network_nodes() -> Array:
	var found: Array = []
	var stack: Array[Node] = [get_tree().root]
	while not stack.is_empty():
		var node: Node = stack.pop_back()
		var children := node.get_children()
		children.reverse()
		stack.append_array(children)
		var cls := node.get_class()
		if ClassDB.class_get_api_type(cls) != ClassDB.API_EXTENSION or not node.has_method(&"get_stats"):
			continue
		var entry := {"path": String(get_tree().root.get_path_to(node)), "class": cls, "stats": node.get_stats()}
		if node.has_signal(&"state_changed"):
			entry["state"] = StatusPanel.state_names(node).get(node.get(&"state"), "?")
		found.append(entry)
	return found


func _push() -> void:
	if _server.state != HttpServer.LISTENING:
		return
	_server.broadcast_text(LIVE_PATH, JSON.stringify(snapshot()))
	_pushes += 1
	%Pushes.text = str(_pushes)


func _on_listening(port: int) -> void:
	%Url.text = _url()
	say("serving the dashboard at %s" % _url(), RECEIVED_COLOR)
	if DemoRunner.autoplay:
		_spawn_samples_as_a_browser()


func _on_browser(peer: WebSocketServerPeer) -> void:
	_clients += 1
	%Browsers.text = str(_clients)
	say("browser #%d connected to %s" % [peer.id, peer.path])
	peer.send_text(JSON.stringify(snapshot()))
	peer.closed.connect(func(_code: int, _reason: String) -> void:
		_clients -= 1
		%Browsers.text = str(_clients)
		say("browser #%d left" % peer.id))


## POST /api/spawn with a JSON body {"name": "..."} (optional): spawns a character named after it.
func _on_spawn_request(request: HttpServerRequest) -> Variant:
	var parser := JSON.new()
	var body: Variant = parser.data if parser.parse(request.text()) == OK else null
	if request.body.is_empty():
		body = {}
	if not body is Dictionary:
		request.respond(400, {"error": "the body must be a JSON object, e.g. {\"name\": \"Ada\"}"})
		return null
	if _spawned.size() >= MAX_CHARACTERS:
		request.respond(409, {"error": "the scene is full (%d characters)" % MAX_CHARACTERS})
		return null
	var wanted := String(body.get("name", "")).strip_edges().left(MAX_NAME).validate_node_name()
	if wanted.is_empty():
		wanted = "Visitor %d" % (_spawned.size() + 1)
	var node := spawn(wanted)
	say("spawned '%s' for %s" % [node.name, request.peer], RECEIVED_COLOR)
	return {"spawned": String(node.name), "characters": _spawned.size()}


## Spawns a character named `wanted` (made unique) into the 3D view, and returns it.
func spawn(wanted: String) -> Node3D:
	var node: Node3D = preload("res://demos/tcp_spawner/character.tscn").instantiate()
	node.name = wanted
	_characters.add_child(node, true)
	var spot := Character.spiral_spot(_spawned.size())
	node.position = Vector3(spot.x * SPACING, 0, spot.y * SPACING)
	_spawned.append(String(node.name))
	# The line the browser test of `cargo xtask test` looks for: the character is in the game.
	DemoRunner.log_line("[dashboard] character '%s' is in the scene at %s" % [node.name, node.get_path()])
	return node


func _url() -> String:
	return "http://%s:%d/" % [_server.host, _server.get_bound_port()]


## What a browser's button does, done by the demo itself (headless, screenshots): one POST each.
func _spawn_samples_as_a_browser() -> void:
	for name in SAMPLE_NAMES:
		var task := AsyncHub.fetch(_url() + "api/spawn", {"method": "POST", "json": {"name": name}})
		var response: HttpResponse = await task.completed
		if response.status != 200:
			say("POST /api/spawn answered %d" % response.status, ERROR_COLOR)
