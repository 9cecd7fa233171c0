## RadioStream against a real icecast2 fed by ffmpeg (started by `cargo xtask test` on a free
## loopback port, with the generated tone.mp3 looping on /test.mp3), and against the project's own
## local station (rust/testbed/src/radio_station/) for SHOUTcast, playlists and broken streams.
## Tests that stop or restart a source run their own ffmpeg onto a mount of their own.
extends "res://runner/test_case.gd"

const Env := preload("res://runner/env.gd")

var radio: RadioStream
var icecast_port := 0
var station_port := 0
var ffmpeg_pids: Array[int] = []
var mount_serial := 0


func _init() -> void:
	timeouts = {
		"test_recording_matches_ffmpegs_own_decode": 40.0,
		"test_main_thread_stalls_cause_no_skips": 30.0,
		"test_source_stopped_and_restarted_plays_again": 50.0,
		"test_a_silence_is_one_underrun_however_long": 40.0,
		"test_after_an_outage_playback_resumes_with_the_rebuffer": 50.0,
		"test_garbage_mid_stream_resyncs_and_keeps_playing": 20.0,
		"test_chunked_and_redirected_streams_play": 30.0,
		"test_aac_and_ogg_vorbis_through_icecast_play_without_decode_errors": 40.0,
		"test_a_station_at_another_sample_rate_retunes_the_generator": 30.0,
		"test_icecasts_own_m3u_and_xspf_playlists_resolve_to_the_mount": 30.0,
		"test_https_through_nginx_and_a_redirect_from_http_to_another_host": 30.0,
	}


func before_each() -> void:
	icecast_port = Env.port(Env.ICECAST_PORT)
	station_port = Env.port(Env.STATION_PORT)
	assert_gt(icecast_port, 0, "ASYNC_NET_TEST_ICECAST_PORT is set (run through `cargo xtask test`)")
	assert_gt(station_port, 0, "ASYNC_NET_TEST_STATION_PORT is set")
	radio = RadioStream.new()
	radio.prebuffer_sec = 0.2
	radio.reconnect_min_sec = 0.1
	radio.reconnect_max_sec = 0.5
	add_child(radio)


func after_each() -> void:
	if is_instance_valid(radio):
		radio.free()
	for pid in ffmpeg_pids:
		OS.kill(pid)
	ffmpeg_pids.clear()


func icecast(mount := "/test.mp3") -> String:
	return "http://127.0.0.1:%d%s" % [icecast_port, mount]


func station(path: String) -> String:
	return "http://127.0.0.1:%d%s" % [station_port, path]


func errors_text() -> String:
	return " | ".join(watch(radio, "error").emissions.map(func(args): return args[0]))


## Plays `url` and waits for `started`; returns its info ({} on timeout).
func play_and_wait(url: String, timeout := 10.0) -> Dictionary:
	var started := watch(radio, "started")
	var before := started.count()
	radio.play(url)
	if not await started.wait(timeout, before + 1):
		return {}
	return started.args()[0]


## Starts an ffmpeg source sending tone.mp3 once, in real time, to a new icecast mount; returns the
## mount's URL once a listener can connect (icecast answers 404 until the source is up).
## `encode` re-encodes it (ffmpeg output options with `-content_type` and `-f`) instead of
## sending the MP3 as it is.
func start_source(mount := "", encode: Array = []) -> String:
	if mount.is_empty():
		mount_serial += 1
		mount = "/own-%d-%d.mp3" % [OS.get_process_id(), mount_serial]
	var password := Env.value(Env.ICECAST_SOURCE_PASSWORD)
	if encode.is_empty():
		encode = ["-c", "copy", "-content_type", "audio/mpeg", "-f", "mp3"]
	var args := ["-hide_banner", "-loglevel", "error", "-re", "-i", Env.value(Env.RADIO_TONE)]
	args.append_array(encode)
	args.append("icecast://source:%s@127.0.0.1:%d%s" % [password, icecast_port, mount])
	var pid := OS.create_process(Env.value(Env.FFMPEG), args)
	assert_gt(pid, 0, "ffmpeg started")
	ffmpeg_pids.append(pid)
	var deadline := Time.get_ticks_msec() + 15000
	while await http_status(icecast(mount)) != 200:
		if Time.get_ticks_msec() > deadline:
			fail("the mount %s is not live after 15 s" % mount)
			break
		await wait_seconds(0.1)
	return icecast(mount)


