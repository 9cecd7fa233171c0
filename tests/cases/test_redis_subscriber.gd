## RedisSubscriber against real redis-servers started by `cargo xtask test` (ports in
## ASYNC_NET_TEST_REDIS_*), with redis-cli publishing and inspecting from outside. The restart
## test runs, kills and restarts a redis-server of its own on a free port.
extends "res://runner/test_case.gd"

const Env := preload("res://runner/env.gd")

var sub: RedisSubscriber
var port := 0
var cli := ""
var own_server_pid := 0


func _init() -> void:
	timeouts = {
		"test_server_restart_resubscribes_exactly_once": 40.0,
		"test_backlog_overflow_is_counted_and_reported_once": 30.0,
		"test_batch_signal_delivers_five_thousand_messages_once_in_order_and_the_per_message_signal_too": 30.0,
	}


func before_each() -> void:
	port = Env.port(Env.REDIS_PORT)
	cli = Env.value(Env.REDIS_CLI)
	assert_gt(port, 0, "ASYNC_NET_TEST_REDIS_PORT is set (run through `cargo xtask test`)")
	sub = RedisSubscriber.new()
	sub.autostart = false
	sub.url = "redis://127.0.0.1:%d" % port
	sub.reconnect_min_sec = 0.05
	sub.reconnect_max_sec = 0.3
	add_child(sub)


func after_each() -> void:
	if is_instance_valid(sub):
		sub.free()
	if own_server_pid > 0:
		OS.kill(own_server_pid)
		own_server_pid = 0


## Runs redis-cli against `on_port` and returns its output lines.
func redis_cli(args: Array, on_port := -1) -> PackedStringArray:
	var output := []
	var all := ["-h", "127.0.0.1", "-p", str(port if on_port < 0 else on_port)] + args
	OS.execute(cli, PackedStringArray(all), output, true)
	return output[0].strip_edges().split("\n") if output.size() > 0 else PackedStringArray()


## Starts the subscriber and waits until it is connected and every subscription confirmed.
func start_and_wait(subscriptions: int) -> bool:
	var subscribed := watch(sub, "subscribed")
	var needed := subscribed.count() + subscriptions
	sub.start()
	return await wait_until(func(): return sub.state == RedisSubscriber.CONNECTED and subscribed.count() >= needed, 10.0)


