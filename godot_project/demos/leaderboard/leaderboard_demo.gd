extends DemoScreen
## Two game instances (two columns of one scene, each with nodes of its own, as two game
## servers would have) share a leaderboard and a chat through Redis:
##
## - every score is an entry of the stream `{leaderboard}:scores`, added with
##   `RedisStreamConsumer.add()`; each instance reads the whole stream through a consumer
##   group of its own (every group gets every entry) and keeps its board from it, so a score is
##   never lost, even by an instance that was down when it was added;
## - the chat is the sharded channel `{leaderboard}:chat` (`RedisSubscriber.spublish` and
##   `shard_channels`): live only, as chat is.
##
## `cargo xtask demo` starts a local six-node Redis Cluster and passes its URLs in
## ASYNC_NET_DEMO_REDIS_CLUSTER_URLS; without it the demo uses the single redis-server of
## ASYNC_NET_DEMO_REDIS_URL (and a plain channel). Headless (and for screenshots) the instances
## score and chat by themselves.

const DemoEnv := preload("res://common/demo_env.gd")

const INFO := {
	"order": 7,
	"title": "Leaderboard",
	"summary": "Two game instances share a leaderboard through a stream and chat through a sharded channel.",
	"classes": "RedisStreamConsumer · RedisSubscriber",
	"tag": "leaderboard",
}

## One hash tag: the stream and the channel live on the same shard of the cluster.
const STREAM := "{leaderboard}:scores"
const CHAT := "{leaderboard}:chat"
const PLAYERS := ["Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara"]
const AUTOPLAY_EVERY_SEC := 1.2
const CHAT_LINES := ["gg", "nice run!", "rematch?", "who is Ada anyway", "one more"]

## One game instance: its nodes, its board, its views.
class Instance:
	var name := ""
	var consumer: RedisStreamConsumer
	var chat: RedisSubscriber
	var board := {}
	var scores := 0
	var chats := 0
	var board_view: RichTextLabel
	var chat_view: RichTextLabel
	var line: LineEdit

var _instances: Array[Instance] = []
var _cluster := false
var _autoplay: AsyncTask
var _ticks := 0


func _ready() -> void:
	super()
	var urls := DemoEnv.value(DemoEnv.REDIS_CLUSTER_URLS).split(",", false)
	var url := DemoEnv.value(DemoEnv.REDIS_URL)
	_cluster = not urls.is_empty()
	if _cluster:
		url = urls[0]
	elif url.is_empty():
		url = "redis://127.0.0.1:6379"
	%Server.text = ("cluster " if _cluster else "") + url
	for name in ["A", "B"]:
		_instances.append(_make_instance(name, url, urls.slice(1)))
	say("connecting to %s%s" % [url, " (a Redis Cluster of %d nodes)" % urls.size() if _cluster else ""])


func _make_instance(name: String, url: String, seeds: PackedStringArray) -> Instance:
	var it := Instance.new()
	it.name = name
	it.consumer = RedisStreamConsumer.new()
	it.consumer.autostart = false
	it.consumer.url = url
	it.consumer.cluster = _cluster
	it.consumer.cluster_urls = seeds
	it.consumer.stream = STREAM
	# A group per instance: each one sees every score, from the start of the stream.
	it.consumer.group = "board-" + name.to_lower()
	it.consumer.consumer = "instance-" + name.to_lower()
	it.consumer.start_id = "0"
	it.consumer.add_wait_replicas = 1 if _cluster else 0
	it.chat = RedisSubscriber.new()
	it.chat.autostart = false
	it.chat.url = url
	it.chat.cluster = _cluster
	it.chat.cluster_urls = seeds
	if _cluster:
		it.chat.shard_channels = PackedStringArray([CHAT])
	else:
		it.chat.channels = PackedStringArray([CHAT])
	add_child(it.consumer)
	add_child(it.chat)
	status.watch(it.consumer, ["received", "acked"])
	it.consumer.entry_received.connect(_on_score.bind(it))
	it.consumer.error.connect(func(message: String) -> void: say("%s: %s" % [name, message], ERROR_COLOR))
	it.consumer.state_changed.connect(_on_state_changed)
	it.chat.message_received.connect(func(_channel: String, text: String, _pattern: String) -> void:
		it.chats += 1
		it.chat_view.append_text(text + "\n")
		say("%s heard %s" % [name, text], RECEIVED_COLOR))
	it.chat.error.connect(func(message: String) -> void: say("%s chat: %s" % [name, message], ERROR_COLOR))
	_build_column(it)
	it.consumer.start()
	it.chat.start()
	return it


