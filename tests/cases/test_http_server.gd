## HttpServer, HttpServerRequest, HttpEventStream and WebSocketServerPeer against real clients
## in processes of their own (helpers/http_clients.py: curl, aiohttp, websockets, raw TCP), run
## while the game keeps stepping. TLS uses the test CA of `cargo xtask test` (ASYNC_NET_TEST_HTTP_*).
extends "res://runner/test_case.gd"

const Env := preload("res://runner/env.gd")
const Clients := preload("res://helpers/external_clients.gd")
const SCRIPT := "res://helpers/http_clients.py"

var server: HttpServer
var base := ""


func _init() -> void:
	timeout_sec = 30.0


func before_each() -> void:
	server = HttpServer.new()
	server.port = 0
	server.autostart = false
	add_child(server)


func after_each() -> void:
	if is_instance_valid(server):
		server.free()


## Starts the server and waits until it listens; sets `base`.
func listen(scheme := "http") -> bool:
	server.start()
	if not await wait_until(func(): return server.state == HttpServer.LISTENING, 5.0):
		fail("not listening (state %d)" % server.state)
		return false
	base = "%s://127.0.0.1:%d" % [scheme, server.get_bound_port()]
	return true


## Runs the jobs concurrently in the client helper; returns their results in order.
func clients(jobs: Array) -> Array:
	var result: Dictionary = await Clients.run_script(get_tree(), SCRIPT, {"jobs": jobs}, python())
	assert_false(result.has("error"), str(result.get("error", "")))
	return result.get("results", [])


func python() -> String:
	var venv := Env.value(Env.PYTHON)
	return venv if not venv.is_empty() else "python3"


## A curl job: status code and HTTP version on the last line, after the body.
func curl(args: Array) -> Dictionary:
	return {"curl": ["-s", "--max-time", "10", "-w", "\n%{http_code} %{http_version}"] + args}


## The body, status and HTTP version of a curl job's result.
func curled(result: Dictionary) -> Dictionary:
	var out: String = result.get("out", "")
	var last := out.rfind("\n")
	var tail := out.substr(last + 1).split(" ")
	return {"body": out.substr(0, last), "status": tail[0].to_int(), "version": tail[1] if tail.size() > 1 else ""}


func test_handlers_answer_with_what_they_return_await_or_respond() -> void:
	server.route("GET", "/players/:id", func(req: HttpServerRequest): return {"id": req.params.id, "q": req.query.get("q", "")})
	server.route("POST", "/echo", func(req: HttpServerRequest): return "got " + req.text())
	server.route("*", "/bytes/*rest", func(req: HttpServerRequest): return req.params.rest.to_utf8_buffer())
	server.route("GET", "/later", func(_req):
		await get_tree().create_timer(0.2).timeout
		return "waited")
	server.route("GET", "/deferred", func(req: HttpServerRequest):
		req.defer()
		get_tree().create_timer(0.2).timeout.connect(func(): req.respond(201, "made", {"X-Made": "yes"})))
	server.route("GET", "/respond", func(req: HttpServerRequest):
		assert_true(req.respond(418, {"teapot": true}))
		assert_false(req.respond(200, "second"), "the first answer wins")
		return "ignored")
	server.route("GET", "/nothing", func(_req): return null)
	var answers := watch(server, "request_received")
	if not await listen():
		return
	expect_error("returned null without answering")
	var results := await clients([
		curl([base + "/players/ada%20b?q=x"]),
		curl(["-X", "POST", "--data-binary", "hello", base + "/echo"]),
		curl(["-X", "PUT", base + "/bytes/a/b"]),
		curl([base + "/later"]),
		curl(["-i", base + "/deferred"]),
		curl([base + "/respond"]),
		curl([base + "/nothing"]),
		curl([base + "/missing"]),
		curl(["--http2-prior-knowledge", base + "/players/7"]),
		{"http": {"method": "POST", "url": base + "/echo", "body": "from aiohttp"}},
	])
	if not assert_eq(results.size(), 10):
		return
	var players := curled(results[0])
	assert_eq([players.status, JSON.parse_string(players.body)], [200, {"id": "ada b", "q": "x"}])
	assert_eq(curled(results[1]).body, "got hello")
	assert_eq(curled(results[2]).body, "a/b", "PackedByteArray, any method")
	assert_eq(curled(results[3]).body, "waited", "an awaiting handler answers with what it returns")
	var deferred := curled(results[4])
	assert_eq(deferred.status, 201)
	assert_true(deferred.body.to_lower().contains("x-made: yes") and deferred.body.ends_with("made"), deferred.body)
	assert_eq([curled(results[5]).status, JSON.parse_string(curled(results[5]).body)], [418, {"teapot": true}])
	assert_eq(curled(results[6]).status, 500, "null without an answer")
	assert_eq(curled(results[7]).status, 404, "no route")
	assert_eq([curled(results[8]).status, curled(results[8]).version], [200, "2"], "h2c prior knowledge")
	assert_eq([int(results[9].get("status", 0)), results[9].get("body")], [200, "got from aiohttp"])
	await wait_until(func(): return answers.count() >= 10)
	assert_true(answers.emissions.has(["GET", "/missing", 404]), str(answers.emissions))
	assert_eq(server.get_stats().handled, 9)


