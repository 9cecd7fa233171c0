extends DemoScreen
## The tutorial's TCP example: every line a client sends spawns a character
## named after it. Try `nc 127.0.0.1 8885` and type names, or press "Send
## sample names" (a client inside the demo). Headless (and for screenshots) the
## demo sends the sample names itself.

const INFO := {
	"order": 2,
	"title": "TCP spawner",
	"summary": "Each line a TCP client sends spawns a character named after it.",
	"classes": "TcpSpawnerServer",
	"tag": "tcp spawner",
}

const Character := preload("res://demos/tcp_spawner/character.gd")
const SPACING := 1.6
const SAMPLE_NAMES := ["Ada", "Grace", "Linus", "Ada", "Margaret", "Alan", "Barbara", "Ken"]

@onready var _server: TcpSpawnerServer = %TcpSpawnerServer
@onready var _hint: Label = %Hint

var _placed := 0


func _ready() -> void:
	super()
	status.watch(_server, ["clients", "lines", "spawned", "rejected"])
	_server.listening.connect(_on_listening)
	_server.spawned.connect(_on_spawned)
	_server.client_connected.connect(func(peer: String) -> void: say("%s connected" % peer))
	_server.client_disconnected.connect(func(peer: String) -> void: say("%s left" % peer))
	_server.error.connect(func(message: String) -> void: say("error: " + message, ERROR_COLOR))
	%SendNames.pressed.connect(func() -> void: _send_names_as_a_client(_server.get_bound_port()))
	_server.start()
	if _server.state == TcpSpawnerServer.FAILED:
		# The port is taken (another copy of the demo, another program): any free port will do.
		say("port %d is taken: listening on a free port instead" % _server.port)
		_server.port = 0
		_server.start()


func has_live_data() -> bool:
	return _placed >= SAMPLE_NAMES.size()


func _on_listening(port: int) -> void:
	_hint.text = "Listening on %s:%d  ·  try  nc %s %d  and type a name" % [_server.host, port, _server.host, port]
	say("spawner listening on %s:%d" % [_server.host, port])
	if DemoRunner.autoplay:
		_send_names_as_a_client(port)


## Places each new character on a square spiral around the centre, so none overlap.
func _on_spawned(node: Node, peer: String) -> void:
	var spot := Character.spiral_spot(_placed)
	_placed += 1
	(node as Node3D).position = Vector3(spot.x * SPACING, 0, spot.y * SPACING)
	say("spawned '%s' for %s at %s" % [node.name, peer, spot], RECEIVED_COLOR)


func _send_names_as_a_client(port: int) -> void:
	var client := StreamPeerTCP.new()
	client.connect_to_host("127.0.0.1", port)
	while client.get_status() == StreamPeerTCP.STATUS_CONNECTING:
		client.poll()
		await get_tree().process_frame
	client.put_data(("\n".join(SAMPLE_NAMES) + "\n").to_utf8_buffer())
	var received := ""
	var deadline := Time.get_ticks_msec() + 5000
	while received.count("\n") < SAMPLE_NAMES.size() and Time.get_ticks_msec() < deadline:
		await get_tree().process_frame
		client.poll()
		if client.get_available_bytes() > 0:
			received += client.get_utf8_string(client.get_available_bytes())
	for reply in received.strip_edges().split("\n"):
		say("client got: " + reply, SENT_COLOR)
	client.disconnect_from_host()