func _build_column(it: Instance) -> void:
	var card := PanelContainer.new()
	card.theme_type_variation = &"Card"
	card.size_flags_horizontal = Control.SIZE_EXPAND_FILL
	var column := VBoxContainer.new()
	column.add_theme_constant_override("separation", 8)
	card.add_child(column)
	var heading := Label.new()
	heading.theme_type_variation = &"Section"
	heading.text = "GAME INSTANCE %s  ·  GROUP %s" % [it.name, it.consumer.group.to_upper()]
	column.add_child(heading)
	it.board_view = _view(column, 110)
	var chat_heading := Label.new()
	chat_heading.theme_type_variation = &"Muted"
	chat_heading.text = "chat"
	column.add_child(chat_heading)
	it.chat_view = _view(column, 0)
	it.chat_view.scroll_following = true
	var row := HBoxContainer.new()
	row.add_theme_constant_override("separation", 8)
	it.line = LineEdit.new()
	it.line.placeholder_text = "Say something"
	it.line.size_flags_horizontal = Control.SIZE_EXPAND_FILL
	it.line.text_submitted.connect(func(_text: String) -> void: _send_chat(it))
	var send := Button.new()
	send.text = "Send"
	send.pressed.connect(_send_chat.bind(it))
	var score := Button.new()
	score.text = "Score!"
	score.theme_type_variation = &"PrimaryButton"
	score.pressed.connect(_add_score.bind(it))
	for control in [it.line, send, score]:
		row.add_child(control)
	column.add_child(row)
	%Instances.add_child(card)
	_draw_board(it)


func _view(parent: Control, height: int) -> RichTextLabel:
	var view := RichTextLabel.new()
	view.theme_type_variation = &"LogView"
	view.custom_minimum_size = Vector2(0, height)
	view.size_flags_vertical = Control.SIZE_EXPAND_FILL if height == 0 else Control.SIZE_FILL
	parent.add_child(view)
	return view


func has_live_data() -> bool:
	return _instances.all(func(it: Instance) -> bool: return it.scores >= 3 and it.chats >= 1)


func _on_state_changed(state: int) -> void:
	var connected := _instances.all(func(it: Instance) -> bool: return it.consumer.state == RedisStreamConsumer.CONNECTED)
	if connected and DemoRunner.autoplay and _autoplay == null:
		_autoplay = AsyncHub.interval(AUTOPLAY_EVERY_SEC)
		_autoplay.ticked.connect(_autoplay_tick)
	elif state == RedisStreamConsumer.FAILED:
		say("no Redis at %s: run `cargo xtask demo`, or set ASYNC_NET_DEMO_REDIS_URL" % %Server.text, ERROR_COLOR)


func _autoplay_tick(count: int) -> void:
	var it := _instances[count % _instances.size()]
	_add_score(it)
	if count % 3 == 0:
		it.line.text = CHAT_LINES[(count / 3) % CHAT_LINES.size()]
		_send_chat(it)


func _exit_tree() -> void:
	if _autoplay:
		_autoplay.cancel()


func _add_score(it: Instance) -> void:
	_ticks += 1
	var player: String = PLAYERS[(_ticks * 7 + it.name.unicode_at(0)) % PLAYERS.size()]
	var points := 10 * (_ticks % 5 + 1)
	var task := it.consumer.add({"player": player, "points": points, "by": it.name})
	task.completed.connect(func(id: String) -> void: say("%s added +%d for %s as %s" % [it.name, points, player, id], SENT_COLOR))


func _send_chat(it: Instance) -> void:
	var text := it.line.text.strip_edges()
	if text.is_empty():
		return
	it.line.clear()
	var line := "%s: %s" % [it.name, text]
	if _cluster:
		it.chat.spublish(CHAT, line)
	else:
		it.chat.publish(CHAT, line)


func _on_score(id: String, fields: Dictionary, it: Instance) -> void:
	it.scores += 1
	var player: String = fields.get("player", "?")
	it.board[player] = int(it.board.get(player, 0)) + int(fields.get("points", "0"))
	_draw_board(it)
	say("%s read %s: %s +%s (board: %s)" % [it.name, id, player, fields.get("points", "?"), it.board], RECEIVED_COLOR)


func _draw_board(it: Instance) -> void:
	var players := it.board.keys()
	players.sort_custom(func(a: String, b: String) -> bool: return it.board[a] > it.board[b])
	it.board_view.clear()
	it.board_view.append_text("%d scores read\n" % it.scores)
	for i in mini(players.size(), 5):
		it.board_view.append_text("%d.  %s  %d\n" % [i + 1, players[i], it.board[players[i]]])
