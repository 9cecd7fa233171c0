extends Control
## The tutorial's last example: type a line, press Send, and the WebSocket echo
## server's answer is appended to the log. The status line follows the
## connection (try stopping the server: it reconnects, and what you send
## meanwhile is queued and delivered once it is back).
##
## `cargo xtask demo` starts a local echo server and passes its URL in
## ASYNC_NET_DEMO_WS_URL; the URL field is editable. Headless, the demo sends a
## few lines and prints the echoes.

const HEADLESS_LINES := ["hello from Godot", "Zoë ✓ 🚀", "the last line"]

@onready var _ws: WsEcho = %WsEcho
@onready var _url: LineEdit = %Url
@onready var _input: LineEdit = %Input
@onready var _log: TextEdit = %Log
@onready var _status: Label = %Status


func _ready() -> void:
	var url := OS.get_environment("ASYNC_NET_DEMO_WS_URL")
	_url.text = url if not url.is_empty() else _ws.url
	_ws.connected.connect(func(_protocol: String) -> void: _say("connected to %s" % _ws.url))
	_ws.message_received.connect(func(text: String) -> void: _say("echo: %s" % text))
	_ws.binary_received.connect(func(data: PackedByteArray) -> void: _say("echo: %d bytes" % data.size()))
	_ws.closed.connect(func(code: int, reason: String) -> void: _say("closed: %d %s" % [code, reason]))
	_ws.error.connect(func(message: String) -> void: _say("error: %s" % message))
	_ws.state_changed.connect(func(_state: int) -> void: _show_status())
	%Connect.pressed.connect(_connect)
	%Send.pressed.connect(_send)
	_input.text_submitted.connect(func(_text: String) -> void: _send())
	_connect()
	if DemoRunner.headless:
		for line in HEADLESS_LINES:
			_input.text = line
			_send()  # queued until the connection is up, then sent in order


func _connect() -> void:
	_ws.connect_to_url(_url.text.strip_edges())
	_show_status()


func _send() -> void:
	var text := _input.text
	if text.is_empty():
		return
	if _ws.send_text(text):
		_say("sent: %s" % text)
		_input.clear()


func _show_status() -> void:
	var names := {
		WsEcho.STOPPED: "stopped",
		WsEcho.CONNECTING: "connecting…",
		WsEcho.CONNECTED: "connected",
		WsEcho.RECONNECTING: "reconnecting…",
		WsEcho.FAILED: "failed",
	}
	var stats := _ws.get_stats()
	_status.text = "%s — %s   (sent %d, received %d, queued %d)" % [
		names.get(_ws.state, "?"), _ws.url, stats.messages_sent, stats.messages_received, stats.queued]


func _process(_delta: float) -> void:
	_show_status()


func _say(text: String) -> void:
	DemoRunner.log_line("[ws] " + text)
	_log.text += text + "\n"
	_log.scroll_vertical = _log.get_line_count()
