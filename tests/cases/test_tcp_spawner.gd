## TcpSpawnerServer against real TCP clients (Godot's own StreamPeerTCP).
extends "res://runner/test_case.gd"

const LineReader := preload("res://helpers/line_reader.gd")

var server: TcpSpawnerServer
var parent: Node3D
var clients: Array[StreamPeerTCP] = []


func before_each() -> void:
	parent = Node3D.new()
	parent.name = "World"
	add_child(parent)
	server = TcpSpawnerServer.new()
	server.port = 0
	parent.add_child(server)


func after_each() -> void:
	for client in clients:
		client.disconnect_from_host()
	clients.clear()
	if is_instance_valid(parent):
		parent.free()


## Opens a client and waits until it is connected.
func connect_client() -> StreamPeerTCP:
	var client := StreamPeerTCP.new()
	clients.append(client)
	assert_eq(client.connect_to_host("127.0.0.1", server.get_bound_port()), OK)
	await wait_until(func():
		client.poll()
		return client.get_status() != StreamPeerTCP.STATUS_CONNECTING)
	assert_eq(client.get_status(), StreamPeerTCP.STATUS_CONNECTED, "client connected")
	return client


## Reads one reply line ("" on timeout or close).
func read_line(client: StreamPeerTCP, timeout_sec := 5.0) -> String:
	return await LineReader.read_line(get_tree(), client, timeout_sec)


## Waits until the server has closed the client.
func wait_closed(client: StreamPeerTCP) -> bool:
	return await wait_until(func():
		client.poll()
		if client.get_status() == StreamPeerTCP.STATUS_CONNECTED and client.get_available_bytes() > 0:
			client.get_data(client.get_available_bytes())
		return client.get_status() != StreamPeerTCP.STATUS_CONNECTED)


func send(client: StreamPeerTCP, text: String) -> void:
	client.put_data(text.to_utf8_buffer())


func test_listens_on_a_free_port_and_reports_it() -> void:
	var listening := watch(server, "listening")
	var states := watch(server, "state_changed")
	assert_gt(server.get_bound_port(), 0, "port known right after start")
	assert_true(await listening.wait())
	assert_eq(listening.args(0), [server.get_bound_port()])
	assert_eq(server.state, TcpSpawnerServer.LISTENING)
	assert_eq(states.args(-1), [TcpSpawnerServer.LISTENING])


func test_each_line_spawns_a_named_node_and_is_answered() -> void:
	var spawned := watch(server, "spawned")
	var lines := watch(server, "line_received")
	var connected := watch(server, "client_connected")
	var client: StreamPeerTCP = await connect_client()
	send(client, "Alice\nBob\r\n\nAlice\n")
	assert_eq(await read_line(client), "OK Alice")
	assert_eq(await read_line(client), "OK Bob")
	assert_eq(await read_line(client), "OK Alice2", "names are made unique")
	assert_eq(spawned.count(), 3)
	assert_eq(lines.count(), 3, "empty lines are ignored")
	var node: Node = spawned.args(0)[0]
	assert_true(node is Node3D, "without a scene a Node3D is spawned")
	assert_eq(node.get_parent(), parent, "default spawn parent: the server's parent")
	assert_eq(str(node.name), "Alice")
	assert_true(parent.has_node("Alice2"))
	assert_eq(connected.count(), 1)
	assert_eq(spawned.args(0)[1], connected.args(0)[0], "spawned carries the peer")


func test_the_scene_and_spawn_parent_are_used() -> void:
	var target := Node.new()
	target.name = "Target"
	parent.add_child(target)
	var scene := PackedScene.new()
	var label := Label.new()
	label.text = "from scene"
	scene.pack(label)
	label.free()
	server.scene = scene
	server.spawn_parent = NodePath("../Target")
	server.start()
	var client: StreamPeerTCP = await connect_client()
	send(client, "Carol\n")
	assert_eq(await read_line(client), "OK Carol")
	var carol := target.get_node_or_null("Carol")
	assert_true(carol is Label)
	assert_eq(carol.text if carol else "", "from scene")


