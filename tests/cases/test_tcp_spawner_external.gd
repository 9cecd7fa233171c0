## TcpSpawnerServer against real TCP clients in another process (Python sockets).
extends "res://runner/test_case.gd"

const Clients := preload("res://helpers/external_clients.gd")

var server: TcpSpawnerServer
var world: Node3D


func before_each() -> void:
	world = Node3D.new()
	add_child(world)
	server = TcpSpawnerServer.new()
	server.port = 0
	world.add_child(server)


func after_each() -> void:
	if is_instance_valid(world):
		world.free()


## Runs the clients (each a list of steps) against the server; returns their results.
func run_clients(clients: Array) -> Array:
	var result: Dictionary = await Clients.run(get_tree(), {"port": server.get_bound_port(), "clients": clients})
	assert_false(result.has("error"), str(result.get("error", "")))
	return result.get("clients", [])


func test_fifty_clients_at_once_each_get_their_replies_in_order() -> void:
	var clients := []
	for i in 50:
		clients.append([{"send": "p%d_a\np%d_b\r\np%d_c\n" % [i, i, i]}, {"read": 3}])
	var results := await run_clients(clients)
	assert_eq(results.size(), 50)
	for i in results.size():
		assert_eq(results[i].replies, ["OK p%d_a" % i, "OK p%d_b" % i, "OK p%d_c" % i], str(results[i]))
	assert_eq(world.get_child_count(), 1 + 150, "150 nodes spawned")
	assert_eq(server.get_stats().spawned, 150)


func test_sanitized_unique_names() -> void:
	var results := await run_clients([[{"send": "Zoë/1\nZoë:1\n\n@Zoë%1\n"}, {"read": 3}]])
	assert_eq(results[0].replies, ["OK Zoë_1", "OK Zoë_2", "OK _Zoë_1"], "Godot-style numbering")


func test_every_limit_answers_its_error_and_others_keep_being_served() -> void:
	server.max_line_bytes = 32
	server.max_spawns_per_second = 2
	server.start()
	expect_error("line too long")
	var results := await run_clients([
		[{"send": "y".repeat(100) + "\n"}, {"read": 1}, {"expect_eof": true}],
		[{"send_hex": "c328e282a80a"}, {"send": "fine\n"}, {"read": 2}],
		[{"send": "r1\nr2\nr3\n"}, {"read": 3}],
		[{"send": "steady\n"}, {"read": 1}],
	])
	assert_eq(results[0].replies, ["ERR line too long"])
	assert_true(results[0].eof, "closed after line too long")
	assert_eq(results[1].replies, ["ERR invalid utf-8", "OK fine"])
	assert_eq(results[2].replies, ["OK r1", "OK r2", "ERR rate limited"])
	assert_eq(results[3].replies, ["OK steady"])


func test_too_many_clients_token_and_idle_timeout() -> void:
	server.max_clients = 1
	server.token = "letmein"
	# Long enough for the second client to connect while the first still holds the slot.
	server.idle_timeout_sec = 1.5
	server.start()
	expect_error("too many clients")
	expect_error("idle timeout")
	# The first client takes the only slot; a second one connecting while the first is still
	# there is refused; then the first, idle, is closed.
	var results := await run_clients([
		[{"send": "letmein\nHero\n"}, {"read": 2}, {"set": "hero in"}, {"wait": "refused"}, {"read": 1}, {"expect_eof": true}],
		[{"wait": "hero in"}, {"read": 1}, {"expect_eof": true}, {"set": "refused"}],
	])
	assert_eq(results[0].replies, ["OK authenticated", "OK Hero", "ERR idle timeout"], str(results[0]))
	assert_true(results[0].eof, "the idle client is closed")
	assert_eq(results[1].replies, ["ERR too many clients"], "the second client, at once: %s" % results[1])
	assert_true(results[1].eof, "and closed")
	# The slot is free again: a client with the wrong token takes it and is refused.
	expect_error("bad token")
	results = await run_clients([[{"send": "wrong\nVillain\n"}, {"read": 1}, {"expect_eof": true}]])
	assert_eq(results[0].replies, ["ERR bad token"])
	assert_true(results[0].eof)
	assert_false(world.has_node("Villain"))


func test_a_client_that_disconnects_mid_line_spawns_nothing() -> void:
	var disconnected := watch(server, "client_disconnected")
	var results := await run_clients([
		[{"send": "Half"}, {"close": true}],
		[{"send": "Whole\n"}, {"read": 1}],
	])
	assert_eq(results[1].replies, ["OK Whole"])
	assert_true(await disconnected.wait(5.0, 2), "both clients' disconnects seen")
	assert_false(world.has_node("Half"))
	assert_true(world.has_node("Whole"))


func test_freeing_the_server_closes_every_client_and_frees_the_port() -> void:
	var port := server.get_bound_port()
	var connected := watch(server, "client_connected")
	var pending: Array = [null]
	var run := func() -> void:
		pending[0] = await run_clients([[{"expect_eof": true}], [{"expect_eof": true}], [{"expect_eof": true}]])
	run.call()
	assert_true(await connected.wait(10.0, 3), "three clients connected")
	server.free()
	assert_true(await wait_until(func(): return pending[0] != null, 10.0))
	for result in pending[0]:
		assert_true(result.eof, "every client sees the close: %s" % result)
	var again := TcpSpawnerServer.new()
	again.port = port
	world.add_child(again)
	assert_eq(again.state, TcpSpawnerServer.CONNECTING, "re-listening on the same port at once succeeds")
	assert_eq(again.get_bound_port(), port)
