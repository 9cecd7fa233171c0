## HttpSession, HttpResponse, HttpStream and AsyncHub.fetch against the real servers of
## `cargo xtask test`: Debian's nginx (static files, gzip, Range, HTTP/2 over TLS with the test
## CA, redirects), the aiohttp helper (helpers/http_server.py: streams, server-sent events,
## faults, echo) and tinyproxy with Basic auth (ports and CA in ASYNC_NET_TEST_*).
extends "res://runner/test_case.gd"

const Env := preload("res://runner/env.gd")

var session: HttpSession
var nginx := ""
var nginx_tls := ""
var aio := ""
var dir := ""


func _init() -> void:
	timeouts = {
		"test_quitting_with_requests_in_flight_exits_promptly_and_cleanly": 60.0,
		"test_a_16_mib_download_is_byte_exact_and_resume_continues_with_range": 30.0,
	}


func before_each() -> void:
	assert_gt(Env.port(Env.NGINX_PORT), 0, "ASYNC_NET_TEST_NGINX_PORT is set (run through `cargo xtask test`)")
	assert_gt(Env.port(Env.AIOHTTP_PORT), 0, "ASYNC_NET_TEST_AIOHTTP_PORT is set")
	assert_gt(Env.port(Env.PROXY_PORT), 0, "ASYNC_NET_TEST_PROXY_PORT is set")
	nginx = "http://127.0.0.1:%d" % Env.port(Env.NGINX_PORT)
	nginx_tls = "https://127.0.0.1:%d" % Env.port(Env.NGINX_TLS_PORT)
	aio = "http://127.0.0.1:%d" % Env.port(Env.AIOHTTP_PORT)
	session = HttpSession.new()
	session.ca_file = Env.value(Env.HTTP_CA)
	session.proxy = "direct"
	add_child(session)
	dir = OS.get_temp_dir().path_join("async_net_http_%d" % OS.get_process_id())
	DirAccess.make_dir_recursive_absolute(dir)


func after_each() -> void:
	if is_instance_valid(session):
		session.free()
	for file in DirAccess.get_files_at(dir):
		DirAccess.remove_absolute(dir.path_join(file))
	DirAccess.remove_absolute(dir)


## Awaits the end of `task` (completed or failed, at most `timeout` seconds) and returns the
## watchers of both signals, [completed, failed].
func ended(task: AsyncTask, timeout: float) -> Array[SignalWatcher]:
	var watchers: Array[SignalWatcher] = [watch(task, "completed"), watch(task, "failed")]
	await wait_until(func() -> bool: return watchers[0].count() > 0 or watchers[1].count() > 0, timeout)
	return watchers


## Awaits `task` and returns its HttpResponse, or null after failing the test with its message.
func response_of(task: AsyncTask, timeout := 10.0) -> HttpResponse:
	var watchers := await ended(task, timeout)
	var completed := watchers[0]
	var failed := watchers[1]
	if failed.count() > 0:
		fail("the request failed: %s" % failed.args()[0])
		return null
	if not assert_eq(completed.count(), 1, "the request completed within %.0f s" % timeout):
		return null
	return completed.args()[0]


## Awaits `task`, which must fail, and returns its message.
func failure_of(task: AsyncTask, timeout := 10.0) -> String:
	var watchers := await ended(task, timeout)
	var completed := watchers[0]
	var failed := watchers[1]
	if completed.count() > 0:
		var res: HttpResponse = completed.args()[0]
		fail("expected a failure, got HTTP %d" % res.status)
		return ""
	if not assert_eq(failed.count(), 1, "the request failed within %.0f s" % timeout):
		return ""
	return failed.args()[0]


func sha256_of(path: String) -> String:
	return FileAccess.get_sha256(path)


# --- 1. the API ---------------------------------------------------------------------------------