func stop_source() -> void:
	for pid in ffmpeg_pids:
		OS.kill(pid)
	ffmpeg_pids.clear()


## The HTTP status of a GET of `url`; a stream's body is abandoned after its first bytes.
func http_status(url: String, headers := PackedStringArray()) -> int:
	var request := HTTPRequest.new()
	request.download_chunk_size = 4096
	request.body_size_limit = 65536
	add_child(request)
	request.request(url, headers)
	var result: Array = await request.request_completed
	request.queue_free()
	return result[1]


func test_plays_icecast_and_reports_the_station() -> void:
	var before_play_usec := Time.get_ticks_usec()
	var info := await play_and_wait(icecast())
	var until_started_msec := (Time.get_ticks_usec() - before_play_usec) / 1000.0
	assert_false(info.is_empty(), "started: %s" % errors_text())
	assert_eq(info.sample_rate, 44100)
	assert_eq(info.channels, 2)
	assert_eq(info.codec, "mp3")
	assert_eq(info.content_type, "audio/mpeg")
	assert_eq(radio.state, RadioStream.CONNECTED)
	var pushed: int = radio.get_stats().frames_pushed
	await wait_seconds(1.0)
	var stats := radio.get_stats()
	assert_gt(stats.frames_pushed, pushed, "audio keeps flowing")
	assert_gt(stats.bytes_received, 10000)
	assert_eq(stats.decode_errors, 0)
	# started is emitted with the first audio pushed: the latency (-1 before) is within the wait.
	assert_gt(stats.start_latency_msec, 0.0, "play() to the first audio pushed")
	assert_le(stats.start_latency_msec, until_started_msec, "no longer than play() to started")
	assert_eq(stats.skips, 0, "no skips once playing")


func test_title_changes_when_icecast_metadata_is_updated() -> void:
	var titles := watch(radio, "title_changed")
	assert_false((await play_and_wait(icecast())).is_empty(), errors_text())
	var title := "Test Title %d — Zoë's \"song\"; part 2" % Time.get_ticks_usec()
	var auth := "%s:%s" % [
		Env.value(Env.ICECAST_ADMIN_USER),
		Env.value(Env.ICECAST_ADMIN_PASSWORD),
	]
	var admin := "http://127.0.0.1:%d/admin/metadata?mount=/test.mp3&mode=updinfo&song=%s" % [icecast_port, title.uri_encode()]
	var status := await http_status(admin, PackedStringArray(["Authorization: Basic " + Marshalls.utf8_to_base64(auth)]))
	assert_eq(status, 200, "icecast accepted the metadata update")
	var seen := await wait_until(func(): return radio.title == title, 10.0)
	assert_true(seen, "title_changed(%s); got %s" % [title, titles.emissions])
	assert_eq(titles.args()[0], title)