func test_no_answer_in_time_is_503_and_a_late_answer_is_refused() -> void:
	server.request_timeout_sec = 0.5
	var held: Array[HttpServerRequest] = []
	server.route("GET", "/never", func(req: HttpServerRequest):
		req.defer()
		held.append(req))
	if not await listen():
		return
	var results := await clients([curl([base + "/never"])])
	assert_eq(curled(results[0]).status, 503)
	assert_eq(held.size(), 1)
	assert_true(held[0].is_answered(), "too late to answer")
	assert_false(held[0].respond(200, "late"))


func test_a_non_loopback_host_without_token_refuses_to_start_and_the_token_is_checked() -> void:
	server.host = "0.0.0.0"
	expect_error("without a token")
	server.start()
	assert_eq(server.state, HttpServer.FAILED)
	assert_eq(server.get_bound_port(), 0)
	server.token = "s3cret"
	server.route("GET", "/x", func(_req): return "in")
	if not await listen():
		return
	var results := await clients([
		curl([base + "/x"]),
		curl(["-H", "Authorization: Bearer wrong", base + "/x"]),
		curl(["-H", "Authorization: Bearer s3cret", base + "/x"]),
	])
	assert_eq(curled(results[0]).status, 401)
	assert_eq(curled(results[1]).status, 401)
	assert_eq([curled(results[2]).status, curled(results[2]).body], [200, "in"])


func test_limits_answer_413_431_408_and_503_and_the_server_goes_on() -> void:
	server.max_body_bytes = 100
	server.max_header_bytes = 8192
	server.request_timeout_sec = 1.0
	server.route("*", "/x", func(req: HttpServerRequest): return "ok %d" % req.body.size())
	if not await listen():
		return
	var port := server.get_bound_port()
	var results := await clients([
		curl(["--data-binary", "x".repeat(101), base + "/x"]),
		curl(["-H", "X-Big: " + "y".repeat(9000), base + "/x"]),
		{"raw": {"port": port, "chunks": ["POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nabc"], "read": 5.0}},
		{"raw": {"port": port, "chunks": ["GET /x HTTP/1.1\r\nHost: 1"], "read": 5.0}},
	])
	assert_eq(curled(results[0]).status, 413)
	assert_eq(curled(results[1]).status, 431)
	assert_true(results[2].answer.begins_with("HTTP/1.1 408"), results[2].answer)
	assert_true(results[2].eof, "a slow client is closed")
	assert_true(results[3].answer.begins_with("HTTP/1.1 408") and results[3].eof, "a slow head: %s" % results[3])
	# One connection held open: the next one gets 503.
	server.max_connections = 1
	if not await listen():
		return
	port = server.get_bound_port()
	results = await clients([
		{"raw": {"port": port, "chunks": ["GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"], "read": 1.5}},
		{"delay": 0.5, "raw": {"port": port, "chunks": ["GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"], "read": 3.0}},
	])
	assert_true(results[0].answer.begins_with("HTTP/1.1 200"), results[0].answer)
	assert_true(results[1].answer.begins_with("HTTP/1.1 503"), results[1].answer)
	results = await clients([curl(["--data-binary", "fine", base + "/x"])])
	assert_eq(curled(results[0]).body, "ok 4", "still serving")
	assert_eq(server.get_stats().refused, 1, "the 503 (counted since this start)")