func test_fetch_is_the_one_line_case_and_a_session_request_parses_json() -> void:
	var res: HttpResponse = await response_of(AsyncHub.fetch(nginx + "/small.json"))
	if res == null:
		return
	assert_eq(res.status, 200)
	assert_true(res.is_ok())
	assert_eq(res.json().items[1].name, "item 1")
	assert_eq(res.headers["content-type"], "application/json")
	assert_eq(res.http_version, "HTTP/1.1")
	assert_eq(res.url, nginx + "/small.json")
	session.base_url = aio + "/"
	res = await response_of(session.request("GET", "json", {"query": {"n": 5}}))
	assert_eq(res.json().items.size(), 5)


func test_a_status_that_is_not_2xx_completes_headers_are_joined_and_counted() -> void:
	watch(session, "error")
	var res: HttpResponse = await response_of(session.request("GET", aio + "/status/503"))
	if res == null:
		return
	assert_eq(res.status, 503)
	assert_false(res.is_ok())
	assert_eq(res.text(), "status 503\n")
	assert_eq(res.get_header("X-Repeated"), "one")
	assert_signal_not_emitted(session, "error")
	assert_eq(session.get_stats(), {"requests": 1, "completed": 1, "failed": 0, "in_flight": 0, "bytes_received": 11})


func test_bodies_from_text_bytes_json_form_and_a_streamed_file_arrive_as_sent() -> void:
	var url := aio + "/echo"
	var echo: Dictionary = (await response_of(session.request("POST", url, {"body": "héllo ✓"}))).json()
	assert_eq(echo.body, "héllo ✓")
	assert_eq(echo.headers["content-type"], "text/plain; charset=utf-8")
	echo = (await response_of(session.request("PUT", url, {"body": PackedByteArray([0, 1, 255])}))).json()
	assert_eq(echo.body_bytes, 3)
	assert_eq(echo.headers["content-type"], "application/octet-stream")
	echo = (await response_of(session.request("POST", url, {"json": {"a": [1, 2], "b": "x"}, "headers": {"X-Custom": "yes"}}))).json()
	assert_eq(JSON.parse_string(echo.body), {"a": [1.0, 2.0], "b": "x"})
	assert_eq(echo.headers["content-type"], "application/json")
	assert_eq(echo.headers["x-custom"], "yes")
	echo = (await response_of(session.request("POST", url, {"form": {"name": "a b", "x": "&="}}))).json()
	assert_eq(echo.body, "name=a+b&x=%26%3D")
	var file := dir.path_join("upload.bin")
	# 5 MiB written in pieces: no buffer that size in this process (the lifecycle tests that
	# follow measure RSS, and a large free moves glibc's mmap threshold).
	var piece := PackedByteArray()
	piece.resize(64 << 10)
	for i in piece.size():
		piece[i] = (i * 13) % 256
	var out := FileAccess.open(file, FileAccess.WRITE)
	for i in 80:
		out.store_buffer(piece)
	out.close()
	echo = (await response_of(session.request("PUT", url, {"file": file}), 20.0)).json()
	assert_eq(echo.body_bytes, 80 * piece.size())
	assert_eq(echo.sha256, sha256_of(file))


func test_unknown_options_and_two_bodies_fail_the_task_with_their_name() -> void:
	watch(session, "error")
	expect_error("unknown option 'hedaers'")
	assert_true((await failure_of(session.request("GET", aio + "/echo", {"hedaers": {}}))).contains("unknown option 'hedaers'"))
	expect_error("options body and json are each a body")
	assert_true((await failure_of(session.request("POST", aio + "/echo", {"body": "a", "json": 1}))).contains("each a body"))
	assert_signal_emitted(session, "error")


# --- 2. what a real client does ------------------------------------------------------------------