func test_recording_matches_ffmpegs_own_decode() -> void:
	var url := await start_source()
	assert_false((await play_and_wait(url)).is_empty(), errors_text())
	var path := OS.get_user_data_dir().path_join("radio_recording_%d.wav" % OS.get_process_id())
	assert_true(radio.record_to(path), errors_text())
	assert_true(radio.is_recording())
	await wait_seconds(3.0)
	assert_true(radio.stop_recording())
	assert_false(radio.is_recording())
	var output := []
	var code := OS.execute(Env.value(Env.PYTHON), [
		ProjectSettings.globalize_path("res://helpers/wav_compare.py"),
		"--ffmpeg", Env.value(Env.FFMPEG),
		"--reference", Env.value(Env.RADIO_TONE),
		"--recording", path,
	], output, true)
	assert_eq(code, 0, "wav_compare ran: %s" % output)
	var report = JSON.parse_string(output[0].strip_edges().split("\n")[-1])
	assert_true(report is Dictionary, "a JSON report: %s" % output)
	if report is Dictionary:
		print("  recording vs ffmpeg: %s" % JSON.stringify(report))
		assert_eq(report.channels, 2)
		assert_eq(report.rate, 44100)
		assert_gt(report.frames, 44100 * 2, "about 3 s recorded")
		assert_ge(report.correlation, 0.99, "the recording matches ffmpeg's decode: %s" % report)
	DirAccess.remove_absolute(path)


func test_main_thread_stalls_cause_no_skips() -> void:
	var underruns := watch(radio, "underrun")
	radio.buffer_sec = 2.0
	assert_false((await play_and_wait(icecast())).is_empty(), errors_text())
	assert_true(await wait_until(func(): return radio.get_stats().buffered_sec >= 1.0, 10.0), "the buffer fills")
	var skips_before: int = radio.get_stats().skips
	for i in 5:
		await wait_seconds(1.75)
		OS.delay_msec(250)
	await wait_seconds(0.5)
	assert_eq(radio.get_stats().skips, skips_before, "no skips across five 250 ms stalls")
	assert_eq(underruns.count(), 0)


## The control for the test above: with a buffer shorter than the stall, the same stall skips
## and `underrun` fires (so skips are really observed headless).
func test_a_stall_longer_than_the_buffer_skips_and_reports_underrun() -> void:
	var underruns := watch(radio, "underrun")
	radio.buffer_sec = 0.1
	radio.prebuffer_sec = 0.05
	assert_false((await play_and_wait(icecast())).is_empty(), errors_text())
	await wait_seconds(0.5)
	OS.delay_msec(400)
	assert_true(await underruns.wait(5.0, 1), "underrun after a 400 ms stall with 0.1 s of buffer")
	assert_gt(radio.get_stats().skips, 0)
	assert_eq(radio.get_stats().underruns, underruns.count())


## Plays an own icecast source, stops it and waits for the `underrun` that follows; returns
## the mount's url (a reconnect gets 404 until a source is back).
func play_until_the_source_is_gone(underruns: SignalWatcher) -> String:
	var url := await start_source()
	assert_false((await play_and_wait(url)).is_empty(), errors_text())
	expect_error("the stream ended")
	expect_error("HTTP 404 File Not Found from %s" % url, ANY)
	stop_source()
	assert_true(await underruns.wait(10.0, 1), "the ring runs dry once the source is gone")
	return url


## One silence is one underrun: the source goes away and stays away; the generator runs dry
## and stays dry while each reconnect gets 404 (the audio server mixes in blocks, so some
## frames see no new skip), and `underrun` fires once.
func test_a_silence_is_one_underrun_however_long() -> void:
	var underruns := watch(radio, "underrun")
	radio.buffer_sec = 0.5
	var url := await play_until_the_source_is_gone(underruns)
	var skips: int = radio.get_stats().skips
	await wait_seconds(1.5)
	assert_gt(radio.get_stats().skips, skips, "still skipping: the silence goes on")
	assert_ne(radio.state, RadioStream.CONNECTED, "the source is still away")
	assert_eq(underruns.count(), 1, "one silence, one underrun")
	assert_eq(radio.get_stats().underruns, 1)