func test_served_files_range_etag_index_and_never_outside() -> void:
	var root := OS.get_temp_dir().path_join("async_net_served_%d" % OS.get_process_id())
	DirAccess.make_dir_recursive_absolute(root.path_join("www/sub"))
	_write(root.path_join("www/index.html"), "<h1>home</h1>")
	_write(root.path_join("www/sub/data.txt"), "0123456789")
	_write(root.path_join("secret.txt"), "secret")
	OS.execute("ln", ["-s", root.path_join("secret.txt"), root.path_join("www/link.txt")])
	assert_true(server.serve_files("/static", root.path_join("www")))
	expect_error("is not a folder")
	assert_false(server.serve_files("/nope", root.path_join("missing")))
	if not await listen():
		return
	var results := await clients([
		curl([base + "/static/"]),
		curl(["-H", "Range: bytes=2-5", base + "/static/sub/data.txt"]),
		curl(["-I", base + "/static/sub/data.txt"]),
		curl(["--path-as-is", base + "/static/../secret.txt"]),
		curl(["--path-as-is", base + "/static/%2e%2e/secret.txt"]),
		curl([base + "/static/link.txt"]),
		curl([base + "/static/missing.txt"]),
	])
	assert_eq([curled(results[0]).status, curled(results[0]).body], [200, "<h1>home</h1>"], "index.html")
	assert_eq([curled(results[1]).status, curled(results[1]).body], [206, "2345"])
	var head: String = curled(results[2]).body.to_lower()
	assert_true(head.contains("content-length: 10") and head.contains("content-type: text/plain"), head)
	var etag := ""
	for line in head.split("\n"):
		if line.begins_with("etag:"):
			etag = line.trim_prefix("etag:").strip_edges()
	for i in [3, 4, 5]:
		assert_eq(curled(results[i]).status, 403, "refused: %s" % results[i])
		assert_false(curled(results[i]).body.contains("secret\n") or curled(results[i]).body == "secret")
	assert_eq(curled(results[6]).status, 404)
	results = await clients([curl(["-H", "If-None-Match: " + etag, base + "/static/sub/data.txt"])])
	assert_eq(curled(results[0]).status, 304, "ETag %s" % etag)
	assert_eq(server.get_stats().handled, 0, "files never reach the main thread's handlers")
	OS.execute("rm", ["-rf", root])


func _write(path: String, text: String) -> void:
	var file := FileAccess.open(path, FileAccess.WRITE)
	file.store_string(text)
	file.close()


func test_websocket_peers_echo_close_and_report() -> void:
	server.websocket("/ws/:room")
	var peers: Array[WebSocketServerPeer] = []
	var closes := []
	server.websocket_connected.connect(func(peer: WebSocketServerPeer):
		peers.append(peer)
		peer.message_received.connect(func(text: String):
			if text == "bye":
				peer.close(4000, "asked")
			else:
				peer.send_text("echo:%s:%s" % [peer.path, text]))
		peer.closed.connect(func(code: int, reason: String): closes.append([code, reason])))
	if not await listen():
		return
	var url := "ws://127.0.0.1:%d/ws/lobby" % server.get_bound_port()
	var results := await clients([
		{"ws": {"url": url, "send": ["hi", "there"], "receive": 2}},
		{"ws": {"url": url, "send": ["bye"], "wait_close": true}},
	])
	assert_eq(results[0].received, ["echo:/ws/lobby:hi", "echo:/ws/lobby:there"], str(results[0]))
	assert_eq(results[1].close_code, 4000, str(results[1]))
	assert_eq(peers.size(), 2)
	await wait_until(func(): return closes.size() == 2)
	closes.sort()
	assert_eq(closes, [[1000, ""], [4000, "asked"]])
	assert_false(peers[0].is_open())