func test_http2_multiplexes_many_requests_on_one_tls_connection_and_http1_keeps_it_alive() -> void:
	var tasks: Array[AsyncTask] = []
	for i in 20:
		var task := session.request("GET", nginx_tls + "/small.json")
		watch(task, "completed")
		tasks.append(task)
	assert_true(await wait_until(func(): return tasks.all(func(t): return signal_count(t, "completed") == 1), 10.0), "all completed")
	var connections := {}
	for task in tasks:
		var res: HttpResponse = signal_args(task, "completed")[0]
		assert_eq(res.http_version, "HTTP/2")
		connections[res.headers["x-connection"]] = true
	assert_eq(connections.size(), 1, "20 requests on one connection: %s" % connections.keys())
	session.http2 = false
	var res: HttpResponse = await response_of(session.request("GET", nginx_tls + "/small.json"))
	assert_eq(res.http_version, "HTTP/1.1")
	var again: HttpResponse = await response_of(session.request("GET", nginx_tls + "/small.json"))
	assert_eq(again.headers["x-connection"], res.headers["x-connection"], "HTTP/1.1 keeps the connection alive for the next request")


func test_gzip_deflate_brotli_and_zstd_are_decoded() -> void:
	var text: HttpResponse = await response_of(session.request("GET", nginx + "/text.txt"))
	var expected := FileAccess.get_file_as_string(Env.value(Env.NGINX_ROOT).path_join("text.txt"))
	assert_eq(text.text(), expected, "nginx's gzip")
	var fox := "The quick brown fox jumps over the lazy dog. ".repeat(200)
	for encoding in ["gzip", "deflate", "br", "zstd"]:
		var res: HttpResponse = await response_of(session.request("GET", aio + "/encoded/" + encoding))
		if res == null:
			return
		assert_eq(res.text(), fox, encoding)


func test_redirects_are_followed_bounded_and_drop_authorization_across_origins() -> void:
	var res: HttpResponse = await response_of(session.request("GET", nginx + "/redirect"))
	assert_eq(res.url, nginx + "/small.json")
	assert_eq(res.status, 200)
	session.headers = {"Authorization": "Bearer s3cret"}
	res = await response_of(session.request("GET", nginx_tls + "/authorization"))
	assert_eq(res.text(), "authorization=Bearer s3cret", "sent to the origin")
	res = await response_of(session.request("GET", nginx_tls + "/to-other-origin"))
	assert_eq(res.url, nginx + "/authorization")
	assert_eq(res.text(), "authorization=", "not sent to another origin")
	expect_error("redirect loop")
	assert_true((await failure_of(session.request("GET", nginx + "/redirect-loop"))).contains("redirect loop"))
	session.follow_redirects = false
	res = await response_of(session.request("GET", nginx + "/redirect"))
	assert_eq(res.status, 302)


func test_proxies_with_basic_auth_for_http_and_https_from_the_property_and_the_environment() -> void:
	var proxy := "http://%s:%s@127.0.0.1:%d" % [Env.value(Env.PROXY_USER), Env.value(Env.PROXY_PASSWORD), Env.port(Env.PROXY_PORT)]
	session.proxy = proxy
	var res: HttpResponse = await response_of(session.request("GET", aio + "/echo"))
	assert_eq(res.status, 200, "http through the proxy")
	res = await response_of(session.request("GET", nginx_tls + "/small.json"))
	assert_eq(res.status, 200, "https through CONNECT")
	session.proxy = "http://%s:wrong@127.0.0.1:%d" % [Env.value(Env.PROXY_USER), Env.port(Env.PROXY_PORT)]
	res = await response_of(session.request("GET", aio + "/echo"))
	assert_eq(res.status, 401, "the proxy refuses wrong credentials (tinyproxy answers them with 401)")
	expect_error("the proxy refused to open a tunnel (CONNECT)")
	var message := await failure_of(session.request("GET", nginx_tls + "/small.json"))
	assert_true(message.contains("check the proxy's address and credentials"), message)
	# From the environment, with NO_PROXY bypassing it.
	OS.set_environment("HTTP_PROXY", "http://nobody:wrong@127.0.0.1:%d" % Env.port(Env.PROXY_PORT))
	session.proxy = ""
	res = await response_of(session.request("GET", aio + "/echo"))
	assert_eq(res.status, 401, "HTTP_PROXY is used")
	OS.set_environment("NO_PROXY", "127.0.0.1")
	session.timeout_sec = 29.0 # A changed property builds a new client, which reads the environment.
	res = await response_of(session.request("GET", aio + "/echo"))
	assert_eq(res.status, 200, "NO_PROXY bypasses it")
	OS.unset_environment("HTTP_PROXY")
	OS.unset_environment("NO_PROXY")


