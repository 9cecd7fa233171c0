## Uses every node of the packaged addon once, against the services `cargo xtask test` starts
## (their ports in ASYNC_NET_TEST_* variables). Prints `PASS package::<what>` or
## `FAIL package::<what>: <why>` per check, then `N passed, N failed`, and quits (1 on a failure).
## Each wait has a deadline only so that a broken build fails instead of hanging.
extends Node

const Env := preload("res://runner/env.gd")

const AUTOLOAD := "*res://addons/async_net/async_hub.tscn"
const PLUGIN := "res://addons/async_net/plugin.cfg"
const DEADLINE_MSEC := 20000
## Upper bound of an idle `AsyncHub.step()` called from here: networking run from the editor
## must not be much slower than in an export. Measured: 0.14 µs with the editor library, which
## the editor loads and this project runs, 0.12 µs with the release library, 0.74 µs with an
## unoptimized build. xtask runs this scene without RUST_BACKTRACE, with which gdext's strict
## safeguards capture a backtrace at every bind() (5.7 µs a step).
const IDLE_STEP_LIMIT_USEC := 3.0

var _passed := 0
var _failed := 0


func _ready() -> void:
	_run.call_deferred()


func _run() -> void:
	_report("plugin_registered_the_autoload", _check_autoload())
	_report("idle_step", _check_idle_step())
	_report("async_hub_sleep", await _check_sleep())
	_report("tcp_spawner_server", await _check_tcp_spawner())
	_report("redis_subscriber", await _check_redis())
	_report("ws_echo", await _check_ws_echo())
	_report("radio_stream", await _check_radio())
	print("%d passed, %d failed" % [_passed, _failed])
	get_tree().quit(0 if _failed == 0 else 1)


func _check_autoload() -> String:
	if ProjectSettings.get_setting("autoload/AsyncHub", "") != AUTOLOAD:
		return "project.godot has no AsyncHub autoload: %s" % ProjectSettings.get_setting("autoload/AsyncHub", "")
	if not PLUGIN in ProjectSettings.get_setting("editor_plugins/enabled", PackedStringArray()):
		return "the Async Net plugin is not enabled in project.godot"
	var hub := get_node_or_null("/root/AsyncHub")
	if not hub is AsyncHub:
		return "/root/AsyncHub is %s, not the AsyncHub autoload" % hub
	return ""


## The fastest of 401 batches of 100 back-to-back calls: what the step itself costs, without
## the time a loaded machine gives to other processes during a batch (the median shows that).
func _check_idle_step() -> String:
	var batches := PackedFloat64Array()
	for batch in 401:
		var start := Time.get_ticks_usec()
		for i in 100:
			AsyncHub.step()
		batches.append((Time.get_ticks_usec() - start) / 100.0)
	batches.sort()
	print("INFO package::idle_step: an idle AsyncHub.step() costs %.2f µs (median of the batches %.2f µs)" % [
		batches[0], batches[batches.size() / 2]])
	if batches[0] > IDLE_STEP_LIMIT_USEC:
		return "an idle AsyncHub.step() costs %.2f µs, over %.1f µs" % [
			batches[0], IDLE_STEP_LIMIT_USEC]
	return ""


func _check_sleep() -> String:
	var done := []
	AsyncHub.sleep(0.05).completed.connect(func(result: Variant) -> void: done.append(result))
	if not await _until(func() -> bool: return not done.is_empty()):
		return "AsyncHub.sleep(0.05) never completed"
	return ""


func _check_tcp_spawner() -> String:
	var server := TcpSpawnerServer.new()
	server.port = 0
	var spawned := PackedStringArray()
	server.spawned.connect(func(node: Node, _peer: String) -> void: spawned.append(node.name))
	add_child(server)
	var port := server.get_bound_port()
	if port <= 0:
		server.free()
		return "the server did not listen (state %d)" % server.state
	var client := StreamPeerTCP.new()
	client.connect_to_host("127.0.0.1", port)
	await _until(func() -> bool:
		client.poll()
		return client.get_status() != StreamPeerTCP.STATUS_CONNECTING)
	client.put_data("Ada\n".to_utf8_buffer())
	var reply := PackedByteArray()
	await _until(func() -> bool:
		client.poll()
		var got: Array = client.get_partial_data(client.get_available_bytes())
		reply.append_array(got[1])
		return reply.has(10) or client.get_status() == StreamPeerTCP.STATUS_ERROR)
	client.disconnect_from_host()
	var text := reply.get_string_from_utf8().strip_edges()
	var problem := ""
	if text != "OK Ada":
		problem = "a real TCP client got %s, not \"OK Ada\"" % JSON.stringify(text)
	elif spawned != PackedStringArray(["Ada"]):
		problem = "spawned %s, not [Ada]" % spawned
	server.free()
	return problem