func test_names_are_sanitized() -> void:
	var client: StreamPeerTCP = await connect_client()
	send(client, "a.b:c@d/e\"f%g\n   \n  spaced  \n")
	assert_eq(await read_line(client), "OK a_b_c_d_e_f_g")
	assert_eq(await read_line(client), "ERR empty name", "a line of spaces names nothing")
	assert_eq(await read_line(client), "OK spaced")
	send(client, ".\n")
	assert_eq(await read_line(client), "OK _")


func test_a_line_too_long_is_refused_and_closes_the_client() -> void:
	server.max_line_bytes = 64
	server.start()
	var errors := watch(server, "error")
	var client: StreamPeerTCP = await connect_client()
	expect_error("line too long")
	send(client, "x".repeat(65) + "\n")
	assert_eq(await read_line(client), "ERR line too long")
	assert_true(await wait_closed(client), "closed after a fatal error")
	assert_true(await errors.wait(5.0, 1))
	assert_true(String(errors.args(0)[0]).contains("line too long"), str(errors.args(0)))


func test_invalid_utf8_is_skipped_and_the_client_kept() -> void:
	var client: StreamPeerTCP = await connect_client()
	client.put_data(PackedByteArray([0xff, 0xfe, 10]))
	assert_eq(await read_line(client), "ERR invalid utf-8")
	send(client, "Dave\n")
	assert_eq(await read_line(client), "OK Dave")


func test_too_many_clients() -> void:
	server.max_clients = 2
	server.start()
	var first: StreamPeerTCP = await connect_client()
	var second: StreamPeerTCP = await connect_client()
	send(first, "one\n")
	send(second, "two\n")
	assert_eq(await read_line(first), "OK one")
	assert_eq(await read_line(second), "OK two")
	expect_error("too many clients")
	var third: StreamPeerTCP = await connect_client()
	assert_eq(await read_line(third), "ERR too many clients")
	assert_true(await wait_closed(third))


func test_token_is_required_when_set() -> void:
	server.token = "s3cret"
	server.start()
	var good: StreamPeerTCP = await connect_client()
	send(good, "s3cret\nEve\n")
	assert_eq(await read_line(good), "OK authenticated")
	assert_eq(await read_line(good), "OK Eve")
	var bad: StreamPeerTCP = await connect_client()
	expect_error("bad token")
	send(bad, "guess\nMallory\n")
	assert_eq(await read_line(bad), "ERR bad token")
	assert_true(await wait_closed(bad))
	assert_false(parent.has_node("Mallory"))
	assert_false(parent.has_node("guess"))


func test_every_rejected_client_emits_error_though_the_log_is_throttled() -> void:
	# The log gets one line per kind of error per second (with a count of those
	# suppressed); the error signal still fires for every client.
	server.token = "s3cret"
	server.start()
	var errors := watch(server, "error")
	# What the log shows: at least the first, at most one a second.
	expect_error("bad token", ANY)
	for i in 20:
		var bad: StreamPeerTCP = await connect_client()
		send(bad, "guess %d\n" % i)
		assert_eq(await read_line(bad), "ERR bad token")
		assert_true(await wait_closed(bad))
	assert_true(await errors.wait(5.0, 20), "20 error signals, got %d" % errors.count())
	for i in 20:
		assert_true(String(errors.args(i)[0]).contains("bad token"), str(errors.args(i)))


func test_max_nodes_caps_the_nodes_alive_until_the_game_frees_some() -> void:
	server.max_nodes = 3
	server.start()
	var client: StreamPeerTCP = await connect_client()
	send(client, "a\nb\nc\nd\n")
	assert_eq(await read_line(client), "OK a")
	assert_eq(await read_line(client), "OK b")
	assert_eq(await read_line(client), "OK c")
	assert_eq(await read_line(client), "ERR too many nodes")
	assert_false(parent.has_node("d"))
	# Not fatal: once the game frees one, the next line spawns again.
	parent.get_node("b").free()
	send(client, "e\n")
	assert_eq(await read_line(client), "OK e")
	assert_true(parent.has_node("e"))


