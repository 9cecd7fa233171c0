## WsEcho against an independent server: the Python `websockets` package (tests/helpers/
## ws_server.py), started by `cargo xtask test` on free loopback ports for ws and wss (ports and
## CA files in ASYNC_NET_TEST_WS*). The restart test runs, kills and restarts its own server.
extends "res://runner/test_case.gd"

const Env := preload("res://runner/env.gd")

var ws: WsEcho
var port := 0
var own_server_pid := 0


func _init() -> void:
	timeouts = {
		"test_server_killed_and_restarted_queued_messages_arrive_in_order": 40.0,
		"test_ten_thousand_messages_keep_their_order": 30.0,
		"test_batch_signals_deliver_ten_thousand_mixed_messages_once_in_order_and_per_message_signals_too": 30.0,
	}


func before_each() -> void:
	port = Env.port(Env.WS_PORT)
	assert_gt(port, 0, "ASYNC_NET_TEST_WS_PORT is set (run through `cargo xtask test`)")
	ws = WsEcho.new()
	ws.autostart = false
	ws.reconnect_min_sec = 0.05
	ws.reconnect_max_sec = 0.3
	add_child(ws)


func after_each() -> void:
	if is_instance_valid(ws):
		ws.free()
	if own_server_pid > 0:
		OS.kill(own_server_pid)
		own_server_pid = 0


func url(path := "/", on_port := -1) -> String:
	return "ws://127.0.0.1:%d%s" % [port if on_port < 0 else on_port, path]


## Connects to `address` and waits for CONNECTED.
func connect_and_wait(address: String) -> bool:
	ws.connect_to_url(address)
	return await wait_until(func(): return ws.state == WsEcho.CONNECTED, 10.0)


func errors_text() -> String:
	return " | ".join(watch(ws, "error").emissions.map(func(args): return args[0]))


## Starts ws_server.py on `on_port` and waits until it completes a handshake with Godot's own
## WebSocketPeer, so that the node under test never races the server's start.
func start_own_server(on_port: int) -> void:
	var python := Env.value(Env.PYTHON)
	var script := ProjectSettings.globalize_path("res://helpers/ws_server.py")
	own_server_pid = OS.create_process(python, [script, "--port", str(on_port), "--parent", str(OS.get_process_id())])
	if not assert_gt(own_server_pid, 0, "started %s" % python):
		return
	var deadline := Time.get_ticks_msec() + 10000
	while Time.get_ticks_msec() < deadline:
		var probe := WebSocketPeer.new()
		probe.connect_to_url(url("/", on_port))
		probe.poll()
		while probe.get_ready_state() == WebSocketPeer.STATE_CONNECTING:
			await wait_frames(1)
			probe.poll()
		var up := probe.get_ready_state() == WebSocketPeer.STATE_OPEN
		probe.close()
		if up:
			return
		await wait_seconds(0.05)
	fail("the server on port %d did not answer a handshake in 10 s" % on_port)


func test_text_binary_unicode_and_one_megabyte_are_echoed_byte_exact() -> void:
	var texts := watch(ws, "message_received")
	var binaries := watch(ws, "binary_received")
	assert_true(await connect_and_wait(url()), errors_text())
	var big := ""
	for i in 1024:
		big += "%04d" % i + "abcdefghij".repeat(102)
	var blob := PackedByteArray()
	blob.resize(1 << 20)
	for i in blob.size():
		blob[i] = (i * 7 + 3) % 256
	assert_true(ws.send_text("hello"))
	assert_true(ws.send_text("Zoë ✓ 🚀 日本語"))
	assert_true(ws.send_binary(PackedByteArray([0, 1, 2, 255, 0])))
	assert_true(ws.send_text(big))
	assert_true(ws.send_binary(blob))
	assert_true(await texts.wait(10.0, 3), "three texts echoed")
	assert_true(await binaries.wait(10.0, 2), "two binaries echoed")
	assert_eq(texts.args(0)[0], "hello")
	assert_eq(texts.args(1)[0], "Zoë ✓ 🚀 日本語")
	assert_true(texts.args(2)[0] == big, "1 MB text byte-exact")
	assert_eq(binaries.args(0)[0], PackedByteArray([0, 1, 2, 255, 0]))
	assert_true(binaries.args(1)[0] == blob, "1 MiB binary byte-exact")
	assert_eq(ws.get_stats().messages_received, 5)


func test_ten_thousand_messages_keep_their_order() -> void:
	var texts := watch(ws, "message_received")
	assert_true(await connect_and_wait(url()), errors_text())
	# 500 per frame: the default queue (1000) drains between frames.
	for batch in 20:
		for i in 500:
			if not ws.send_text(str(batch * 500 + i)):
				fail("send %d refused: %s" % [batch * 500 + i, errors_text()])
				return
		await get_tree().process_frame
	assert_true(await texts.wait(20.0, 10000), "10 000 echoes (got %d)" % texts.count())
	for i in 10000:
		if texts.args(i)[0] != str(i):
			fail("echo %d is %s" % [i, texts.args(i)[0]])
			return