## After running dry, playback resumes only once `rebuffer_sec` is decoded again: a stream
## that came back plays on with that margin, not with what trickled in first.
func test_after_an_outage_playback_resumes_with_the_rebuffer() -> void:
	var underruns := watch(radio, "underrun")
	radio.rebuffer_sec = 1.0
	var url := await play_until_the_source_is_gone(underruns)
	await start_source(url.substr(url.rfind("/")))
	var pushed: int = radio.get_stats().frames_pushed
	assert_true(await wait_until(func(): return radio.get_stats().frames_pushed > pushed, 20.0), "plays again: %s" % errors_text())
	var resumed_with: float = radio.get_stats().buffered_sec
	assert_ge(resumed_with, 0.9, "resumed with about rebuffer_sec of audio")
	await wait_seconds(2.0)
	assert_eq(underruns.count(), 1, "one outage, one underrun, and none once it played again")
	assert_gt(radio.get_stats().frames_pushed, pushed + 44100, "it plays on")


func test_source_stopped_and_restarted_plays_again() -> void:
	mount_serial += 1
	var mount := "/restart-%d.mp3" % OS.get_process_id()
	var url := await start_source(mount)
	var started := watch(radio, "started")
	assert_false((await play_and_wait(url)).is_empty(), errors_text())
	expect_error("the stream ended")
	# Until the source is back, icecast answers each reconnect with 404.
	expect_error("HTTP 404 File Not Found from %s" % url, ANY)
	stop_source()
	assert_true(await wait_until(func(): return radio.state == RadioStream.RECONNECTING, 15.0), "the drop is noticed")
	assert_true(await wait_until(func(): return errors_text().contains("HTTP 404"), 10.0), "a reconnect while the mount is gone gets 404")
	await start_source(mount)
	assert_true(await started.wait(20.0, 2), "started again after the source is back: %s" % errors_text())
	assert_eq(radio.state, RadioStream.CONNECTED)
	var pushed: int = radio.get_stats().frames_pushed
	await wait_seconds(0.5)
	assert_gt(radio.get_stats().frames_pushed, pushed, "audio flows again")
	assert_ge(radio.get_stats().reconnects, 1)


func test_aac_and_ogg_vorbis_through_icecast_play_without_decode_errors() -> void:
	var streams := [
		["/aac-%d.aac" % OS.get_process_id(), "aac", "audio/aac",
			["-c:a", "aac", "-b:a", "96k", "-content_type", "audio/aac", "-f", "adts"]],
		["/vorbis-%d.ogg" % OS.get_process_id(), "vorbis", "application/ogg",
			["-c:a", "libvorbis", "-q:a", "3", "-content_type", "application/ogg", "-f", "ogg"]],
	]
	for stream in streams:
		var url := await start_source(stream[0], stream[3])
		var info := await play_and_wait(url)
		assert_false(info.is_empty(), "%s started: %s" % [stream[1], errors_text()])
		if info.is_empty():
			continue
		assert_eq(info.codec, stream[1])
		assert_eq(info.content_type, stream[2])
		assert_eq(info.sample_rate, 44100)
		assert_eq(info.channels, 2)
		var pushed: int = radio.get_stats().frames_pushed
		await wait_seconds(1.0)
		var stats := radio.get_stats()
		assert_gt(stats.frames_pushed, pushed, "%s audio keeps flowing" % stream[1])
		assert_eq(stats.decode_errors, 0, "%s decodes cleanly" % stream[1])
		radio.stop()
		stop_source()


func test_a_station_at_another_sample_rate_retunes_the_generator() -> void:
	var at_44 := await start_source("/rate44-%d.mp3" % OS.get_process_id())
	var at_48 := await start_source("/rate48-%d.mp3" % OS.get_process_id(),
		["-c:a", "libmp3lame", "-ar", "48000", "-b:a", "128k", "-content_type", "audio/mpeg", "-f", "mp3"])
	var info := await play_and_wait(at_44)
	assert_eq(info.get("sample_rate"), 44100, "first station: %s" % errors_text())
	var player: AudioStreamPlayer = radio.get_children(true).filter(func(n): return n is AudioStreamPlayer)[0]
	assert_eq((player.stream as AudioStreamGenerator).mix_rate, 44100.0)
	info = await play_and_wait(at_48)
	assert_eq(info.get("sample_rate"), 48000, "second station: %s" % errors_text())
	assert_eq((player.stream as AudioStreamGenerator).mix_rate, 48000.0, "the generator follows the new station")
	var pushed: int = radio.get_stats().frames_pushed
	await wait_seconds(1.0)
	assert_gt(radio.get_stats().frames_pushed, pushed, "audio flows at 48 kHz")
	assert_eq(radio.get_stats().decode_errors, 0)