func test_tls_is_always_verified_and_ca_file_trusts_a_private_ca() -> void:
	session.ca_file = ""
	expect_error("TLS failed")
	var message := await failure_of(session.request("GET", nginx_tls + "/small.json"))
	assert_true(message.contains("TLS failed") and message.contains("ca_file"), message)
	session.ca_file = Env.value(Env.WS_WRONG_CA)
	expect_error("TLS failed")
	await failure_of(session.request("GET", nginx_tls + "/small.json"))
	session.ca_file = Env.value(Env.HTTP_CA)
	assert_eq((await response_of(session.request("GET", nginx_tls + "/small.json"))).status, 200)


func test_cookies_are_kept_only_when_asked() -> void:
	await response_of(session.request("GET", aio + "/cookie/set", {"query": {"flavour": "oat"}}))
	assert_eq((await response_of(session.request("GET", aio + "/cookie/get"))).text(), "")
	session.cookies = true
	await response_of(session.request("GET", aio + "/cookie/set", {"query": {"flavour": "oat"}}))
	assert_eq((await response_of(session.request("GET", aio + "/cookie/get"))).text(), "flavour=oat")


func test_a_16_mib_download_is_byte_exact_and_resume_continues_with_range() -> void:
	var path := dir.path_join("big.bin")
	var progress := watch(session, "download_progress")
	var res: HttpResponse = await response_of(session.download(nginx + "/big.bin", path), 20.0)
	if res == null:
		return
	assert_eq(res.status, 200)
	var original := Env.value(Env.NGINX_ROOT).path_join("big.bin")
	assert_eq(sha256_of(path), sha256_of(original))
	assert_false(FileAccess.file_exists(path + ".part"))
	assert_gt(progress.count(), 0)
	assert_eq(progress.args(), [nginx + "/big.bin", 16 << 20, 16 << 20])
	# A part from an earlier attempt: only the rest is asked for.
	var part := FileAccess.open(path + ".part", FileAccess.WRITE)
	part.store_buffer(FileAccess.open(original, FileAccess.READ).get_buffer(1 << 20))
	part.close()
	DirAccess.remove_absolute(path)
	progress.clear()
	res = await response_of(session.download(nginx + "/big.bin", path, {"resume": true}), 20.0)
	assert_eq(res.status, 206, "only the rest was asked for")
	assert_ge(progress.args(0)[1], 1 << 20, "progress counts the resumed part")
	assert_eq(sha256_of(path), sha256_of(original))


# --- 3. streaming --------------------------------------------------------------------------------

func test_ndjson_lines_arrive_in_order_as_they_are_sent() -> void:
	var stream := session.stream("GET", aio + "/ndjson", {"query": {"n": 50, "delay": 5}})
	var lines := watch(stream, "line_received")
	var started := watch(stream, "response_started")
	assert_true(await watch(stream, "finished").wait(10.0), "finished")
	assert_eq(started.args()[0], 200)
	assert_eq(started.args()[1]["content-type"], "application/x-ndjson")
	assert_eq(lines.count(), 50)
	for i in lines.count():
		assert_eq(JSON.parse_string(lines.args(i)[0]), {"n": float(i), "text": "ünïcode ✓"})
	assert_true(stream.is_done())