func _check_redis() -> String:
	var port := Env.port(Env.REDIS_PORT)
	if port <= 0:
		return "ASYNC_NET_TEST_REDIS_PORT is not set (run through `cargo xtask test`)"
	var redis := RedisSubscriber.new()
	redis.url = "redis://127.0.0.1:%d" % port
	redis.channels = PackedStringArray(["async_net:smoke"])
	var subscribed := []
	var received := []
	redis.subscribed.connect(func(channel: String) -> void: subscribed.append(channel))
	redis.message_received.connect(func(channel: String, payload: String, _pattern: String) -> void:
		received.append("%s %s" % [channel, payload]))
	add_child(redis)
	var problem := ""
	if not await _until(func() -> bool: return not subscribed.is_empty()):
		problem = "never subscribed to redis-server on port %d" % port
	else:
		var receivers := []
		redis.publish("async_net:smoke", "hello").completed.connect(func(n: Variant) -> void: receivers.append(n))
		if not await _until(func() -> bool: return not received.is_empty() and not receivers.is_empty()):
			problem = "published, but received %s with %s receivers" % [received, receivers]
		elif received != ["async_net:smoke hello"] or receivers != [1]:
			problem = "received %s with %s receivers" % [received, receivers]
	redis.free()
	return problem


func _check_ws_echo() -> String:
	var port := Env.port(Env.WS_PORT)
	if port <= 0:
		return "ASYNC_NET_TEST_WS_PORT is not set (run through `cargo xtask test`)"
	var ws := WsEcho.new()
	ws.url = "ws://127.0.0.1:%d/" % port
	var echoed := []
	ws.message_received.connect(func(text: String) -> void: echoed.append(text))
	add_child(ws)
	var problem := ""
	if not ws.send_text("hello from the package"):
		problem = "send_text was refused"
	elif not await _until(func() -> bool: return not echoed.is_empty()):
		problem = "no echo from the WebSocket server on port %d" % port
	elif echoed != ["hello from the package"]:
		problem = "echoed %s" % [echoed]
	ws.free()
	return problem


func _check_radio() -> String:
	var port := Env.port(Env.ICECAST_PORT)
	if port <= 0:
		return "ASYNC_NET_TEST_ICECAST_PORT is not set (run through `cargo xtask test`)"
	var player := AudioStreamPlayer.new()
	var radio := RadioStream.new()
	radio.prebuffer_sec = 0.2
	var infos := []
	radio.started.connect(func(info: Dictionary) -> void: infos.append(info))
	player.add_child(radio)
	add_child(player)
	radio.play("http://127.0.0.1:%d/test.mp3" % port)
	var problem := ""
	if not await _until(func() -> bool: return not infos.is_empty() and radio.get_stats().frames_pushed > 0):
		problem = "icecast's /test.mp3 did not play: started %s, stats %s" % [infos, radio.get_stats()]
	elif infos[0].codec != "mp3" or not player.playing:
		problem = "started %s, player playing: %s" % [infos[0], player.playing]
	radio.stop()
	player.free()
	return problem


## Waits frame by frame until `condition` holds; false if it did not by the deadline.
func _until(condition: Callable) -> bool:
	var deadline := Time.get_ticks_msec() + DEADLINE_MSEC
	while not condition.call():
		if Time.get_ticks_msec() > deadline:
			return false
		await get_tree().process_frame
	return true


func _report(what: String, problem: String) -> void:
	if problem.is_empty():
		_passed += 1
		print("PASS package::%s" % what)
	else:
		_failed += 1
		print("FAIL package::%s: %s" % [what, problem])
