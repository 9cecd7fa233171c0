extends DemoScreen
## The tutorial's last example: type a line, press Send, and the WebSocket echo
## server's answer is appended to the conversation. The status panel follows
## the connection (try stopping the server: it reconnects, and what you send
## meanwhile is queued and delivered once it is back).
##
## `cargo xtask demo` starts a local echo server and passes its URL in
## ASYNC_NET_DEMO_WS_URL; the URL field is editable. Headless (and for
## screenshots), the demo sends a few lines itself and prints the echoes.

const DemoEnv := preload("res://common/demo_env.gd")

const INFO := {
	"order": 5,
	"title": "WebSocket echo",
	"summary": "A WebSocket client that reconnects by itself and queues what you send meanwhile.",
	"classes": "WsEcho",
	"tag": "ws",
}

const AUTOPLAY_LINES := ["hello from Godot", "Zoë ✓ naïve café", "queued while connecting, sent in order", "the last line"]

@onready var _ws: WsEcho = %WsEcho
@onready var _url: LineEdit = %Url
@onready var _input: LineEdit = %Input

var _echoes := 0


func _ready() -> void:
	super()
	status.watch(_ws, ["messages_sent", "messages_received", "queued", "reconnects"])
	var url := DemoEnv.value(DemoEnv.WS_URL)
	_url.text = url if not url.is_empty() else _ws.url
	_ws.connected.connect(func(_protocol: String) -> void: say("connected to %s" % _ws.url))
	_ws.message_received.connect(func(text: String) -> void:
		_echoes += 1
		say("← %s" % text, RECEIVED_COLOR))
	_ws.binary_received.connect(func(data: PackedByteArray) -> void: say("← %d bytes" % data.size(), RECEIVED_COLOR))
	_ws.closed.connect(func(code: int, reason: String) -> void: say("closed: %d %s" % [code, reason]))
	_ws.error.connect(func(message: String) -> void: say("error: %s" % message, ERROR_COLOR))
	%Connect.pressed.connect(_connect)
	%Send.pressed.connect(_send)
	_input.text_submitted.connect(func(_text: String) -> void: _send())
	_connect()
	if DemoRunner.autoplay:
		for line in AUTOPLAY_LINES:
			_input.text = line
			_send()  # queued until the connection is up, then sent in order


func has_live_data() -> bool:
	return _echoes >= AUTOPLAY_LINES.size()


func _connect() -> void:
	_ws.connect_to_url(_url.text.strip_edges())


func _send() -> void:
	var text := _input.text
	if text.is_empty():
		return
	if _ws.send_text(text):
		say("→ %s" % text, SENT_COLOR)
		_input.clear()