func test_a_hundred_websocket_clients_get_every_broadcast() -> void:
	server.websocket("/live")
	if not await listen():
		return
	var url := "ws://127.0.0.1:%d/live" % server.get_bound_port()
	var run := Clients.start(SCRIPT, {"jobs": [{"ws_many": {"url": url, "count": 100, "receive": 2}}]}, python())
	if not assert_true(await wait_until(func(): return server.get_stats().websocket_peers == 100, 15.0), "100 peers"):
		await Clients.finish(get_tree(), run)
		return
	assert_eq(server.broadcast_text("/live", "first"), 100)
	assert_eq(server.broadcast_binary("/live", PackedByteArray([1, 2, 3])), 100)
	var result: Dictionary = await Clients.finish(get_tree(), run)
	var many: Dictionary = result.results[0]
	assert_eq([int(many.connected), many.errors], [100, []])
	assert_eq(many.received.filter(func(n): return int(n) != 2), [], "every client got both")
	assert_eq(server.broadcast_text("/nobody", "x"), 0)


func test_event_streams_send_until_the_client_leaves() -> void:
	var closed := []
	server.route("GET", "/events", func(req: HttpServerRequest):
		var stream := req.open_event_stream()
		stream.closed.connect(func(): closed.append(true))
		assert_true(stream.send("hello", "a\nb", "1"))
		get_tree().create_timer(0.2).timeout.connect(func(): stream.send("", "second")))
	if not await listen():
		return
	var results := await clients([{"sse": {"url": base + "/events", "events": 2}}])
	assert_eq(int(results[0].status), 200)
	assert_eq(results[0].events, [{"event": "hello", "data": "a\nb", "id": "1"}, {"event": "message", "data": "second", "id": ""}])
	assert_true(await wait_until(func(): return closed.size() == 1), "closed when the client left")
	assert_eq(server.get_stats().event_streams, 0)


func test_https_serves_http2_and_wss_with_the_test_ca() -> void:
	var ca := Env.value(Env.HTTP_CA)
	if not assert_true(FileAccess.file_exists(ca), "ASYNC_NET_TEST_HTTP_CA is set (run through `cargo xtask test`)"):
		return
	server.tls_certificate_file = Env.value(Env.HTTP_CERT)
	server.tls_key_file = Env.value(Env.HTTP_KEY)
	server.route("GET", "/x", func(_req): return "secure")
	server.websocket("/ws")
	server.websocket_connected.connect(func(peer: WebSocketServerPeer): peer.send_text("hello wss"))
	if not await listen("https"):
		return
	var results := await clients([
		curl(["--cacert", ca, base + "/x"]),
		curl(["--cacert", ca, "--http1.1", base + "/x"]),
		{"ws": {"url": "wss://127.0.0.1:%d/ws" % server.get_bound_port(), "ca": ca, "receive": 1}},
	])
	assert_eq([curled(results[0]).status, curled(results[0]).version, curled(results[0]).body], [200, "2", "secure"])
	assert_eq([curled(results[1]).status, curled(results[1]).version], [200, "1.1"])
	assert_eq(results[2].received, ["hello wss"], str(results[2]))
	server.tls_key_file = ""
	expect_error("set both tls_certificate_file and tls_key_file")
	server.start()
	assert_eq(server.state, HttpServer.FAILED)