func test_server_sent_events_are_parsed_as_browsers_do() -> void:
	var stream := session.stream("GET", aio + "/sse", {"reconnect": false})
	var events := watch(stream, "event_received")
	assert_true(await watch(stream, "finished").wait(10.0), "finished")
	assert_eq(events.emissions, [
		["message", "first", "1"],
		["score", "line one\nline two", "2"],
		["message", "no id given keeps the last", "2"],
	])


func test_an_event_stream_reconnects_with_last_event_id_and_retry_until_204() -> void:
	var stream := session.stream("GET", aio + "/sse/reconnect")
	var events := watch(stream, "event_received")
	var started := watch(stream, "response_started")
	assert_true(await watch(stream, "finished").wait(10.0), "a 204 finishes the stream")
	assert_eq(events.emissions, [["message", "before the drop", "7"], ["message", "last id 7", "8"]])
	assert_eq(started.count(), 2)


func test_chunks_carry_the_whole_body_and_cancel_stops_a_stream() -> void:
	var stream := session.stream("GET", aio + "/bytes/1000000")
	var total := [0]
	stream.chunk_received.connect(func(data: PackedByteArray) -> void: total[0] += data.size())
	assert_true(await watch(stream, "finished").wait(10.0))
	assert_eq(total[0], 1000000)
	var ticker := session.stream("GET", aio + "/sse/ticker", {"query": {"interval": 20}})
	var ticks := watch(ticker, "event_received")
	watch(ticker, "finished")
	watch(ticker, "failed")
	assert_true(await ticks.wait(5.0, 2))
	assert_true(ticker.cancel())
	var seen := ticks.count()
	await wait_seconds(0.2)
	assert_eq(ticks.count(), seen, "nothing after cancel()")
	assert_true(ticker.is_done())
	assert_signal_not_emitted(ticker, "finished")
	assert_signal_not_emitted(ticker, "failed")


# --- 4. bad input ---------------------------------------------------------------------------------

func test_limits_resets_stalls_big_headers_and_bad_json_fail_with_their_cause() -> void:
	session.max_response_bytes = 1000
	expect_error("larger than max_response_bytes (1000)")
	assert_true((await failure_of(session.request("GET", nginx + "/big.bin"))).contains("larger than max_response_bytes (1000)"))
	expect_error("the connection failed while the body arrived")
	session.max_response_bytes = 1 << 20
	assert_true((await failure_of(session.request("GET", aio + "/reset"))).contains("the connection failed while the body arrived"))
	session.read_timeout_sec = 0.3
	expect_error("the server sent nothing for 0.3 s (read_timeout_sec)")
	assert_true((await failure_of(session.request("GET", aio + "/stall-body"))).contains("sent nothing for 0.3 s"))
	# The whole request's limit, with the read timeout out of its way (both at 0.3 s would race).
	session.read_timeout_sec = 10.0
	session.timeout_sec = 0.3
	expect_error("timed out after 0.3 s (timeout_sec)")
	assert_true((await failure_of(session.request("GET", aio + "/stall"))).contains("timed out after 0.3 s"))
	session.timeout_sec = 10.0
	expect_error("the response's headers are too large")
	var message := await failure_of(session.request("GET", aio + "/big-header"))
	assert_true(message.contains("message head is too large"), message)
	var text: HttpResponse = await response_of(session.request("GET", nginx + "/text.txt"))
	expect_error("HttpResponse.json(): the body of %s/text.txt is not valid JSON" % nginx)
	assert_eq(text.json(), null)


func test_a_stream_fails_on_a_stall_and_on_an_oversize_line() -> void:
	session.read_timeout_sec = 0.3
	var stalled := session.stream("GET", aio + "/stall")
	expect_error("sent nothing for 0.3 s")
	assert_true(await watch(stalled, "failed").wait(5.0))
	assert_true(watch(stalled, "failed").args()[0].contains("sent nothing"))
	session.max_line_bytes = 10
	var long := session.stream("GET", aio + "/ndjson", {"query": {"n": 3}})
	expect_error("a line longer than 10 bytes (max_line_bytes)")
	assert_true(await watch(long, "failed").wait(5.0))


