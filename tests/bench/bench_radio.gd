## The RadioStream benchmarks of `cargo xtask bench` (issue 5, item 6), against the project's own
## local station (`testbed radio-station`, started from the release testbed binary passed as
## --loadgen, on a free loopback port; it bursts about 1 s of audio on connect, as icecast does).
## The decode-speed row comes from `testbed decode-bench` (rust/testbed/src/decode_bench.rs).
##
## Rows:
## - start: milliseconds from play() to the first audio frame pushed into the generator, with
##   prebuffer_sec = 0.2 (the node's own stats.start_latency_msec), median of START_RUNS plays;
## - frame: main-thread CPU per frame while streaming at 60 fps (Engine.max_fps = 60): ours is
##   the hub's step and the node's own per-frame work (events, pushing PCM into the
##   AudioStreamGenerator), the network and the decoding running on other threads; the baseline
##   is the least a GDScript user can do with PCM already decoded: push_buffer() of what the
##   generator has room for, every frame, on the same player setup. Both are measured as the CPU
##   of the frame's process phase (bench_util.gd: Cpu, Phase) with the subject processing less
##   without, in frames that alternate; the whole process's CPU per frame is in the detail.
##
## Prints one line `BENCH {json}` per row, then quits (exit code 1 if something failed).
extends Node

const Util := preload("res://bench/bench_util.gd")
const FPS := 60
const START_RUNS := 9
## The frame row: pairs of frames measured (each with a frame between them, see
## Util.alternating()), then frames of the whole process measured while playing.
const FRAME_PAIRS := 200
const FRAME_SAMPLES := 300
## Issue 15's target: ours at most this times the GDScript baseline.
const FRAME_TARGET := 1.5
const LIMIT_SEC := 120.0
const RATE := 44100


## The baseline: a GDScript node feeding an AudioStreamGenerator from a decoded PCM array.
class GdFeeder extends Node:
	var playback: AudioStreamGeneratorPlayback
	var pcm := PackedVector2Array()
	var position := 0
	var last_process_usec := 0
	var pushed := 0

	func _process(_delta: float) -> void:
		if playback == null:
			return
		var start := Time.get_ticks_usec()
		var n := mini(playback.get_frames_available(), pcm.size() - position)
		if n > 0:
			playback.push_buffer(pcm.slice(position, position + n))
			position = (position + n) % (pcm.size() - RATE)
			pushed += n
		last_process_usec = Time.get_ticks_usec() - start


var _program := ""
var _workdir := ""
var _url := ""
var _server_pid := 0
var _failures := PackedStringArray()
var _radio: RadioStream
var _phase: Util.Phase


func _ready() -> void:
	OS.low_processor_usage_mode_sleep_usec = 0
	Engine.max_fps = FPS
	get_tree().create_timer(LIMIT_SEC, true, false, true).timeout.connect(_on_time_limit)
	_phase = Util.Phase.new(self)
	_run.call_deferred()


func _run() -> void:
	var options := Util.options()
	_program = options.get("loadgen", "")
	_workdir = options.get("workdir", "")
	var only: PackedStringArray = options.get("only", "start,frame").split(",", false)
	if not FileAccess.file_exists(_program) or not DirAccess.dir_exists_absolute(_workdir):
		_fail("needs --loadgen=PATH (the release testbed) and --workdir=DIR; run it with `cargo xtask bench --scene radio`")
	elif await _start_station():
		print("bench_radio: Godot %s, %d CPU cores, station %s" % [
			Engine.get_version_info().string, OS.get_processor_count(), _url])
		if "start" in only:
			await _bench_start()
		if "frame" in only:
			await _bench_frame()
	if _server_pid > 0:
		OS.kill(_server_pid)
	if not _failures.is_empty():
		printerr("bench_radio: %d problem(s): %s" % [_failures.size(), "; ".join(_failures)])
	get_tree().quit(1 if not _failures.is_empty() else 0)


func _new_radio() -> RadioStream:
	var radio := RadioStream.new()
	radio.prebuffer_sec = 0.2
	radio.buffer_sec = 2.0
	add_child(radio)
	radio.error.connect(func(message: String) -> void: printerr("bench_radio: RadioStream error: ", message))
	return radio


func _bench_start() -> void:
	var latencies := PackedFloat64Array()
	for i in START_RUNS:
		var radio := _new_radio()
		radio.play(_url)
		var ok := await Util.wait_until(get_tree(), func(): return radio.get_stats().get("frames_pushed", 0) > 0, 10.0)
		if not ok:
			_fail("start: no audio within 10 s (state %d)" % radio.state)
			radio.free()
			return
		latencies.append(radio.get_stats().start_latency_msec)
		radio.free()
		await Util.frames(get_tree(), 10)
	Util.row("RadioStream: play() to first audio pushed", "ms", Util.median(latencies), 300.0,
		"target of issue #5 (Godot has no streaming player to compare with)", true,
		"median of %d plays of the local station on loopback, prebuffer_sec = 0.2, %d fps; stats.start_latency_msec (min %.0f, max %.0f)" % [
			START_RUNS, FPS, Util.percentile(latencies, 0), Util.percentile(latencies, 100)])


