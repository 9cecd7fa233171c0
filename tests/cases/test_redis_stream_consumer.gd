## RedisStreamConsumer against the redis-server started by `cargo xtask test` (port in
## ASYNC_NET_TEST_REDIS_PORT), with redis-cli adding and inspecting from outside. Every test
## uses a stream of its own. The restart test runs, kills and restarts a redis-server of its own.
extends "res://runner/test_case.gd"

const Env := preload("res://runner/env.gd")

var consumer: RedisStreamConsumer
var port := 0
var cli := ""
var stream := ""
var own_server_pid := 0


func _init() -> void:
	timeouts = {
		"test_reconnects_after_a_redis_server_restart_and_loses_nothing": 40.0,
		"test_batch_signal_delivers_and_acknowledges_two_thousand_entries_in_order": 30.0,
	}


func before_each() -> void:
	port = Env.port(Env.REDIS_PORT)
	cli = Env.value(Env.REDIS_CLI)
	assert_gt(port, 0, "ASYNC_NET_TEST_REDIS_PORT is set (run through `cargo xtask test`)")
	stream = "stream-%d" % Time.get_ticks_usec()
	consumer = make_consumer("game")


func after_each() -> void:
	if is_instance_valid(consumer):
		consumer.free()
	if own_server_pid > 0:
		OS.kill(own_server_pid)
		own_server_pid = 0


func make_consumer(name: String) -> RedisStreamConsumer:
	var node := RedisStreamConsumer.new()
	node.autostart = false
	node.url = "redis://127.0.0.1:%d" % port
	node.stream = stream
	node.group = "players"
	node.consumer = name
	node.start_id = "0"
	node.reconnect_min_sec = 0.05
	node.reconnect_max_sec = 0.3
	add_child(node)
	return node


## Runs redis-cli against `on_port` and returns its output lines.
func redis_cli(args: Array, on_port := -1) -> PackedStringArray:
	var output := []
	var all := ["-h", "127.0.0.1", "-p", str(port if on_port < 0 else on_port)] + args
	OS.execute(cli, PackedStringArray(all), output, true)
	return output[0].strip_edges().split("\n") if output.size() > 0 else PackedStringArray()


func xadd(fields: Array, on_port := -1) -> String:
	return redis_cli(["XADD", stream, "*"] + fields, on_port)[0]


## Entries pending in the group (delivered, not acknowledged).
func pending(on_port := -1) -> int:
	return redis_cli(["XPENDING", stream, "players"], on_port)[0].to_int()


func start_and_wait(node: RedisStreamConsumer) -> bool:
	node.start()
	return await wait_until(func(): return node.state == RedisStreamConsumer.CONNECTED, 10.0)


func ids_of(watcher: SignalWatcher) -> Array:
	return watcher.emissions.map(func(args: Array) -> String: return args[0])


func test_creates_the_group_and_delivers_fields_in_order_and_acknowledges_them() -> void:
	var entries := watch(consumer, "entry_received")
	if not assert_true(await start_and_wait(consumer), "connected"):
		return
	assert_true(redis_cli(["XINFO", "GROUPS", stream]).has("players"), "group created with MKSTREAM")
	var first := xadd(["item", "sword", "price", "10"])
	var second := xadd(["item", "shield ✓", "price", "12"])
	assert_true(await entries.wait(5.0, 2))
	assert_eq(entries.args(0), [first, {"item": "sword", "price": "10"}])
	assert_eq(entries.args(1), [second, {"item": "shield ✓", "price": "12"}])
	assert_eq((entries.args(0)[1] as Dictionary).keys(), ["item", "price"], "fields in the producer's order")
	assert_true(await wait_until(func(): return pending() == 0 and consumer.get_stats().acked == 2), "auto_ack after the handler returned")
	var stats := consumer.get_stats()
	assert_eq([stats.received, stats.delivered, stats.redelivered], [2, 2, 0])
	assert_eq(stats.consumer, "game")