func test_subprotocol_is_negotiated() -> void:
	var connected := watch(ws, "connected")
	ws.subprotocols = PackedStringArray(["nope", "chat.v2"])
	assert_true(await connect_and_wait(url()), errors_text())
	assert_true(await connected.wait(5.0, 1))
	assert_eq(connected.args()[0], "chat.v2")


func test_server_initiated_close_reports_code_and_reason() -> void:
	var closed := watch(ws, "closed")
	ws.reconnect = false
	ws.connect_to_url(url("/close/4001/bye%20now"))
	assert_true(await closed.wait(10.0), "closed: %s" % errors_text())
	assert_eq(closed.args(), [4001, "bye now"])
	assert_true(await wait_until(func(): return ws.state == WsEcho.STOPPED, 5.0), "a clean close with reconnect off stops")
	assert_signal_not_emitted(ws, "error")


func test_server_killed_and_restarted_queued_messages_arrive_in_order() -> void:
	var own_port := free_port()
	await start_own_server(own_port)
	var texts := watch(ws, "message_received")
	assert_true(await connect_and_wait(url("/", own_port)), "connected to our own server: %s" % errors_text())
	assert_true(ws.send_text("before"))
	assert_true(await texts.wait(5.0, 1))
	expect_error("connection lost")
	# Until the server is back, each reconnect is refused.
	expect_error("connection refused by 127.0.0.1:%d" % own_port, ANY)
	OS.kill(own_server_pid)
	own_server_pid = 0
	assert_true(await wait_until(func(): return ws.state == WsEcho.RECONNECTING, 10.0), "the loss is noticed")
	for i in 20:
		assert_true(ws.send_text("queued %d" % i), "queued while reconnecting")
	assert_eq(ws.get_queued_count(), 20)
	assert_true(await wait_until(func(): return errors_text().contains("connection refused"), 10.0), "a reconnect while the server is down is refused")
	await start_own_server(own_port)
	assert_true(await texts.wait(30.0, 21), "the queued messages arrive after the restart: %s" % errors_text())
	for i in 20:
		assert_eq(texts.args(i + 1)[0], "queued %d" % i)
	assert_eq(ws.state, WsEcho.CONNECTED)
	assert_ge(ws.get_stats().reconnects, 1)


func test_a_server_that_stops_answering_pings_is_detected() -> void:
	var errors := watch(ws, "error")
	var closed := watch(ws, "closed")
	ws.reconnect = false
	ws.heartbeat_sec = 0.3
	expect_error("connection lost: no pong from the server within 0.3 s")
	ws.connect_to_url(url("/mute"))
	assert_true(await closed.wait(10.0), "the silent server is detected")
	assert_true(errors_text().contains("no pong"), errors_text())
	assert_eq(closed.args()[0], 1006)
	assert_le(ws.get_stats().pings_sent, 2, "detected within two heartbeats")
	assert_eq(ws.state, WsEcho.FAILED)
	assert_eq(errors.count(), 1)


func test_an_oversize_message_closes_with_1009() -> void:
	var closed := watch(ws, "closed")
	watch(ws, "error")
	watch(ws, "message_received")
	ws.reconnect = false
	ws.max_message_bytes = 1000
	expect_error("incoming message of 2000 bytes is larger than max_message_bytes (1000): closed with 1009")
	ws.connect_to_url(url("/big/2000"))
	assert_true(await closed.wait(10.0))
	assert_eq(closed.args(), [1009, "message too big"])
	assert_true(errors_text().contains("max_message_bytes"), errors_text())
	assert_signal_not_emitted(ws, "message_received")


func test_an_oversize_send_is_refused() -> void:
	watch(ws, "error")
	ws.max_message_bytes = 1000
	assert_true(await connect_and_wait(url()), errors_text())
	expect_error("message of 1001 bytes refused: larger than max_message_bytes (1000)")
	assert_false(ws.send_text("x".repeat(1001)), "refused while connected")
	assert_true(errors_text().contains("max_message_bytes"), errors_text())
	assert_eq(ws.get_stats().send_refused, 1)
	assert_eq(ws.state, WsEcho.CONNECTED, "the connection stays")