func test_icecasts_own_m3u_and_xspf_playlists_resolve_to_the_mount() -> void:
	var mount := "/lists-%d.mp3" % OS.get_process_id()
	var live := await start_source(mount)
	for suffix in [".m3u", ".xspf"]:
		var info := await play_and_wait(live + suffix)
		assert_false(info.is_empty(), "%s started: %s" % [suffix, errors_text()])
		if not info.is_empty():
			assert_eq(info.url, live, "%s resolved to the mount" % suffix)
			assert_eq(info.codec, "mp3")
		radio.stop()


func test_https_through_nginx_and_a_redirect_from_http_to_another_host() -> void:
	var http_port := Env.port(Env.NGINX_PORT)
	var tls_port := Env.port(Env.NGINX_TLS_PORT)
	assert_gt(tls_port, 0, "ASYNC_NET_TEST_NGINX_TLS_PORT is set")
	# nginx (TLS with the test CA) in front of icecast.
	radio.ca_file = Env.value(Env.HTTP_CA)
	var direct := "https://127.0.0.1:%d/icecast/test.mp3" % tls_port
	var info := await play_and_wait(direct)
	assert_false(info.is_empty(), "https started: %s" % errors_text())
	if not info.is_empty():
		assert_eq(info.url, direct)
		assert_eq(info.codec, "mp3")
		var pushed: int = radio.get_stats().frames_pushed
		await wait_seconds(0.5)
		assert_gt(radio.get_stats().frames_pushed, pushed, "audio flows over https")
		assert_eq(radio.get_stats().decode_errors, 0)
	radio.stop()
	# http://127.0.0.1 redirects to https://localhost: another scheme and another host.
	info = await play_and_wait("http://127.0.0.1:%d/to-https/icecast/test.mp3" % http_port)
	assert_false(info.is_empty(), "the redirected stream started: %s" % errors_text())
	if not info.is_empty():
		assert_eq(info.url, "https://localhost:%d/icecast/test.mp3" % tls_port)
	radio.stop()
	# Without the CA the certificate is not trusted, and the error says what to set.
	radio.ca_file = ""
	radio.reconnect = false
	var errors := watch(radio, "error")
	expect_error("ca_file")
	radio.play(direct)
	assert_true(await errors.wait(10.0, 1), "an untrusted certificate fails")
	if errors.count() >= 1:
		assert_true(str(errors.args(0)[0]).contains("ca_file"), errors_text())


func test_pls_and_m3u_playlists_resolve_to_the_stream() -> void:
	for path in ["/station.pls", "/station.m3u", "/relative.m3u"]:
		var info := await play_and_wait(station(path))
		assert_false(info.is_empty(), "%s started: %s" % [path, errors_text()])
		if not info.is_empty():
			assert_true(info.url.ends_with("/stream.mp3"), "%s resolved to %s" % [path, info.url])
		radio.stop()


func test_shoutcast_icy_200_ok_plays_with_titles() -> void:
	var titles := watch(radio, "title_changed")
	var info := await play_and_wait(station("/shoutcast"))
	assert_false(info.is_empty(), "started: %s" % errors_text())
	assert_eq(info.name, "async-net demo station")
	assert_eq(info.bitrate, 128)
	assert_true(await titles.wait(10.0, 1), "a title arrives")
	# The station's first title (radio_station.rs: TITLES[0]), from the first metadata block.
	assert_eq(titles.args(0), ["Gentle Chords"])
	assert_eq(radio.title, "Gentle Chords")