func _bench_frame() -> void:
	# Ours: stream and let the buffer fill, then measure.
	_radio = _new_radio()
	_radio.play(_url)
	if not await Util.wait_until(get_tree(), func(): return _radio.get_stats().get("frames_pushed", 0) > 0, 10.0):
		_fail("frame: the stream did not start")
		return
	await Util.frames(get_tree(), 120)
	var before: Dictionary = _radio.get_stats()
	var radio_on := func(on: bool) -> void:
		AsyncHub.set_process(on)
		_radio.set_process(on)
	var ours := await Util.alternating(get_tree(), _phase, radio_on, FRAME_PAIRS, AsyncHub.get_last_step_usec, 1)
	var ours_whole := await Util.measure(get_tree(), _phase, FRAME_SAMPLES)
	var after: Dictionary = _radio.get_stats()
	var frames_pushed: int = after.frames_pushed - before.frames_pushed
	var skips: int = after.skips - before.skips
	var underruns: int = after.get("underruns", 0) - before.get("underruns", 0)
	# The node's own average covers every frame since play(); it is steady once playing.
	var node_usec: float = after.main_thread_usec_per_frame
	_radio.free()

	# Baseline: GDScript pushing already-decoded PCM into a generator on the same kind of player.
	var pcm := PackedVector2Array()
	pcm.resize(RATE * 8)
	for i in pcm.size():
		var v := sin(TAU * 440.0 * i / RATE) * 0.3
		pcm[i] = Vector2(v, v)
	var player := AudioStreamPlayer.new()
	var generator := AudioStreamGenerator.new()
	generator.mix_rate = RATE
	generator.buffer_length = 2.0
	player.stream = generator
	add_child(player)
	player.play()
	var feeder := GdFeeder.new()
	feeder.pcm = pcm
	feeder.playback = player.get_stream_playback()
	add_child(feeder)
	await Util.frames(get_tree(), 120)
	var feeder_wall := func() -> float: return float(feeder.last_process_usec)
	var base := await Util.alternating(get_tree(), _phase, feeder.set_process, FRAME_PAIRS, feeder_wall, 1)
	var base_whole := await Util.measure(get_tree(), _phase, FRAME_SAMPLES)
	feeder.free()
	player.free()
	# The whole process per frame, less what the two readings of a frame cost by themselves.
	var ours_process: float = ours_whole.process_per_frame() - ours.off
	var base_process: float = base_whole.process_per_frame() - base.off
	Util.row("RadioStream: main-thread CPU per frame while streaming", "us/frame", ours.cost, base.cost,
		"GDScript push_buffer() of already-decoded PCM into an AudioStreamGenerator", true,
		("128 kbit/s MP3 from the local station at %d fps; main-thread CPU of the frame's process phase with the "
		+ "subject processing less without (ours: the hub's _process and the node's, the runtime then stepped by "
		+ "the main-loop hook outside the phase; GDScript: the feeder's _process), in %d triples of frames "
		+ "(without, with, with: the first frame with catches up and is not measured), 10%% trimmed mean of the "
		+ "differences. Whole process per frame (every thread: decoder, I/O worker, the engine's audio mixing; the "
		+ "main thread's process phase), %d frames: ours %.1f, GDScript %.1f us%s. Wall (trimmed means): hub step "
		+ "%.1f us + the node's own %.1f us; GDScript %.1f us. While measured, ours pushed %d frames (%d skips, %d "
		+ "underruns)") % [FPS, FRAME_PAIRS, FRAME_SAMPLES, ours_process, base_process, ours_whole.threads_note(),
		ours.wall, node_usec, base.wall, frames_pushed, skips, underruns],
		Util.verdict(ours.cost <= FRAME_TARGET * base.cost, "ours <= %.1fx GDScript's" % FRAME_TARGET))


func _start_station() -> bool:
	var port_file := _workdir.path_join("radio-station.port")
	var argv := PackedStringArray(["radio-station", "--port", "0", "--port-file", port_file])
	# The station plays target/media/station.mp3, which `cargo xtask bench` made beforehand.
	var started := await Util.start_port_server(get_tree(), _program, argv, port_file, 90.0)
	_server_pid = started[0]
	if _server_pid <= 0:
		_fail("cannot start %s %s" % [_program, " ".join(argv)])
		return false
	var port := started[1]
	if port <= 0:
		_fail("the station (%s radio-station) did not report its port within 90 s" % _program)
		return false
	_url = "http://127.0.0.1:%d/stream.mp3" % port
	return true


func _fail(message: String) -> void:
	_failures.append(message)
	printerr("bench_radio: " + message)


func _on_time_limit() -> void:
	_fail("time limit of %d s reached" % LIMIT_SEC)
	if _server_pid > 0:
		OS.kill(_server_pid)
	get_tree().quit(2)