func test_cors_for_listed_origins_and_other_pages_refused() -> void:
	server.cors_origins = PackedStringArray(["https://tools.example"])
	server.route("POST", "/cmd", func(_req): return "done")
	if not await listen():
		return
	var results := await clients([
		curl(["-i", "-X", "OPTIONS", "-H", "Origin: https://tools.example", "-H", "Access-Control-Request-Method: POST", base + "/cmd"]),
		curl(["-i", "-X", "POST", "-H", "Origin: https://tools.example", base + "/cmd"]),
		curl(["-X", "POST", "-H", "Origin: https://evil.example", base + "/cmd"]),
		curl(["-X", "POST", "-H", "Origin: " + base, base + "/cmd"]),
		curl(["-H", "Host: evil.example", base + "/cmd"]),
	])
	var preflight := curled(results[0])
	assert_eq(preflight.status, 204)
	assert_true(preflight.body.to_lower().contains("access-control-allow-origin: https://tools.example"), preflight.body)
	assert_true(curled(results[1]).body.to_lower().contains("access-control-allow-origin: https://tools.example"))
	assert_eq(curled(results[2]).status, 403, "another site's page")
	assert_eq([curled(results[3]).status, curled(results[3]).body], [200, "done"], "a page the server served")
	assert_eq(curled(results[4]).status, 403, "a name that is not loopback (DNS rebinding)")


func test_bad_routes_are_refused_and_stop_frees_the_port() -> void:
	expect_error("must be the last segment")
	assert_false(server.route("GET", "/a/*rest/b", func(_req): return ""))
	expect_error("is not an HTTP method")
	assert_false(server.route("GE T", "/a", func(_req): return ""))
	if not await listen():
		return
	var port := server.get_bound_port()
	server.stop()
	assert_eq([server.state, server.get_bound_port()], [HttpServer.STOPPED, 0])
	var probe := TCPServer.new()
	assert_eq(probe.listen(port, "127.0.0.1"), OK, "the port is free once stop() returns")
	probe.stop()


# --- cache_sec: answers kept off the main thread ----------------------------------------------

## A GET handler that counts its calls per path and query, and answers with the count.
func counting(calls: Dictionary, body_extra := "") -> Callable:
	return func(req: HttpServerRequest) -> Dictionary:
		var key := req.path + "?" + "&".join(req.query.keys().map(func(k): return "%s=%s" % [k, req.query[k]]))
		calls[key] = calls.get(key, 0) + 1
		return {"path": req.path, "query": req.query, "call": calls[key], "extra": body_extra}


## Total calls of a counting handler.
func total(calls: Dictionary) -> int:
	var n := 0
	for count in calls.values():
		n += count
	return n


func test_kept_answers_are_served_without_the_handler_then_refreshed() -> void:
	var calls := {}
	assert_true(server.route("GET", "/status", counting(calls), {"cache_sec": 10.0}))
	var quick := {}
	assert_true(server.route("GET", "/quick", counting(quick), {"cache_sec": 0.3}))
	var answers := watch(server, "request_received")
	if not await listen():
		return
	# The first answer is kept before the others ask (a HEAD that finds nothing kept runs the handler).
	var results := await clients([curl(["-i", base + "/status?a=1"])])
	var jobs := []
	for i in 8:
		jobs.append(curl(["-i", base + "/status?a=1"]) if i % 2 == 0 else {"http": {"url": base + "/status?a=1"}})
	jobs.append(curl(["-I", base + "/status?a=1"]))
	jobs.append({"http": {"url": base + "/status?a=2"}})
	jobs.append({"http": {"method": "HEAD", "url": base + "/status?a=3"}})
	results += await clients(jobs)
	if not assert_eq(results.size(), 12):
		return
	var first := curled(results[0])
	assert_eq(first.status, 200)
	assert_true(first.body.to_lower().contains("\nage: 0"), "an Age header: %s" % first.body)
	for i in range(1, 9):
		var body: String = curled(results[i]).body if results[i].has("out") else results[i].get("body", "")
		assert_true(body.contains('"call":1') and body.contains('"a":"1"'), "request %d got the kept answer: %s" % [i, body])
	var head := curled(results[9])
	assert_eq(head.status, 200, "HEAD answered from GET's kept answer")
	assert_true(head.body.to_lower().contains("content-type: application/json"), head.body)
	assert_eq(int(results[10].status), 200)
	assert_eq(calls, {"/status?a=1": 1, "/status?a=2": 1, "/status?a=3": 1},
		"one call per path and query; a HEAD that finds nothing kept runs the handler")
	var stats := server.get_stats()
	assert_eq([stats.cached, stats.handled, stats.cache_entries], [9, 3, 2], str(stats))
	assert_true(await wait_until(func(): return answers.count() == 12), "request_received for every answer")
	# Refreshed after its window.
	results = await clients([curl([base + "/quick"])])
	await wait_seconds(0.5)
	results += await clients([curl([base + "/quick"]), {"delay": 0.05, "http": {"url": base + "/quick"}}])
	assert_eq(total(quick), 2, "made again once the 0.3 s passed, then kept")
	assert_true(curled(results[1]).body.contains('"call":2'), curled(results[1]).body)