func start_own_server(on_port: int) -> bool:
	var program := Env.value(Env.REDIS_SERVER)
	own_server_pid = OS.create_process(program, ["--port", str(on_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", OS.get_temp_dir()])
	if not assert_gt(own_server_pid, 0, "started %s" % program):
		return false
	return await wait_until(func(): return redis_cli(["PING"], on_port) == PackedStringArray(["PONG"]), 10.0)


func test_channels_and_patterns_from_redis_cli() -> void:
	sub.channels = PackedStringArray(["news"])
	sub.patterns = PackedStringArray(["game.*"])
	var messages := watch(sub, "message_received")
	var subscribed := watch(sub, "subscribed")
	if not assert_true(await start_and_wait(2), "connected"):
		return
	assert_eq(subscribed.args(0), ["news"])
	assert_eq(subscribed.args(1), ["game.*"])
	assert_eq(redis_cli(["PUBLISH", "news", "hello world"]), PackedStringArray(["1"]))
	assert_eq(redis_cli(["PUBLISH", "game.start", "go"]), PackedStringArray(["1"]))
	assert_eq(redis_cli(["PUBLISH", "elsewhere", "x"]), PackedStringArray(["0"]))
	assert_true(await messages.wait(5.0, 2))
	assert_eq(messages.args(0), ["news", "hello world", ""])
	assert_eq(messages.args(1), ["game.start", "go", "game.*"], "the pattern argument")
	assert_eq(sub.get_stats().delivered, 2)


func test_runtime_subscribe_and_unsubscribe() -> void:
	if not assert_true(await start_and_wait(0)):
		return
	var subscribed := watch(sub, "subscribed")
	var unsubscribed := watch(sub, "unsubscribed")
	sub.subscribe("late")
	sub.psubscribe("score.*")
	assert_true(await subscribed.wait(5.0, 2))
	assert_eq(sub.channels, PackedStringArray(["late"]), "channels follows subscribe()")
	assert_eq(sub.patterns, PackedStringArray(["score.*"]))
	assert_eq(redis_cli(["PUBSUB", "NUMSUB", "late"]), PackedStringArray(["late", "1"]))
	sub.subscribe("late")
	sub.unsubscribe("late")
	sub.punsubscribe("score.*")
	assert_true(await unsubscribed.wait(5.0, 2))
	assert_eq(unsubscribed.args(0), ["late"])
	assert_eq(unsubscribed.args(1), ["score.*"])
	assert_eq(subscribed.count(), 2, "subscribing twice does not subscribe again")
	assert_eq(redis_cli(["PUBLISH", "late", "x"]), PackedStringArray(["0"]))
	assert_eq(redis_cli(["PUBLISH", "score.1", "x"]), PackedStringArray(["0"]))
	assert_eq(sub.channels.size() + sub.patterns.size(), 0)


func test_publish_completes_with_the_receiver_count_and_keeps_order() -> void:
	sub.channels = PackedStringArray(["room"])
	if not assert_true(await start_and_wait(1)):
		return
	var messages := watch(sub, "message_received")
	var nobody: AsyncTask = sub.publish("nobody-listens", "x")
	var done := watch(nobody, "completed")
	assert_true(await done.wait())
	assert_eq(done.args(0), [0])
	var last: AsyncTask
	for i in 300:
		last = sub.publish("room", "message %d" % i)
	var last_done := watch(last, "completed")
	assert_true(await last_done.wait())
	assert_eq(last_done.args(0), [1], "one receiver: this node")
	assert_true(await messages.wait(10.0, 300))
	var in_order := true
	for i in 300:
		in_order = in_order and messages.args(i)[1] == "message %d" % i
	assert_true(in_order, "ordering kept")
	assert_eq(sub.get_stats().published, 301)


func test_binary_payloads_are_byte_exact() -> void:
	sub.binary = true
	sub.channels = PackedStringArray(["bin"])
	if not assert_true(await start_and_wait(1)):
		return
	var received := watch(sub, "binary_message_received")
	var bytes := PackedByteArray([0xff, 0x00, 0xfe, 0x80, 0x41, 0xc3])
	var big := PackedByteArray()
	big.resize(1024 * 1024)
	for i in big.size():
		big[i] = (i * 7) % 251
	sub.publish("bin", bytes)
	sub.publish("bin", big)
	sub.publish("bin", PackedByteArray())
	assert_true(await received.wait(10.0, 3))
	assert_eq(received.args(0), ["bin", bytes, ""])
	assert_true(received.args(1)[1] == big, "1 MB payload byte-exact")
	assert_eq(received.args(2)[1], PackedByteArray())


func test_invalid_utf8_becomes_replacement_characters_in_text_mode() -> void:
	sub.channels = PackedStringArray(["text"])
	if not assert_true(await start_and_wait(1)):
		return
	var messages := watch(sub, "message_received")
	sub.publish("text", PackedByteArray([0x61, 0xff, 0x62]))
	sub.publish("text", "Zoë ✓")
	assert_true(await messages.wait(5.0, 2))
	assert_eq(messages.args(0)[1], "a\ufffdb")
	assert_eq(messages.args(1)[1], "Zoë ✓")


func test_a_message_over_max_message_bytes_closes_the_connection_with_a_clear_error() -> void:
	sub.max_message_bytes = 4096
	sub.channels = PackedStringArray(["big"])
	if not assert_true(await start_and_wait(1)):
		return
	var errors := watch(sub, "error")
	var messages := watch(sub, "message_received")
	expect_error("the server sent a reply larger than max_message_bytes (4096 bytes)")
	redis_cli(["PUBLISH", "big", "x".repeat(8192)])
	assert_true(await errors.wait(10.0, 1), "the oversize reply is refused")
	assert_true("max_message_bytes" in str(errors.args(0)[0]), "the error names the limit: %s" % errors.args(0)[0])
	assert_eq(messages.count(), 0, "nothing of it is delivered")
	# The node reconnects and resubscribes; a message within the bound arrives.
	assert_true(await wait_until(func(): return sub.state == RedisSubscriber.CONNECTED, 10.0), "reconnected")
	redis_cli(["PUBLISH", "big", "small"])
	assert_true(await messages.wait(10.0, 1))
	assert_eq(messages.args(0)[1], "small")


func test_server_restart_resubscribes_exactly_once() -> void:
	var own_port := free_port()
	if not await start_own_server(own_port):
		return
	sub.url = "redis://127.0.0.1:%d" % own_port
	sub.channels = PackedStringArray(["a"])
	sub.patterns = PackedStringArray(["p.*"])
	if not assert_true(await start_and_wait(2)):
		return
	sub.subscribe("b")
	var subscribed := watch(sub, "subscribed")
	assert_true(await subscribed.wait(5.0, 3), "runtime subscription confirmed")
	var errors := watch(sub, "error")
	var messages := watch(sub, "message_received")

	expect_error("redis://127.0.0.1:%d: connection lost" % own_port)
	# Until the server is back, each reconnect is refused.
	expect_error("redis://127.0.0.1:%d: cannot connect: connection refused" % own_port, ANY)
	OS.kill(own_server_pid)
	own_server_pid = 0
	assert_true(await wait_until(func(): return sub.state == RedisSubscriber.RECONNECTING, 10.0), "noticed the server is gone")
	assert_true(await errors.wait(5.0, 1), "the lost connection is reported")
	assert_true(await errors.wait(5.0, 2), "a reconnect while the server is down is refused")
	if not await start_own_server(own_port):
		return
	assert_true(await wait_until(func(): return sub.state == RedisSubscriber.CONNECTED and subscribed.count() >= 6, 15.0), "reconnected and resubscribed")
	assert_eq(redis_cli(["PUBSUB", "NUMSUB", "a", "b"], own_port), PackedStringArray(["a", "1", "b", "1"]), "each channel once")
	assert_eq(redis_cli(["PUBSUB", "NUMPAT"], own_port), PackedStringArray(["1"]), "the pattern once")
	assert_eq(redis_cli(["PUBLISH", "b", "after restart"], own_port), PackedStringArray(["1"]))
	assert_eq(redis_cli(["PUBLISH", "p.x", "pattern after restart"], own_port), PackedStringArray(["1"]))
	assert_true(await messages.wait(5.0, 2))
	assert_eq(messages.args(0), ["b", "after restart", ""])
	assert_eq(messages.args(1), ["p.x", "pattern after restart", "p.*"])
	assert_ge(sub.get_stats().reconnects, 1)


func test_wrong_password_fails_clearly_without_showing_it() -> void:
	var auth_port := Env.port(Env.REDIS_AUTH_PORT)
	var password := Env.value(Env.REDIS_PASSWORD)
	sub.url = "redis://:not-the-password@127.0.0.1:%d" % auth_port
	var errors := watch(sub, "error")
	expect_error("redis://***@127.0.0.1:%d: authentication failed" % auth_port)
	sub.start()
	assert_true(await wait_until(func(): return sub.state == RedisSubscriber.FAILED, 10.0), "gave up")
	var message := String(errors.args(0)[0]) if errors.count() > 0 else ""
	assert_true(message.contains("authentication failed"), message)
	assert_false(message.contains("not-the-password"), "password redacted: " + message)

	sub.url = "redis://:%s@127.0.0.1:%d" % [password, auth_port]
	sub.channels = PackedStringArray(["secure"])
	assert_true(await start_and_wait(1), "the right password works")


func test_backlog_overflow_is_counted_and_reported_once() -> void:
	sub.channels = PackedStringArray(["flood"])
	sub.max_backlog = 100
	sub.max_messages_per_frame = 1
	if not assert_true(await start_and_wait(1)):
		return
	var errors := watch(sub, "error")
	var messages := watch(sub, "message_received")
	expect_error("message backlog full: dropping the oldest messages")
	for i in 1000:
		sub.publish("flood", str(i))
	assert_true(await wait_until(func(): return sub.get_stats().received == 1000, 20.0), "all received")
	var stats := sub.get_stats()
	assert_gt(stats.dropped, 0)
	assert_eq(stats.dropped + stats.delivered + stats.backlog, 1000, "every message delivered, waiting or counted as dropped")
	assert_le(stats.backlog, 100)
	assert_eq(stats.overflows, 1)
	assert_true(await errors.wait(5.0, 1), "the overflow is reported")
	assert_true(String(errors.args(0)[0]).contains("backlog full"), str(errors.args(0)))
	assert_true(await wait_until(func(): return sub.get_stats().backlog == 0, 10.0))
	assert_eq(messages.args(-1)[1], "999", "the newest are kept")
	assert_eq(errors.count(), 1, "one error per overflow episode")


func test_nothing_is_dropped_below_the_bound() -> void:
	sub.channels = PackedStringArray(["steady"])
	sub.max_backlog = 1000
	sub.max_messages_per_frame = 5
	if not assert_true(await start_and_wait(1)):
		return
	var messages := watch(sub, "message_received")
	for i in 900:
		sub.publish("steady", str(i))
	assert_true(await messages.wait(20.0, 900))
	assert_eq(sub.get_stats().dropped, 0)
	assert_le(sub.get_stats().peak_backlog, 1000)


func test_bad_urls_fail_at_start() -> void:
	var errors := watch(sub, "error")
	var cases := {
		"not a url": "url 'not a url' has no scheme",
		"http://127.0.0.1:6379": "invalid url 'http://127.0.0.1:6379'",
		"redis://:hunter2@127.0.0.1:99999": "invalid url 'redis://***@127.0.0.1:99999'",
	}
	for url in cases:
		expect_error(cases[url])
		sub.url = url
		sub.start()
		assert_eq(sub.state, RedisSubscriber.FAILED, url)
		var message := String(errors.args(-1)[0])
		assert_true(message.contains("url"), message)
		assert_false(message.contains("hunter2"), message)


func test_refused_port_and_non_redis_server_are_explained() -> void:
	sub.url = "redis://127.0.0.1:%d" % free_port()
	sub.reconnect = false
	var errors := watch(sub, "error")
	expect_error("%s: cannot connect: connection refused" % sub.url)
	sub.start()
	assert_true(await wait_until(func(): return sub.state == RedisSubscriber.FAILED, 10.0))
	assert_true(String(errors.args(0)[0]).contains("connection refused"), str(errors.args(0)))

	# A line server that answers "OK ..." to what it takes for lines.
	var other := TcpSpawnerServer.new()
	other.port = 0
	other.spawn_nodes = false
	add_child(other)
	sub.url = "redis://127.0.0.1:%d" % other.get_bound_port()
	sub.connect_timeout_sec = 2.0
	# Either message below: what the server answered, or that it answered nothing in time.
	expect_error("%s: " % sub.url)
	sub.start()
	assert_true(await wait_until(func(): return sub.state == RedisSubscriber.FAILED, 10.0))
	var message := String(errors.args(-1)[0])
	assert_true(message.contains("not Redis protocol") or message.contains("no Redis handshake"), message)
	other.free()


func test_stop_disconnects_and_publish_then_fails() -> void:
	sub.channels = PackedStringArray(["bye"])
	if not assert_true(await start_and_wait(1)):
		return
	sub.stop()
	assert_eq(sub.state, RedisSubscriber.STOPPED)
	assert_true(await wait_until(func(): return redis_cli(["PUBSUB", "NUMSUB", "bye"]) == PackedStringArray(["bye", "0"]), 5.0), "the connection closed")
	expect_error("cannot publish: the RedisSubscriber is not started")
	var task: AsyncTask = sub.publish("bye", "x")
	var failed := watch(task, "failed")
	assert_true(await failed.wait())
	assert_true(String(failed.args(0)[0]).contains("not started"), str(failed.args(0)))


# --- Batch signals: messages_received, binary_messages_received --------------------------------

## Publishes `count` messages from the server itself (one redis-cli call): message i goes to
## "batch" when i is even, else to "bp.<i % 5>" (matched by the pattern "bp.*"); its payload is i.
func publish_mixed(count: int) -> void:
	var script := "for i = 0, %d do local ch = 'batch' if i %% 2 == 1 then ch = 'bp.' .. (i %% 5) end redis.call('PUBLISH', ch, tostring(i)) end return 1" % (count - 1)
	assert_eq(redis_cli(["EVAL", script, "0"]), PackedStringArray(["1"]))


## How a received message is recorded: "channel payload pattern".
func seen(channel: String, payload: String, pattern: String) -> String:
	return "%s %s %s" % [channel, payload, pattern]


func mixed_expected(count: int) -> Array[String]:
	var expected: Array[String] = []
	for i in count:
		expected.append(seen("batch", str(i), "") if i % 2 == 0 else seen("bp.%d" % (i % 5), str(i), "bp.*"))
	return expected


func test_batch_signal_delivers_five_thousand_messages_once_in_order_and_the_per_message_signal_too() -> void:
	sub.channels = PackedStringArray(["batch"])
	sub.patterns = PackedStringArray(["bp.*"])
	sub.max_messages_per_frame = 700
	var from_batches: Array[String] = []
	var from_each: Array[String] = []
	var sizes: Array[int] = []
	sub.messages_received.connect(func(channels: PackedStringArray, payloads: PackedStringArray, patterns: PackedStringArray) -> void:
		sizes.append(payloads.size())
		if channels.size() != payloads.size() or patterns.size() != payloads.size():
			from_batches.append("arrays of %d, %d and %d" % [channels.size(), payloads.size(), patterns.size()])
		for i in payloads.size():
			from_batches.append(seen(channels[i], payloads[i], patterns[i])))
	sub.message_received.connect(func(channel: String, payload: String, pattern: String) -> void:
		from_each.append(seen(channel, payload, pattern)))
	if not assert_true(await start_and_wait(2)):
		return
	publish_mixed(5000)
	assert_true(await wait_until(func(): return from_batches.size() >= 5000, 20.0), "5000 messages in batches (got %d)" % from_batches.size())
	await wait_frames(3)
	var expected := mixed_expected(5000)
	assert_sequence(from_batches, expected, "batch signal")
	assert_sequence(from_each, expected, "per-message signal")
	assert_false(sizes.has(0), "no empty batch")
	assert_le(sizes.max(), 700, "a batch is one delivery round: at most max_messages_per_frame")
	assert_eq(sub.get_stats().delivered, 5000)
	print("    5000 messages arrived in %d batches" % sizes.size())


func test_binary_batch_signal_is_byte_exact_and_ordered() -> void:
	sub.binary = true
	sub.channels = PackedStringArray(["bin"])
	var text_batches := watch(sub, "messages_received")
	if not assert_true(await start_and_wait(1)):
		return
	var payloads: Array[PackedByteArray] = []
	var channels: Array[String] = []
	sub.binary_messages_received.connect(func(batch_channels: PackedStringArray, batch: Array[PackedByteArray], patterns: PackedStringArray) -> void:
		for channel in batch_channels:
			channels.append(channel)
		payloads.append_array(batch)
		for pattern in patterns:
			if pattern != "":
				channels.append("unexpected pattern " + pattern))
	var sent: Array[PackedByteArray] = []
	for i in 300:
		var data := PackedByteArray([i % 256, i / 256, 0xff, 0x00, 0xc3])
		sent.append(data)
		sub.publish("bin", data)
	var big := PackedByteArray()
	big.resize(1024 * 1024)
	for i in big.size():
		big[i] = (i * 7) % 251
	sent.append(big)
	sub.publish("bin", big)
	assert_true(await wait_until(func(): return payloads.size() >= 301, 10.0), "301 messages (got %d)" % payloads.size())
	assert_eq(channels.size(), 301)
	assert_false(channels.has("unexpected pattern"), str(channels))
	var same := payloads.size() == sent.size()
	for i in mini(payloads.size(), sent.size()):
		same = same and payloads[i] == sent[i]
	assert_true(same, "every payload byte-exact, in order")
	assert_eq(text_batches.count(), 0, "the text batch signal stays quiet in binary mode")


func test_with_nothing_connected_messages_are_delivered_without_errors() -> void:
	sub.channels = PackedStringArray(["batch"])
	sub.patterns = PackedStringArray(["bp.*"])
	var errors := watch(sub, "error")
	if not assert_true(await start_and_wait(2)):
		return
	publish_mixed(1000)
	assert_true(await wait_until(func(): return sub.get_stats().delivered == 1000, 10.0), "delivered %d" % sub.get_stats().delivered)
	assert_eq(errors.count(), 0)


func test_a_batch_handler_may_stop_the_node() -> void:
	sub.channels = PackedStringArray(["batch"])
	sub.patterns = PackedStringArray(["bp.*"])
	sub.max_messages_per_frame = 10
	var errors := watch(sub, "error")
	var batches := [0]
	sub.messages_received.connect(func(_c: PackedStringArray, _p: PackedStringArray, _pat: PackedStringArray) -> void:
		batches[0] += 1
		sub.get_stats()
		sub.stop())
	if not assert_true(await start_and_wait(2)):
		return
	publish_mixed(100)
	assert_true(await wait_until(func(): return sub.state == RedisSubscriber.STOPPED, 5.0))
	await wait_frames(3)
	assert_eq(batches[0], 1, "no batch after stop()")
	assert_eq(errors.count(), 0)


func test_stop_from_a_per_message_handler_emits_no_batch_after_it() -> void:
	sub.channels = PackedStringArray(["batch"])
	var batches := watch(sub, "messages_received")
	var each := [0]
	sub.message_received.connect(func(_c: String, _p: String, _pat: String) -> void:
		each[0] += 1
		sub.stop())
	if not assert_true(await start_and_wait(1)):
		return
	publish_mixed(100)
	assert_true(await wait_until(func(): return sub.state == RedisSubscriber.STOPPED, 5.0))
	await wait_frames(3)
	assert_eq(each[0], 1)
	assert_eq(batches.count(), 0, "the batch begun before stop() is not emitted after it")


func test_rediss_to_redis_servers_own_tls_with_the_test_ca() -> void:
	var tls_port := Env.port(Env.REDIS_TLS_PORT)
	assert_gt(tls_port, 0, "ASYNC_NET_TEST_REDIS_TLS_PORT is set")
	sub.url = "rediss://127.0.0.1:%d" % tls_port
	sub.ca_file = Env.value(Env.WS_CA)
	sub.channels = PackedStringArray(["tls"])
	assert_true(await start_and_wait(1), "connected over TLS: %s" % sub.get_stats())
	var messages := watch(sub, "message_received")
	var published: AsyncTask = sub.publish("tls", "encrypted")
	var done := watch(published, "completed")
	assert_true(await done.wait(5.0, 1), "a publish over TLS completes")
	if done.count() >= 1:
		assert_eq(done.args(0)[0], 1, "one receiver: this subscriber")
	assert_true(await messages.wait(5.0, 1), "the message arrives over TLS")
	if messages.count() >= 1:
		assert_eq(messages.args(0), ["tls", "encrypted", ""])
	sub.stop()

	# Another CA: the certificate is refused, clearly.
	sub.ca_file = Env.value(Env.WS_WRONG_CA)
	sub.reconnect = false
	var errors := watch(sub, "error")
	expect_error("TLS handshake failed")
	sub.start()
	assert_true(await errors.wait(10.0, 1), "a certificate from another CA fails")
	if errors.count() >= 1:
		assert_true(str(errors.args(0)[0]).contains("set ca_file"), str(errors.args(0)))