func test_a_failed_download_leaves_no_partial_file_unless_resume() -> void:
	var path := dir.path_join("reset.bin")
	expect_error("the connection failed while the body arrived", 2)
	await failure_of(session.download(aio + "/reset", path))
	assert_false(FileAccess.file_exists(path) or FileAccess.file_exists(path + ".part"), "nothing left")
	await failure_of(session.download(aio + "/reset", path, {"resume": true}))
	assert_false(FileAccess.file_exists(path))
	assert_eq(FileAccess.get_file_as_bytes(path + ".part").size(), 5000, "the part is kept for a resume")


# --- 5. owners: freeing, cancelling, quitting --------------------------------------------------------

func test_freeing_a_session_mid_download_cancels_it_and_removes_the_part() -> void:
	var path := dir.path_join("stalled.bin")
	var task := session.download(aio + "/stall-body", path)
	var progress := watch(session, "download_progress")
	var cancelled := watch(task, "cancelled")
	watch(task, "failed")
	assert_true(await progress.wait(5.0, 1), "the download began")
	assert_true(await wait_until(func(): return FileAccess.file_exists(path + ".part"), 5.0), "its part file exists")
	var stream := session.stream("GET", aio + "/sse/ticker", {"query": {"interval": 20}})
	assert_true(await watch(stream, "event_received").wait(5.0))
	session.free()
	assert_true(await cancelled.wait(2.0, 1), "the download's task is cancelled")
	assert_false(FileAccess.file_exists(path + ".part") or FileAccess.file_exists(path), "no file left")
	assert_true(stream.is_done(), "the stream ended with its session")
	assert_signal_not_emitted(task, "failed")


func test_cancel_all_cancels_fetches() -> void:
	var task := AsyncHub.fetch(aio + "/stall")
	var cancelled := watch(task, "cancelled")
	await wait_frames(2)
	assert_ge(AsyncHub.cancel_all(), 1)
	assert_true(await cancelled.wait(1.0, 1))


func test_quitting_with_requests_in_flight_exits_promptly_and_cleanly() -> void:
	var godot := Env.value(Env.GODOT)
	if not assert_false(godot.is_empty(), "ASYNC_NET_TEST_GODOT is set (run through `cargo xtask test`)"):
		return
	var args := ["--headless", "--path", ProjectSettings.globalize_path("res://"), "--scene", "res://lifecycle/http_quit.tscn"]
	var output := []
	var thread := Thread.new()
	thread.start(func() -> int: return OS.execute(godot, args, output, true))
	var started := Time.get_ticks_msec()
	while thread.is_alive() and Time.get_ticks_msec() - started < 40_000:
		await get_tree().process_frame
	var exited_at := Time.get_unix_time_from_system()
	var code: int = thread.wait_to_finish()
	var log := "".join(output)
	assert_eq(code, 0, "exit code; output:\n%s" % log)
	assert_true(log.contains("HTTP in flight"), "requests were in flight when it quit:\n%s" % log)
	var quit_at := 0.0
	for line in log.split("\n"):
		if line.begins_with("QUITTING "):
			quit_at = line.trim_prefix("QUITTING ").to_float()
	if assert_gt(quit_at, 0.0, "the subprocess quit"):
		print("quitting with HTTP requests in flight took %.3f s" % (exited_at - quit_at))
		assert_lt(exited_at - quit_at, 5.0, "seconds from quit() to exit")
	var bad := PackedStringArray()
	for line in log.split("\n"):
		if line.contains("ERROR") or line.contains("panic"):
			bad.append(line)
	assert_eq(bad, PackedStringArray(), "error lines in the subprocess log")