func test_chunked_and_redirected_streams_play() -> void:
	# Each path, and the stream it must end up playing.
	var cases := {"/chunked.mp3": "/chunked.mp3", "/redirect": "/stream.mp3"}
	for path in cases:
		var info := await play_and_wait(station(path))
		if assert_false(info.is_empty(), "%s started: %s" % [path, errors_text()]):
			assert_eq(info.url, station(cases[path]), "%s: the URL that plays" % path)
			var pushed: int = radio.get_stats().frames_pushed
			await wait_seconds(1.0)
			var stats := radio.get_stats()
			assert_gt(stats.frames_pushed, pushed, "%s: audio keeps flowing" % path)
			# Chunk sizes never match MP3 frames: any framing left in the audio is a decode error.
			assert_eq(stats.decode_errors, 0, "%s: decode errors" % path)
		radio.stop()


func test_bad_urls_fail_clearly() -> void:
	var cases := {
		station("/missing"): "HTTP 404",
		station("/loop"): "too many redirects",
		station("/html"): "is not an audio stream",
		"ftp://127.0.0.1/x.mp3": "unsupported scheme 'ftp'",
		"not a url": "invalid URL",
	}
	for url in cases:
		var errors := watch(radio, "error")
		var before := errors.count()
		expect_error(cases[url])
		radio.play(url)
		assert_true(await wait_until(func(): return radio.state == RadioStream.FAILED, 10.0), "%s fails" % url)
		assert_gt(errors.count(), before, "%s: an error" % url)
		if errors.count() > before:
			var message: String = errors.args()[0]
			assert_true(message.contains(cases[url]), "%s: %s mentions %s" % [url, message, cases[url]])
		radio.stop()


func test_garbage_mid_stream_resyncs_and_keeps_playing() -> void:
	assert_false((await play_and_wait(station("/garbage.mp3"))).is_empty(), errors_text())
	await wait_seconds(6.0)
	var stats := radio.get_stats()
	assert_gt(stats.decode_errors, 0, "the junk was noticed")
	assert_eq(radio.state, RadioStream.CONNECTED, "still playing")
	var pushed: int = stats.frames_pushed
	await wait_seconds(0.5)
	assert_gt(radio.get_stats().frames_pushed, pushed, "audio still flows")


func test_truncated_stream_reports_and_reconnects() -> void:
	var errors := watch(radio, "error")
	# Each reconnect gets the same two seconds of audio and the same cut.
	expect_error("the stream ended", ANY)
	assert_false((await play_and_wait(station("/truncated.mp3"))).is_empty(), errors_text())
	assert_true(await errors.wait(10.0, 1), "the end of the stream is reported")
	assert_true(errors_text().contains("ended"), errors_text())
	assert_true(await wait_until(func(): return radio.get_stats().reconnects >= 1, 10.0), "and it reconnects")


func test_plays_positionally_through_an_audio_stream_player_3d() -> void:
	var world := Node3D.new()
	var speaker := AudioStreamPlayer3D.new()
	world.add_child(speaker)
	add_child(world)
	radio.player = radio.get_path_to(speaker)
	assert_false((await play_and_wait(icecast())).is_empty(), errors_text())
	assert_true(speaker.playing, "the 3D player plays")
	assert_true(speaker.stream is AudioStreamGenerator)
	assert_eq(speaker.stream.mix_rate, 44100.0)
	assert_true(is_equal_approx(speaker.stream.buffer_length, radio.buffer_sec))
	radio.stop()
	assert_false(speaker.playing, "stop() stops the player")
	world.free()


func test_without_a_player_an_internal_one_is_made() -> void:
	assert_false((await play_and_wait(icecast())).is_empty(), errors_text())
	assert_eq(radio.get_child_count(), 0, "no visible child")
	var internal := radio.get_child(0, true)
	assert_true(internal is AudioStreamPlayer, "an internal AudioStreamPlayer")
	assert_true(internal.playing)