func test_wss_with_the_right_ca_connects_and_with_the_wrong_one_fails_clearly() -> void:
	var wss := "wss://127.0.0.1:%d/" % Env.port(Env.WSS_PORT)
	var texts := watch(ws, "message_received")
	ws.ca_file = Env.value(Env.WS_CA)
	assert_true(await connect_and_wait(wss), errors_text())
	ws.send_text("over TLS")
	assert_true(await texts.wait(5.0))
	assert_eq(texts.args()[0], "over TLS")

	watch(ws, "error").clear()
	ws.reconnect = false
	ws.ca_file = Env.value(Env.WS_WRONG_CA)
	expect_error("TLS handshake with 127.0.0.1:%d failed" % Env.port(Env.WSS_PORT))
	ws.connect_to_url(wss)
	assert_true(await wait_until(func(): return ws.state == WsEcho.FAILED, 10.0))
	assert_true(errors_text().contains("TLS handshake") and errors_text().contains("ca_file"), errors_text())


func test_http_error_refused_port_and_unknown_host_are_clear() -> void:
	ws.reconnect = false
	var cases := {
		url("/forbidden"): "HTTP 403",
		url("/", free_port()): "connection refused",
		"ws://no-such-host.invalid:8765/": "cannot resolve host 'no-such-host.invalid'",
		"http://127.0.0.1:%d/" % port: "ws:// or wss://",
	}
	for address in cases:
		watch(ws, "error").clear()
		expect_error(cases[address])
		ws.connect_to_url(address)
		assert_true(await wait_until(func(): return ws.state == WsEcho.FAILED, 10.0), address)
		assert_true(errors_text().contains(cases[address]), "%s: %s" % [address, errors_text()])


func test_queue_overflow_and_sends_while_stopped_are_errors() -> void:
	var errors := watch(ws, "error")
	expect_error("message refused: not connected")
	assert_false(ws.send_text("too early"), "not started")
	assert_true(errors_text().contains("not connected"), errors_text())
	ws.max_queued_messages = 3
	ws.connect_to_url(url("/", free_port()))  # refused: stays (re)connecting
	for i in 3:
		assert_true(ws.send_text(str(i)))
	errors.clear()
	expect_error("message refused: 3 messages are already queued (max_queued_messages)")
	assert_false(ws.send_text("overflow"))
	assert_true(errors_text().contains("max_queued_messages"), errors_text())
	assert_eq(ws.get_stats().send_refused, 1)


func test_close_sends_the_queue_then_closes_with_code_and_reason() -> void:
	var closed := watch(ws, "closed")
	assert_true(await connect_and_wait(url()), errors_text())
	ws.send_text("last words")
	ws.close(4000, "game over")
	assert_true(await closed.wait(5.0))
	assert_eq(closed.args(), [4000, "game over"])
	assert_eq(ws.state, WsEcho.STOPPED)
	assert_eq(ws.get_stats().messages_sent, 1, "the queued message went out before the close")
	ws.close(999, "")  # closed already: nothing to do, no error
	assert_signal_not_emitted(ws, "error")


func test_handlers_may_call_back_into_the_node() -> void:
	var states := watch(ws, "state_changed")
	ws.message_received.connect(func(_text: String) -> void:
		ws.get_stats()
		ws.stop())
	ws.state_changed.connect(func(_state: int) -> void: ws.get_stats())
	assert_true(await connect_and_wait(url()), errors_text())
	ws.send_text("a")
	ws.send_text("b")
	assert_true(await wait_until(func(): return ws.state == WsEcho.STOPPED, 5.0))
	await wait_frames(3)
	assert_eq(states.args()[0], WsEcho.STOPPED)


func test_freeing_the_node_during_traffic_is_clean() -> void:
	assert_true(await connect_and_wait(url()), errors_text())
	for i in 200:
		ws.send_text("flood %d" % i)
	await wait_frames(1)
	ws.free()
	await wait_frames(3)
	assert_eq(AsyncHub.tasks().filter(func(t): return str(t.name).begins_with("WsEcho")).size(), 0, "its task is gone")


# --- Batch signals: messages_received(texts), binaries_received(data) ----------------------------

## Message `i` of the mixed tests is binary when this holds (its number as 4 bytes, then 0xff and
## 0x00, which are not UTF-8); the others are the text of the number.
func mixed_is_binary(i: int) -> bool:
	return i % 3 == 2


func mixed_binary(i: int) -> PackedByteArray:
	var data := PackedByteArray()
	data.resize(4)
	data.encode_u32(0, i)
	data.append_array(PackedByteArray([0xff, 0x00]))
	return data


## How a received message is recorded: "t<text>" or "b<number>".
func seen_text(text: String) -> String:
	return "t" + text


func seen_binary(data: PackedByteArray) -> String:
	if data.size() != 6 or data[4] != 0xff or data[5] != 0x00:
		return "bad binary %s" % data
	return "b%d" % data.decode_u32(0)


func mixed_expected(count: int) -> Array[String]:
	var expected: Array[String] = []
	for i in count:
		expected.append("b%d" % i if mixed_is_binary(i) else "t%d" % i)
	return expected


