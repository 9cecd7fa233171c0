extends DemoScreen
## HTTP without blocking a frame: a JSON feed fetched with one
## `await AsyncHub.fetch(url).completed` and shown as a list, and a live price
## ticker read from a server-sent-events stream (`HttpSession.stream()`), each
## event a signal as it arrives. `cargo xtask demo` starts the aiohttp server
## of the tests (tests/helpers/http_server.py) and passes its base URL in
## ASYNC_NET_DEMO_HTTP_URL. Headless (and for screenshots) the demo prints the
## feed and the ticks it receives.

const DemoEnv := preload("res://common/demo_env.gd")

const INFO := {
	"order": 6,
	"title": "Fetch",
	"summary": "A JSON feed in one await of AsyncHub.fetch, and a live ticker of server-sent events.",
	"classes": "AsyncHub.fetch · HttpSession · HttpStream",
	"tag": "fetch",
}

## Where the feed and the ticker are when ASYNC_NET_DEMO_HTTP_URL is not set.
const DEFAULT_URL := "http://127.0.0.1:8080/"
## One ticker event every this many milliseconds.
const TICK_MSEC := 700
## The chart draws from zero: it shows how far the price is above this floor (the ticker's prices
## stay between 91 and 109).
const CHART_FLOOR := 90.0
const UP_COLOR := Color(0.298, 0.851, 0.482)
const DOWN_COLOR := Color(0.937, 0.357, 0.357)

var _base_url := DEFAULT_URL
## The feed request in flight (the hub owns it: cancelled when the demo closes).
var _feed_task: AsyncTask
var _stream: HttpStream
var _feed_items := 0
var _ticks := 0
var _last_price := 0.0
var _told_missing := false

@onready var _session: HttpSession = %HttpSession
@onready var _items: VBoxContainer = %Items


func _ready() -> void:
	super()
	status.watch(_session, ["requests", "in_flight", "failed", "bytes_received"])
	var url := DemoEnv.value(DemoEnv.HTTP_URL)
	if not url.is_empty():
		_base_url = url if url.ends_with("/") else url + "/"
	_session.base_url = _base_url
	%Server.text = _base_url
	%Refresh.pressed.connect(refresh_feed)
	refresh_feed()
	_start_ticker()


func has_live_data() -> bool:
	return _feed_items > 0 and _ticks >= 3


func _exit_tree() -> void:
	if _feed_task:
		_feed_task.cancel()


## Fetches the feed and shows it: the whole request is one await.
func refresh_feed() -> void:
	if _feed_task and not _feed_task.is_done():
		return
	%Updated.text = "fetching %sfeed…" % _base_url
	_feed_task = AsyncHub.fetch(_base_url + "feed")
	_feed_task.failed.connect(func(message: String) -> void:
		%Updated.text = "no feed: %s" % message
		say("feed failed: %s" % message, ERROR_COLOR)
		_say_missing_server(message))
	var res: HttpResponse = await _feed_task.completed
	if not res.is_ok():
		%Updated.text = "the feed answered %d" % res.status
		return
	var feed: Variant = res.json()
	if not feed is Dictionary:
		%Updated.text = "the feed is not a JSON object"
		return
	_show_feed(feed)


func _show_feed(feed: Dictionary) -> void:
	for row in _items.get_children():
		row.queue_free()
	var items: Array = feed.get("items", [])
	for item: Dictionary in items:
		_items.add_child(_feed_row(item))
		DemoRunner.log_line("[fetch] feed: [%s] %s" % [item.get("tag", ""), item.get("title", "")])
	_feed_items = items.size()
	%Updated.text = "%d items  ·  updated %s" % [items.size(), feed.get("updated", "?")]


## A row of the feed list: the item's tag, its title, and how old it is.
func _feed_row(item: Dictionary) -> Control:
	var row := HBoxContainer.new()
	row.add_theme_constant_override("separation", 12)
	var tag := Label.new()
	tag.theme_type_variation = &"Pill"
	tag.text = String(item.get("tag", "")).to_upper()
	tag.custom_minimum_size = Vector2(112, 0)
	tag.horizontal_alignment = HORIZONTAL_ALIGNMENT_CENTER
	tag.size_flags_vertical = Control.SIZE_SHRINK_CENTER
	var title := Label.new()
	title.theme_type_variation = &"Value"
	title.text = item.get("title", "")
	title.size_flags_horizontal = Control.SIZE_EXPAND_FILL
	title.text_overrun_behavior = TextServer.OVERRUN_TRIM_ELLIPSIS
	var age := Label.new()
	age.theme_type_variation = &"Muted"
	age.text = "%d min" % item.get("minutes_ago", 0)
	for label in [tag, title, age]:
		row.add_child(label)
	return row


## Opens the ticker: every server-sent event arrives as `event_received`.
func _start_ticker() -> void:
	_stream = _session.stream("GET", "sse/ticker", {"query": {"interval": TICK_MSEC}})
	_stream.response_started.connect(func(status_code: int, _headers: Dictionary) -> void:
		say("ticker stream open (HTTP %d)" % status_code))
	_stream.event_received.connect(_on_event)
	_stream.failed.connect(func(message: String) -> void:
		say("ticker failed: %s" % message, ERROR_COLOR)
		_say_missing_server(message))


func _on_event(event: String, data: String, id: String) -> void:
	var tick: Variant = JSON.parse_string(data)
	if not tick is Dictionary:
		say("%s #%s: %s" % [event, id, data])
		return
	_ticks += 1
	var price: float = tick.get("price", 0.0)
	var change := price - _last_price if _ticks > 1 else 0.0
	_last_price = price
	%Price.text = "%.2f" % price
	var change_label: Label = %Change
	change_label.text = "%+.2f since the last tick  ·  event #%s" % [change, id]
	change_label.add_theme_color_override("font_color", UP_COLOR if change >= 0.0 else DOWN_COLOR)
	(%Chart as Sparkline).push(maxf(price - CHART_FLOOR, 0.0))
	say("%s #%s  %.2f  %+.2f" % [event, id, price, change], RECEIVED_COLOR)


## Says once how to get the server, when a request found none.
func _say_missing_server(message: String) -> void:
	if "connect" in message.to_lower() and not _told_missing:
		_told_missing = true
		say("no HTTP server at %s: run `cargo xtask demo`, or set ASYNC_NET_DEMO_HTTP_URL" % _base_url, ERROR_COLOR)