func test_stop_emits_stopped_and_freeing_while_playing_is_safe() -> void:
	var stopped := watch(radio, "stopped")
	assert_false((await play_and_wait(icecast())).is_empty(), errors_text())
	radio.stop()
	assert_eq(stopped.count(), 1)
	assert_eq(radio.state, RadioStream.STOPPED)
	assert_false(radio.is_playing())
	assert_false((await play_and_wait(icecast())).is_empty(), errors_text())
	radio.free()
	await wait_frames(5)


func test_record_to_needs_playback_and_a_writable_path() -> void:
	watch(radio, "error")
	expect_error("record_to: not playing")
	assert_false(radio.record_to(OS.get_user_data_dir().path_join("never.wav")), "not playing")
	assert_true(errors_text().contains("not playing"), errors_text())
	assert_false((await play_and_wait(icecast())).is_empty(), errors_text())
	await wait_frames(2)
	expect_error("cannot create /nonexistent-dir/x/y.wav")
	assert_false(radio.record_to("/nonexistent-dir/x/y.wav"), "an unwritable path is refused")


func test_get_stats_has_the_same_keys_stopped_and_playing() -> void:
	var idle_keys := radio.get_stats().keys()
	idle_keys.sort()
	assert_eq(radio.get_stats().frames_pushed, 0, "zero before the first play()")
	assert_eq(radio.get_stats().start_latency_msec, -1.0)
	assert_false(radio.is_processing(), "an idle radio costs no frame")
	assert_false((await play_and_wait(icecast())).is_empty(), errors_text())
	assert_true(radio.is_processing(), "it feeds the generator each frame while playing")
	var playing_keys := radio.get_stats().keys()
	playing_keys.sort()
	assert_eq(playing_keys, idle_keys)
	var pushed: int = radio.get_stats().frames_pushed
	assert_gt(pushed, 0)
	radio.stop()
	assert_false(radio.is_processing())
	var stopped := radio.get_stats()
	var stopped_keys := stopped.keys()
	stopped_keys.sort()
	assert_eq(stopped_keys, idle_keys)
	assert_ge(stopped.frames_pushed, pushed, "the counters of the last play() stay until the next")
	assert_eq(stopped.connects, 1)
	assert_eq(stopped.buffered_sec, 0.0)
	assert_eq(stopped.state, RadioStream.STOPPED)


## `reconnects` counts retries after a lost stream or a failed attempt, as in every network
## node; the first connect is not one.
func test_reconnects_count_retries_and_not_the_first_connect() -> void:
	assert_false((await play_and_wait(icecast())).is_empty(), errors_text())
	assert_eq(radio.get_stats().connects, 1)
	assert_eq(radio.get_stats().reconnects, 0, "the first connect is not a reconnect")
	radio.stop()
	watch(radio, "error")
	expect_error("connection refused by 127.0.0.1", ANY)
	radio.play("http://127.0.0.1:%d/refused.mp3" % free_port())
	assert_true(await wait_until(func(): return radio.get_stats().reconnects >= 2, 10.0), "failed attempts are retried")
	assert_eq(radio.get_stats().connects, 0)
	assert_true(errors_text().contains("refused"), errors_text())


func test_no_signal_after_stop_while_streaming() -> void:
	var titles := watch(radio, "title_changed")
	var states := watch(radio, "state_changed")
	var errors := watch(radio, "error")
	var started := watch(radio, "started")
	var stopped := watch(radio, "stopped")
	assert_false((await play_and_wait(station("/shoutcast"))).is_empty(), errors_text())
	radio.stop()
	var counts := [titles.count(), states.count(), errors.count(), started.count(), stopped.count()]
	await wait_seconds(1.0)
	assert_eq([titles.count(), states.count(), errors.count(), started.count(), stopped.count()], counts)
	assert_eq(radio.state, RadioStream.STOPPED)