func test_not_kept_other_statuses_cookies_post_and_refused_options() -> void:
	var calls := {}
	var missing := func(req: HttpServerRequest) -> void:
		calls[req.path] = calls.get(req.path, 0) + 1
		req.respond(404, "no such thing")
	var broken := func(req: HttpServerRequest) -> Variant:
		calls[req.path] = calls.get(req.path, 0) + 1
		return null
	var cookie := func(req: HttpServerRequest) -> void:
		calls[req.path] = calls.get(req.path, 0) + 1
		req.respond(200, "for you", {"Set-Cookie": "session=1"})
	var anything := func(req: HttpServerRequest) -> String:
		calls[req.path] = calls.get(req.path, 0) + 1
		return "any"
	var keep := {"cache_sec": 5.0}
	server.route("GET", "/missing", missing, keep)
	server.route("GET", "/broken", broken, keep)
	server.route("GET", "/cookie", cookie, keep)
	server.route("*", "/any", anything, keep)
	expect_error("cache_sec keeps answers to GET")
	assert_false(server.route("POST", "/post", func(_req): return "", {"cache_sec": 1.0}))
	expect_error("unknown option 'cache_secs'")
	assert_false(server.route("GET", "/typo", func(_req): return "", {"cache_secs": 1.0}))
	expect_error("options.cache_sec must be a number, not")
	assert_false(server.route("GET", "/typo", func(_req): return "", {"cache_sec": "1"}))
	expect_error("options.cache_sec must be a number of at least 0")
	assert_false(server.route("GET", "/typo", func(_req): return "", {"cache_sec": -1.0}))
	if not await listen():
		return
	expect_error("returned null without answering", ANY)  # the log says a repeated message once a second
	var jobs := []
	for delay in [0.0, 0.4]:
		jobs += [
			{"delay": delay, "http": {"url": base + "/missing"}},
			{"delay": delay, "http": {"url": base + "/broken"}},
			{"delay": delay, "http": {"url": base + "/cookie"}},
			{"delay": delay, "http": {"method": "POST", "url": base + "/any", "body": "x"}},
		]
	var results := await clients(jobs)
	assert_eq(results.map(func(r): return int(r.get("status", 0))), [404, 500, 200, 200, 404, 500, 200, 200])
	assert_eq(results[2].get("headers", {}).get("set-cookie", ""), "session=1")
	assert_eq(calls, {"/missing": 2, "/broken": 2, "/cookie": 2, "/any": 2}, "nothing kept")
	assert_eq(server.get_stats().cache_entries, 0)