## Sends `count` mixed messages, 500 per frame (the default queue of 1000 drains between frames).
func send_mixed(count: int) -> bool:
	for i in count:
		var sent := ws.send_binary(mixed_binary(i)) if mixed_is_binary(i) else ws.send_text(str(i))
		if not sent:
			fail("send %d refused: %s" % [i, errors_text()])
			return false
		if i % 500 == 499:
			await get_tree().process_frame
	return true


## Records what the batch signals deliver, in order, into `into`; counts batches in `batches[0]`.
func record_batches(into: Array[String], batches: Array) -> void:
	ws.messages_received.connect(func(texts: PackedStringArray) -> void:
		batches[0] += 1
		if texts.is_empty():
			into.append("empty text batch")
		for text in texts:
			into.append(seen_text(text)))
	ws.binaries_received.connect(func(data: Array[PackedByteArray]) -> void:
		batches[0] += 1
		if data.is_empty():
			into.append("empty binary batch")
		for bytes in data:
			into.append(seen_binary(bytes)))


func test_batch_signals_deliver_ten_thousand_mixed_messages_once_in_order_and_per_message_signals_too() -> void:
	var from_batches: Array[String] = []
	var from_each: Array[String] = []
	var batches := [0]
	record_batches(from_batches, batches)
	ws.message_received.connect(func(text: String) -> void: from_each.append(seen_text(text)))
	ws.binary_received.connect(func(data: PackedByteArray) -> void: from_each.append(seen_binary(data)))
	assert_true(await connect_and_wait(url()), errors_text())
	if not await send_mixed(10000):
		return
	assert_true(await wait_until(func(): return from_batches.size() >= 10000, 20.0), "10 000 echoes in batches (got %d)" % from_batches.size())
	await wait_frames(3)
	var expected := mixed_expected(10000)
	assert_sequence(from_batches, expected, "batch signals")
	assert_sequence(from_each, expected, "per-message signals")
	# At least one batch per run of texts or binaries (order holds across the two signals); far
	# fewer than one per message, since messages that arrive together share one.
	assert_lt(batches[0], 10000, "messages that arrive together share a batch")
	assert_eq(ws.get_stats().messages_received, 10000)
	print("    10 000 messages arrived in %d batches" % batches[0])


func test_batch_signals_alone_are_byte_exact() -> void:
	var errors := watch(ws, "error")
	var texts: Array[String] = []
	var binaries: Array[PackedByteArray] = []
	ws.messages_received.connect(func(batch: PackedStringArray) -> void:
		for text in batch:
			texts.append(text))
	ws.binaries_received.connect(func(batch: Array[PackedByteArray]) -> void:
		binaries.append_array(batch))
	assert_true(await connect_and_wait(url()), errors_text())
	var blob := PackedByteArray()
	blob.resize(1 << 20)
	for i in blob.size():
		blob[i] = (i * 7 + 3) % 256
	assert_true(ws.send_text("Zoë ✓ 🚀 日本語"))
	assert_true(ws.send_binary(PackedByteArray([0, 1, 2, 255, 0])))
	assert_true(ws.send_binary(PackedByteArray()))
	assert_true(ws.send_text(""))
	assert_true(ws.send_binary(blob))
	assert_true(await wait_until(func(): return texts.size() + binaries.size() >= 5, 10.0), "five echoes (%d texts, %d binaries)" % [texts.size(), binaries.size()])
	assert_eq(texts, ["Zoë ✓ 🚀 日本語", ""])
	assert_eq(binaries.size(), 3)
	if binaries.size() == 3:
		assert_eq(binaries[0], PackedByteArray([0, 1, 2, 255, 0]))
		assert_eq(binaries[1], PackedByteArray())
		assert_true(binaries[2] == blob, "1 MiB binary byte-exact")
	assert_eq(errors.count(), 0, errors_text())


func test_with_nothing_connected_messages_are_received_without_errors() -> void:
	var errors := watch(ws, "error")
	assert_true(await connect_and_wait(url()), errors_text())
	if not await send_mixed(1000):
		return
	assert_true(await wait_until(func(): return ws.get_stats().messages_received == 1000, 10.0), "received %d" % ws.get_stats().messages_received)
	assert_eq(errors.count(), 0, errors_text())
	assert_eq(ws.state, WsEcho.CONNECTED)


func test_a_batch_handler_may_stop_the_node() -> void:
	var errors := watch(ws, "error")
	var batches := [0]
	ws.messages_received.connect(func(_texts: PackedStringArray) -> void:
		batches[0] += 1
		ws.get_stats()
		ws.stop())
	assert_true(await connect_and_wait(url()), errors_text())
	for i in 100:
		ws.send_text(str(i))
	assert_true(await wait_until(func(): return ws.state == WsEcho.STOPPED, 5.0))
	await wait_frames(3)
	assert_eq(batches[0], 1, "no batch after stop()")
	assert_eq(errors.count(), 0, errors_text())