func test_rate_limit() -> void:
	server.max_spawns_per_second = 3
	server.start()
	var client: StreamPeerTCP = await connect_client()
	send(client, "a\nb\nc\nd\n")
	var replies := []
	for i in 4:
		replies.append(await read_line(client))
	assert_eq(replies, ["OK a", "OK b", "OK c", "ERR rate limited"])


func test_idle_clients_are_closed() -> void:
	server.idle_timeout_sec = 0.2
	server.start()
	expect_error("idle timeout")
	var client: StreamPeerTCP = await connect_client()
	assert_eq(await read_line(client), "ERR idle timeout")
	assert_true(await wait_closed(client))


func test_stop_disconnects_everyone_and_frees_the_port() -> void:
	var client: StreamPeerTCP = await connect_client()
	send(client, "Frank\n")
	assert_eq(await read_line(client), "OK Frank")
	var port := server.get_bound_port()
	server.stop()
	assert_eq(server.state, TcpSpawnerServer.STOPPED)
	assert_eq(server.get_bound_port(), 0)
	assert_true(await wait_closed(client), "client sees the close")
	var probe := TCPServer.new()
	assert_eq(probe.listen(port, "127.0.0.1"), OK, "port reusable at once")
	probe.stop()


func test_a_busy_port_fails_clearly() -> void:
	var other := TcpSpawnerServer.new()
	other.port = server.get_bound_port()
	var errors := watch(other, "error")
	expect_error("cannot listen on 127.0.0.1:%d" % other.port)
	parent.add_child(other)
	assert_eq(other.state, TcpSpawnerServer.FAILED)
	assert_eq(errors.count(), 1)
	assert_true(String(errors.args(0)[0]).contains("cannot listen"), str(errors.args(0)))


func test_stats_count_clients_lines_and_spawns() -> void:
	var client: StreamPeerTCP = await connect_client()
	send(client, "g1\ng2\n")
	await read_line(client)
	await read_line(client)
	var stats := server.get_stats()
	assert_eq(stats.clients, 1)
	assert_eq(stats.spawned, 2)
	assert_eq(stats.lines, 2)
	assert_eq(stats.port, server.get_bound_port())


func test_a_handler_may_queue_free_the_server_mid_line() -> void:
	server.spawned.connect(func(_node, _peer): server.queue_free(), CONNECT_ONE_SHOT)
	var client: StreamPeerTCP = await connect_client()
	send(client, "Last\n")
	assert_true(await wait_closed(client), "the server's sockets closed")
	assert_eq(AsyncHub.task_count(), 0)


func test_with_spawning_off_lines_are_answered_but_nothing_spawns() -> void:
	server.spawn_nodes = false
	server.start()
	var lines := watch(server, "line_received")
	watch(server, "spawned")
	var client: StreamPeerTCP = await connect_client()
	send(client, "Ghost\n")
	assert_eq(await read_line(client), "OK Ghost")
	assert_eq(lines.count(), 1)
	assert_false(parent.has_node("Ghost"))
	assert_signal_not_emitted(server, "spawned")


func test_handlers_may_call_back_into_the_server_from_start_and_stop() -> void:
	var seen: Array = []
	server.state_changed.connect(func(state: int) -> void: seen.append([state, server.get_stats().state]))
	server.error.connect(func(_message: String) -> void: seen.append(["error", server.get_bound_port()]))
	server.stop()
	server.port = 70000
	expect_error("port must be 0 to 65535, got 70000")
	server.start()
	assert_eq(seen, [[TcpSpawnerServer.STOPPED, TcpSpawnerServer.STOPPED], ["error", 0],
		[TcpSpawnerServer.FAILED, TcpSpawnerServer.FAILED]])