func test_the_token_is_checked_for_every_request_to_a_kept_answer() -> void:
	var calls := {}
	server.token = "s3cret"
	server.route("GET", "/status", counting(calls), {"cache_sec": 5.0})
	if not await listen():
		return
	var auth := "Authorization: Bearer s3cret"
	var results := await clients([
		curl(["-H", auth, base + "/status"]),
		{"delay": 0.4, "curl": curl([base + "/status"]).curl},
		{"delay": 0.4, "curl": curl(["-H", "Authorization: Bearer wrong", base + "/status"]).curl},
		{"delay": 0.4, "curl": curl(["-H", auth, base + "/status"]).curl},
	])
	assert_eq(results.map(func(r): return curled(r).status), [200, 401, 401, 200])
	assert_eq(curled(results[3]).body, curled(results[0]).body)
	assert_eq([total(calls), server.get_stats().cached], [1, 1])


func test_concurrent_requests_wait_for_one_handler_call() -> void:
	var calls := [0]
	var slow := func(_req: HttpServerRequest) -> Dictionary:
		calls[0] += 1
		await get_tree().create_timer(1.0).timeout
		return {"made": calls[0]}
	server.route("GET", "/slow", slow, {"cache_sec": 5.0})
	if not await listen():
		return
	var jobs := []
	for i in 10:
		jobs.append(curl([base + "/slow"]) if i % 2 == 0 else {"http": {"url": base + "/slow"}})
	var started := Time.get_ticks_msec()
	var results := await clients(jobs)
	var bodies := results.map(func(r): return curled(r).body if r.has("out") else r.get("body", ""))
	assert_eq(calls[0], 1, "ten requests while the handler worked: one call")
	assert_eq(bodies.filter(func(b): return b != '{"made":1}'), [], str(bodies))
	assert_lt(Time.get_ticks_msec() - started, 8000, "all answered together")


func test_clear_cache_drops_kept_answers_at_once() -> void:
	var status := {}
	var scores := {}
	server.route("GET", "/status", counting(status), {"cache_sec": 30.0})
	server.route("GET", "/scores/:id", counting(scores), {"cache_sec": 30.0})
	if not await listen():
		return
	await clients([curl([base + "/status"]), curl([base + "/scores/1"]), curl([base + "/scores/2"])])
	assert_eq(server.get_stats().cache_entries, 3)
	assert_eq(server.clear_cache("/scores/:id"), 2)
	var results := await clients([curl([base + "/status"]), curl([base + "/scores/1"])])
	assert_eq([total(status), total(scores)], [1, 3], "only the scores were made again")
	assert_true(curled(results[1]).body.contains('"call":2'), curled(results[1]).body)
	expect_error("no route has the pattern '/nope'")
	assert_eq(server.clear_cache("/nope"), 0)
	assert_eq(server.clear_cache(), 2)
	# Routing the same method and pattern again replaces the handler and its kept answers.
	server.route("GET", "/status", func(_req): return "new handler", {"cache_sec": 30.0})
	await clients([curl([base + "/status"])])
	results = await clients([curl([base + "/status"])])
	assert_eq(curled(results[0]).body, "new handler")


func test_kept_answers_stay_within_their_bounds() -> void:
	var calls := {}
	server.cache_max_entries = 2
	server.cache_max_bytes = 1024
	server.route("GET", "/item", counting(calls), {"cache_sec": 30.0})
	server.route("GET", "/big", counting(calls, "x".repeat(300)), {"cache_sec": 30.0})
	if not await listen():
		return
	var jobs := []
	for i in 4:
		jobs.append({"delay": 0.5 * i, "http": {"url": base + "/item?i=%d" % (i % 3)}})
	jobs += [{"delay": 2.0, "http": {"url": base + "/big"}}, {"delay": 2.5, "http": {"url": base + "/big"}}]
	await clients(jobs)
	assert_eq(calls.get("/item?i=0", 0), 2, "i=0 went first (the nearest to expiring) when i=2 came")
	assert_eq(calls.get("/big?", 0), 2, "over a quarter of cache_max_bytes: never kept")
	var stats := server.get_stats()
	assert_le(stats.cache_entries, 2)
	assert_le(stats.cache_bytes, 1024)
	server.cache_max_entries = 0
	expect_error("cache_max_entries must be at least 1")
	server.start()
	assert_eq(server.state, HttpServer.FAILED)
