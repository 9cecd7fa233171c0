## Run in a Godot subprocess by tests/cases/test_lifecycle.gd: every node with traffic flowing
## (WebSocket echoes, Redis messages published by the node to itself, stream entries the
## consumer adds and reads, TCP lines spawning nodes, the radio playing), then `change_scene_to_file()` to a fresh copy of this scene while that
## traffic is in flight, `--changes=N` times; the last copy quits during traffic.
##
## Prints `TRAFFIC scene K ok (...)` once traffic flowed in copy K, then `QUITTING <unix time>`
## right before `get_tree().quit()`; the test measures how long the process takes to exit after
## that and checks its log. Services come from the same ASYNC_NET_TEST_* variables as the tests;
## `--port=P` is the spawner's fixed port (each copy listens on it again at once).
extends Node

const Env := preload("res://runner/env.gd")

const SCENE := "res://lifecycle/traffic.tscn"
const LIMIT_MSEC := 30_000

static var copies := 0

var ws: WsEcho
var sub: RedisSubscriber
var consumer: RedisStreamConsumer
var radio: RadioStream
var server: TcpSpawnerServer
var client := StreamPeerTCP.new()
var counts := {"ws": 0, "redis": 0, "stream": 0, "spawned": 0}
var changes := 3
var port := 0
var started_msec := 0
var done := false


func _ready() -> void:
	Engine.max_fps = 60
	copies += 1
	started_msec = Time.get_ticks_msec()
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--changes="):
			changes = arg.trim_prefix("--changes=").to_int()
		elif arg.begins_with("--port="):
			port = arg.trim_prefix("--port=").to_int()
	ws = WsEcho.new()
	ws.url = "ws://127.0.0.1:%s/" % Env.value(Env.WS_PORT)
	ws.message_received.connect(func(_text: String) -> void: counts.ws += 1)
	add_child(ws)
	sub = RedisSubscriber.new()
	sub.url = "redis://127.0.0.1:%s" % Env.value(Env.REDIS_PORT)
	sub.channels = PackedStringArray(["traffic:%d" % OS.get_process_id()])
	sub.message_received.connect(func(_c: String, _p: String, _pattern: String) -> void: counts.redis += 1)
	add_child(sub)
	consumer = RedisStreamConsumer.new()
	consumer.url = sub.url
	consumer.stream = "traffic:%d" % OS.get_process_id()
	consumer.group = "traffic"
	consumer.entry_received.connect(func(_id: String, _fields: Dictionary) -> void: counts.stream += 1)
	add_child(consumer)
	radio = RadioStream.new()
	radio.url = "http://127.0.0.1:%s/test.mp3" % Env.value(Env.ICECAST_PORT)
	add_child(radio)
	radio.play()
	server = TcpSpawnerServer.new()
	server.port = port
	server.max_spawns_per_second = 1000
	server.spawned.connect(func(node: Node, _peer: String) -> void:
		counts.spawned += 1
		node.queue_free())
	add_child(server)


func _process(_delta: float) -> void:
	if done:
		return
	if Time.get_ticks_msec() - started_msec > LIMIT_MSEC:
		printerr("TRAFFIC scene %d: no traffic after %d ms: %s, states ws %d redis %d stream %d radio %d tcp %d" % [copies, LIMIT_MSEC, counts, ws.state, sub.state, consumer.state, radio.state, server.state])
		done = true
		get_tree().quit(3)
		return
	_make_traffic()
	var flowing: bool = counts.ws >= 10 and counts.redis >= 10 and counts.stream >= 10 and counts.spawned >= 10 \
			and radio.get_stats().get("frames_pushed", 0) > 0
	if not flowing:
		return
	done = true
	print("TRAFFIC scene %d ok (%s, radio frames %d)" % [copies, counts, radio.get_stats().frames_pushed])
	# More traffic in flight right before the change or the quit.
	for i in 20:
		_make_traffic()
	if copies <= changes:
		get_tree().change_scene_to_file(SCENE)
	else:
		print("QUITTING %.6f" % Time.get_unix_time_from_system())
		get_tree().quit(0)


func _make_traffic() -> void:
	if ws.state == WsEcho.CONNECTED:
		ws.send_text("hello")
	if sub.state == RedisSubscriber.CONNECTED:
		sub.publish(sub.channels[0], "hello")
	if consumer.state == RedisStreamConsumer.CONNECTED:
		consumer.add({"hello": "world"})
	if server.state == TcpSpawnerServer.LISTENING:
		match client.get_status():
			StreamPeerTCP.STATUS_NONE, StreamPeerTCP.STATUS_ERROR:
				client.connect_to_host("127.0.0.1", server.get_bound_port())
			StreamPeerTCP.STATUS_CONNECTED:
				client.put_data("unit\n".to_utf8_buffer())
				client.get_partial_data(client.get_available_bytes())
		client.poll()