func test_own_pending_entries_come_first_after_a_restart_then_manual_ack() -> void:
	consumer.auto_ack = false
	var entries := watch(consumer, "entry_received")
	if not assert_true(await start_and_wait(consumer)):
		return
	var ids := [xadd(["n", "1"]), xadd(["n", "2"]), xadd(["n", "3"])]
	assert_true(await entries.wait(5.0, 3))
	assert_true(consumer.ack(ids[0]), "ack() queued")
	assert_true(await wait_until(func(): return pending() == 2), "one acknowledged by hand, two pending")
	consumer.stop()
	var later := xadd(["n", "4"])
	entries.clear()
	if not assert_true(await start_and_wait(consumer)):
		return
	assert_true(await entries.wait(5.0, 3))
	assert_eq(ids_of(entries), [ids[1], ids[2], later], "own pending entries first, then the new one")
	assert_eq(consumer.get_stats().redelivered, 2)
	for id in [ids[1], ids[2], later]:
		consumer.ack(id)
	assert_true(await wait_until(func(): return pending() == 0))
	expect_error("ack: 'not-an-id' is not a stream entry id")
	assert_false(consumer.ack("not-an-id"))
	consumer.stop()
	assert_false(consumer.ack(later), "not started")


func test_entries_of_a_dead_consumer_are_claimed() -> void:
	# "dead" reads two entries through redis-cli and never acknowledges them.
	assert_eq(redis_cli(["XGROUP", "CREATE", stream, "players", "0", "MKSTREAM"]), PackedStringArray(["OK"]))
	var ids := [xadd(["n", "1"]), xadd(["n", "2"])]
	redis_cli(["XREADGROUP", "GROUP", "players", "dead", "COUNT", "2", "STREAMS", stream, ">"])
	assert_eq(pending(), 2)
	consumer.claim_idle_sec = 0.2
	var entries := watch(consumer, "entry_received")
	if not assert_true(await start_and_wait(consumer)):
		return
	assert_true(await entries.wait(5.0, 2), "claimed")
	assert_eq(ids_of(entries), ids)
	assert_true(await wait_until(func(): return pending() == 0), "acknowledged")
	assert_eq(consumer.get_stats().claimed, 2)


func test_an_entry_that_keeps_failing_is_dead_lettered() -> void:
	consumer.auto_ack = false
	consumer.claim_idle_sec = 0.1
	consumer.max_deliveries = 3
	var entries := watch(consumer, "entry_received")
	var dead := watch(consumer, "dead_lettered")
	if not assert_true(await start_and_wait(consumer)):
		return
	var poison := xadd(["item", "poison"])
	assert_true(await dead.wait(10.0, 1), "dead-lettered")
	assert_eq(dead.args(0), [poison, {"item": "poison"}])
	assert_eq(ids_of(entries), [poison, poison, poison], "delivered max_deliveries times")
	assert_eq(redis_cli(["XLEN", stream + ":dead"]), PackedStringArray(["1"]), "in <stream>:dead")
	assert_eq(redis_cli(["XRANGE", stream + ":dead", "-", "+"]).slice(1), PackedStringArray(["item", "poison"]))
	assert_eq(pending(), 0, "acknowledged once moved")
	assert_eq(consumer.get_stats().dead_lettered, 1)


func test_add_completes_with_the_new_id_and_binary_fields_are_byte_exact() -> void:
	consumer.binary = true
	var entries := watch(consumer, "entry_received")
	if not assert_true(await start_and_wait(consumer)):
		return
	var bytes := PackedByteArray([0xff, 0x00, 0xfe, 0x80, 0x41])
	var task: AsyncTask = consumer.add({"data": bytes, "n": 7})
	var done := watch(task, "completed")
	assert_true(await done.wait())
	var id: String = done.args(0)[0]
	assert_true(id.contains("-"), id)
	assert_eq(redis_cli(["XRANGE", stream, "-", "+"])[0], id, "the id XADD gave")
	assert_true(await entries.wait(5.0, 1), "delivered: %s" % consumer.get_stats())
	assert_eq(entries.args(0)[0], id)
	assert_eq(entries.args(0)[1], {"data": bytes, "n": "7".to_utf8_buffer()}, "values as PackedByteArray, exact")
	var elsewhere: AsyncTask = consumer.add({"x": "y"}, stream + ":other")
	var other := watch(elsewhere, "completed")
	assert_true(await other.wait())
	assert_eq(redis_cli(["XLEN", stream + ":other"]), PackedStringArray(["1"]))
	var empty: AsyncTask = consumer.add({})
	var refused := watch(empty, "failed")
	expect_error("an entry needs at least one field")
	assert_true(await refused.wait())
	assert_eq(consumer.get_stats().added, 2)


