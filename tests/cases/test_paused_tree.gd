## Nodes in a paused tree: the network nodes keep their connections and deliver while
## `get_tree().paused` is true (AsyncHub steps with PROCESS_MODE_ALWAYS and the nodes do no
## per-frame work of their own), and RadioStream does what its class docs say: it feeds its
## player in `_process`, so it pauses with the tree unless both it and the player are ALWAYS.
## Real servers: redis-server, the WebSocket echo server and the project's radio station.
extends "res://runner/test_case.gd"

const Env := preload("res://runner/env.gd")

var nodes: Array[Node] = []
## Where the nodes under test live: PAUSABLE, as a game's scene is (the runner keeps the test
## case itself ALWAYS so that it can wait while the tree is paused).
var holder: Node


func _init() -> void:
	timeouts = {"test_network_nodes_connect_and_deliver_while_the_tree_is_paused": 30.0}


func before_each() -> void:
	holder = Node.new()
	holder.process_mode = Node.PROCESS_MODE_PAUSABLE
	add_child(holder)


func after_each() -> void:
	get_tree().paused = false
	for node in nodes:
		if is_instance_valid(node):
			node.free()
	nodes.clear()
	holder.free()


func own(node: Node) -> Node:
	nodes.append(node)
	holder.add_child(node)
	return node


func test_network_nodes_connect_and_deliver_while_the_tree_is_paused() -> void:
	var redis_port := Env.port(Env.REDIS_PORT)
	var ws_port := Env.port(Env.WS_PORT)
	assert_gt(redis_port, 0, "ASYNC_NET_TEST_REDIS_PORT is set (run through `cargo xtask test`)")
	assert_gt(ws_port, 0, "ASYNC_NET_TEST_WS_PORT is set")
	get_tree().paused = true
	await wait_frames(1)
	assert_false(holder.can_process(), "the nodes' subtree is paused")

	# Started in the paused tree: they connect there too.
	var sub: RedisSubscriber = own(RedisSubscriber.new())
	sub.autostart = false
	sub.url = "redis://127.0.0.1:%d" % redis_port
	sub.channels = PackedStringArray(["paused-tree"])
	var ws: WsEcho = own(WsEcho.new())
	ws.autostart = false
	ws.url = "ws://127.0.0.1:%d/" % ws_port
	var spawner: TcpSpawnerServer = own(TcpSpawnerServer.new())
	spawner.autostart = false
	spawner.port = 0
	spawner.scene = load("res://editor_tests/robot.tscn")
	var parent: Node = own(Node.new())
	spawner.spawn_parent = spawner.get_path_to(parent)
	var session: HttpSession = own(HttpSession.new())

	var subscribed := watch(sub, "subscribed")
	sub.start()
	ws.start()
	spawner.start()
	assert_true(await wait_until(func(): return sub.state == RedisSubscriber.CONNECTED and subscribed.count() >= 1, 10.0),
		"the subscriber connects and subscribes while paused")
	assert_true(await wait_until(func(): return ws.state == WsEcho.CONNECTED, 10.0), "the WebSocket connects while paused")
	assert_true(await wait_until(func(): return spawner.get_bound_port() > 0, 5.0), "the spawner listens while paused")

	# Redis: a message published by another client arrives.
	var messages := watch(sub, "message_received")
	var published: AsyncTask = sub.publish("paused-tree", "hello")
	assert_true(await messages.wait(10.0, 1), "a Redis message arrives while paused")
	if messages.count() >= 1:
		assert_eq(messages.args(0), ["paused-tree", "hello", ""])
	assert_true(published.is_done(), "the publish completed")

	# WebSocket: the echo comes back.
	var echoes := watch(ws, "message_received")
	assert_true(ws.send_text("while paused"))
	assert_true(await echoes.wait(10.0, 1), "the echo arrives while paused")
	if echoes.count() >= 1:
		assert_eq(echoes.args(0), ["while paused"])

	# TCP spawner: a line spawns into the paused tree and is answered.
	var client := StreamPeerTCP.new()
	assert_eq(client.connect_to_host("127.0.0.1", spawner.get_bound_port()), OK)
	assert_true(await wait_until(func():
		client.poll()
		return client.get_status() == StreamPeerTCP.STATUS_CONNECTED, 5.0), "a TCP client connects")
	client.put_data("Paused\n".to_utf8_buffer())
	var reply := ""
	var deadline := Time.get_ticks_msec() + 10000
	while not reply.ends_with("\n") and Time.get_ticks_msec() < deadline:
		client.poll()
		var available := client.get_available_bytes()
		if available > 0:
			reply += client.get_utf8_string(available)
		await wait_frames(1)
	assert_eq(reply, "OK Paused\n", "the spawner answers while paused")
	assert_true(parent.get_node_or_null("Paused") != null, "the instance joined the paused tree")
	client.disconnect_from_host()

	# HTTP: a request completes.
	var nginx := Env.port(Env.NGINX_PORT)
	assert_gt(nginx, 0, "ASYNC_NET_TEST_NGINX_PORT is set")
	var task: AsyncTask = session.request("GET", "http://127.0.0.1:%d/" % nginx)
	var done := watch(task, "completed")
	assert_true(await done.wait(10.0, 1), "an HTTP request completes while paused")
	if done.count() >= 1:
		var response: HttpResponse = done.args(0)[0]
		assert_eq(response.status, 200)

	assert_true(get_tree().paused, "still paused throughout")


func test_radio_pauses_with_the_tree_and_plays_on_when_both_are_always() -> void:
	var station_port := Env.port(Env.STATION_PORT)
	assert_gt(station_port, 0, "ASYNC_NET_TEST_STATION_PORT is set (run through `cargo xtask test`)")
	var radio: RadioStream = own(RadioStream.new())
	radio.prebuffer_sec = 0.2
	var started := watch(radio, "started")
	radio.play("http://127.0.0.1:%d/stream.mp3" % station_port)
	assert_true(await started.wait(10.0, 1), "the radio starts")
	await wait_seconds(0.5)

	# Paused with the tree (process mode INHERIT): the node stops feeding its player.
	get_tree().paused = true
	await wait_frames(2)
	var pushed: int = radio.get_stats().frames_pushed
	await wait_seconds(1.0)
	assert_eq(radio.get_stats().frames_pushed, pushed, "no audio is fed while the tree is paused")
	assert_eq(radio.state, RadioStream.CONNECTED, "the stream stays connected while paused")

	# Unpaused: audio flows again.
	get_tree().paused = false
	await wait_seconds(0.5)
	assert_gt(radio.get_stats().frames_pushed, pushed, "audio flows again after the pause")

	# Both the node and its player ALWAYS: it plays on through a pause.
	radio.process_mode = Node.PROCESS_MODE_ALWAYS
	for child in radio.get_children(true):
		if child is AudioStreamPlayer:
			child.process_mode = Node.PROCESS_MODE_ALWAYS
	get_tree().paused = true
	await wait_frames(2)
	pushed = radio.get_stats().frames_pushed
	await wait_seconds(1.0)
	assert_gt(radio.get_stats().frames_pushed, pushed, "audio is fed through the pause when both are ALWAYS")
