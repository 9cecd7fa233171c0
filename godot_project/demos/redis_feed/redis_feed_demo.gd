extends Control
## The tutorial's Redis example as a feed panel: a RedisSubscriber listens to
## the `feed` channel and every `feed.*` channel; messages scroll in as they
## arrive, and the field below publishes to `feed`. `cargo xtask demo` starts
## a local redis-server and passes its URL in ASYNC_NET_DEMO_REDIS_URL; in a
## headless run the demo publishes a few messages itself and prints them.

const MAX_LINES := 500

@onready var _subscriber: RedisSubscriber = %RedisSubscriber
@onready var _feed: RichTextLabel = %Feed
@onready var _status: Label = %Status
@onready var _message: LineEdit = %Message

var _published_demo_messages := false


func _ready() -> void:
	var url := OS.get_environment("ASYNC_NET_DEMO_REDIS_URL")
	if not url.is_empty():
		_subscriber.url = url
	_subscriber.message_received.connect(_on_message)
	_subscriber.subscribed.connect(func(name: String) -> void: _say("subscribed to %s" % name))
	_subscriber.state_changed.connect(_on_state_changed)
	_subscriber.error.connect(func(message: String) -> void: _say("[error] %s" % message))
	%PublishButton.pressed.connect(_publish_field)
	_message.text_submitted.connect(func(_text: String) -> void: _publish_field())
	_say("connecting to %s" % _subscriber.url)
	_subscriber.start()


func _on_state_changed(state: int) -> void:
	var names := ["stopped", "connecting", "connected", "listening", "reconnecting", "failed"]
	_status.text = "Redis: %s" % names[state]
	if state == RedisSubscriber.CONNECTED and DemoRunner.headless and not _published_demo_messages:
		_published_demo_messages = true
		for text in ["hello from Godot", "a second message", "and a third"]:
			_publish("feed", text)
		_publish("feed.scores", "pattern subscriptions work too")
	elif state == RedisSubscriber.FAILED:
		_say("no Redis server at %s: install redis-server, or set ASYNC_NET_DEMO_REDIS_URL" % _subscriber.url)


func _on_message(channel: String, payload: String, pattern: String) -> void:
	var via := "" if pattern.is_empty() else " (via %s)" % pattern
	_say("%s%s: %s" % [channel, via, payload])


func _publish_field() -> void:
	var text := _message.text.strip_edges()
	if text.is_empty():
		return
	_message.clear()
	_publish("feed", text)


func _publish(channel: String, text: String) -> void:
	var task := _subscriber.publish(channel, text)
	task.completed.connect(func(receivers: int) -> void: DemoRunner.log_line("[redis] published to %s (%d receiver(s))" % [channel, receivers]))
	task.failed.connect(func(why: String) -> void: _say("[publish failed] %s" % why))


func _say(text: String) -> void:
	DemoRunner.log_line("[redis] " + text)
	_feed.append_text(text + "\n")
	while _feed.get_paragraph_count() > MAX_LINES:
		_feed.remove_paragraph(0)