func test_add_with_wait_replicas_fails_when_no_replica_holds_the_entry() -> void:
	consumer.add_wait_replicas = 1
	consumer.add_wait_timeout_sec = 0.1
	if not assert_true(await start_and_wait(consumer)):
		return
	var task: AsyncTask = consumer.add({"k": "v"})
	var failed := watch(task, "failed")
	expect_error("replicas held it")
	assert_true(await failed.wait())
	assert_true(String(failed.args(0)[0]).contains("only 0 of 1 replicas"), failed.args(0)[0])


func test_batch_signal_delivers_and_acknowledges_two_thousand_entries_in_order() -> void:
	var batches := watch(consumer, "entries_received")
	var each := watch(consumer, "entry_received")
	each.clear()
	if not assert_true(await start_and_wait(consumer)):
		return
	var last: AsyncTask
	for i in 2000:
		last = consumer.add({"n": str(i)})
	var done := watch(last, "completed")
	assert_true(await done.wait(10.0))
	assert_true(await wait_until(func(): return consumer.get_stats().delivered >= 2000, 15.0))
	var numbers := []
	for args in batches.emissions:
		assert_eq((args[0] as PackedStringArray).size(), (args[1] as Array).size())
		for fields in args[1]:
			numbers.append(int(fields["n"]))
	assert_eq(numbers, range(2000), "every entry once, in order")
	assert_lt(batches.count(), 2000, "batched")
	assert_true(await wait_until(func(): return pending() == 0), "acknowledged after the batch handler")
	assert_eq(each.count(), 2000, "the per-entry signal fires too")


func test_reconnects_after_a_redis_server_restart_and_loses_nothing() -> void:
	var own_port := free_port()
	if not await start_own_server(own_port):
		return
	consumer.url = "redis://127.0.0.1:%d" % own_port
	var entries := watch(consumer, "entry_received")
	if not assert_true(await start_and_wait(consumer)):
		return
	var before := xadd(["n", "before"], own_port)
	assert_true(await entries.wait(5.0, 1))
	expect_error("redis://127.0.0.1:%d: connection lost" % own_port, ANY)
	expect_error("redis://127.0.0.1:%d: cannot connect: connection refused" % own_port, ANY)
	OS.kill(own_server_pid)
	own_server_pid = 0
	assert_true(await wait_until(func(): return consumer.state == RedisStreamConsumer.RECONNECTING, 10.0), "noticed")
	# Until the server is back, each reconnect is refused.
	assert_true(await wait_until(func(): return consumer.get_stats().reconnects >= 2, 10.0), "refused while down")
	if not await start_own_server(own_port):
		return
	# The new server is empty: the group is created again, and what is added now arrives.
	assert_true(await wait_until(func(): return consumer.state == RedisStreamConsumer.CONNECTED, 15.0), "reconnected")
	var after := xadd(["n", "after"], own_port)
	assert_true(await entries.wait(5.0, 2))
	assert_eq(ids_of(entries), [before, after])
	assert_ge(consumer.get_stats().reconnects, 1)


func start_own_server(on_port: int) -> bool:
	var program := Env.value(Env.REDIS_SERVER)
	own_server_pid = OS.create_process(program, ["--port", str(on_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", OS.get_temp_dir()])
	if not assert_gt(own_server_pid, 0, "started %s" % program):
		return false
	return await wait_until(func(): return redis_cli(["PING"], on_port) == PackedStringArray(["PONG"]), 10.0)


func test_bad_settings_and_a_missing_group_fail_clearly() -> void:
	consumer.stream = ""
	expect_error("stream is empty")
	consumer.start()
	assert_eq(consumer.state, RedisStreamConsumer.FAILED)
	consumer.stream = stream
	consumer.start_id = "yesterday"
	expect_error("start_id")
	consumer.start()
	assert_eq(consumer.state, RedisStreamConsumer.FAILED)
	consumer.start_id = "$"
	consumer.create_group = false
	consumer.reconnect = false
	var errors := watch(consumer, "error")
	expect_error("has no consumer group 'players'")
	consumer.start()
	assert_true(await wait_until(func(): return consumer.state == RedisStreamConsumer.FAILED, 10.0), "gave up")
	assert_true(String(errors.args(-1)[0]).contains("create_group"), errors.args(-1)[0])
