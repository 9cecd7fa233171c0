extends DemoScreen
## The tutorial's Redis example as a feed panel: a RedisSubscriber listens to
## the `feed` channel and every `feed.*` channel; messages scroll in as they
## arrive, and the field below publishes to `feed`. `cargo xtask demo` starts
## a local redis-server and passes its URL in ASYNC_NET_DEMO_REDIS_URL. Headless
## (and for screenshots) the demo publishes a few messages itself, then a score
## update every couple of seconds, and prints what it receives.

const DemoEnv := preload("res://common/demo_env.gd")

const INFO := {
	"order": 3,
	"title": "Redis feed",
	"summary": "Redis pub/sub as signals: every message on feed and feed.* arrives as message_received.",
	"classes": "RedisSubscriber",
	"tag": "redis",
}

const AUTOPLAY_MESSAGES := [
	["feed", "hello from Godot"],
	["feed", "a second message"],
	["feed", "and a third"],
	["feed.scores", "pattern subscriptions work too"],
]
const PLAYERS := ["Ada", "Grace", "Linus", "Margaret", "Alan"]
const SCORE_EVERY_SEC := 2.0

@onready var _subscriber: RedisSubscriber = %RedisSubscriber
@onready var _message: LineEdit = %Message

var _autoplay_started := false
## The hub's interval that publishes score updates (the hub owns it: cancelled when the demo closes).
var _scores: AsyncTask
var _received := 0


func _ready() -> void:
	super()
	status.watch(_subscriber, ["received", "published", "channels", "patterns", "reconnects"])
	var url := DemoEnv.value(DemoEnv.REDIS_URL)
	if not url.is_empty():
		_subscriber.url = url
	%Server.text = _subscriber.url
	%Subscriptions.text = "channels %s  ·  patterns %s" % [
		", ".join(_subscriber.channels), ", ".join(_subscriber.patterns)]
	_subscriber.message_received.connect(_on_message)
	_subscriber.subscribed.connect(func(name: String) -> void: say("subscribed to %s" % name))
	_subscriber.state_changed.connect(_on_state_changed)
	_subscriber.error.connect(func(message: String) -> void: say("error: %s" % message, ERROR_COLOR))
	%PublishButton.pressed.connect(_publish_field)
	_message.text_submitted.connect(func(_text: String) -> void: _publish_field())
	say("connecting to %s" % _subscriber.url)
	_subscriber.start()


func has_live_data() -> bool:
	return _received >= AUTOPLAY_MESSAGES.size() + 1


func _on_state_changed(state: int) -> void:
	if state == RedisSubscriber.CONNECTED and DemoRunner.autoplay and not _autoplay_started:
		_autoplay_started = true
		for message in AUTOPLAY_MESSAGES:
			_publish(message[0], message[1])
		_scores = AsyncHub.interval(SCORE_EVERY_SEC)
		_scores.ticked.connect(func(count: int) -> void:
			_publish("feed.scores", "%s scored, %d points" % [PLAYERS[count % PLAYERS.size()], 100 * (count % 7 + 1)]))
	elif state == RedisSubscriber.FAILED:
		say("no Redis server at %s: install redis-server, or set ASYNC_NET_DEMO_REDIS_URL" % _subscriber.url, ERROR_COLOR)


func _exit_tree() -> void:
	if _scores:
		_scores.cancel()


func _on_message(channel: String, payload: String, pattern: String) -> void:
	_received += 1
	var via := "" if pattern.is_empty() else " (via %s)" % pattern
	say("%s%s: %s" % [channel, via, payload], RECEIVED_COLOR)


func _publish_field() -> void:
	var text := _message.text.strip_edges()
	if text.is_empty():
		return
	_message.clear()
	_publish("feed", text)


func _publish(channel: String, text: String) -> void:
	var task := _subscriber.publish(channel, text)
	task.completed.connect(func(receivers: int) -> void:
		DemoRunner.log_line("[redis] published to %s (%d receiver(s))" % [channel, receivers]))
	task.failed.connect(func(why: String) -> void: say("publish failed: %s" % why, ERROR_COLOR))
