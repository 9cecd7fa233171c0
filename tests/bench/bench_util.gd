## What every bench scene shares: its command-line options, waiting on
## frames, the CPU clocks and the per-frame meter, the processes it starts,
## the statistics it reports, and the `BENCH {json}` row that `cargo xtask
## bench` collects.
extends RefCounted

## This script itself, for its inner classes (which cannot call its static functions by name).
const Util := preload("res://bench/bench_util.gd")


## CPU time from Linux's /proc. Each thread's /proc/self/task/<tid>/schedstat starts with the
## nanoseconds it has run on a CPU, the clock of CLOCK_THREAD_CPUTIME_ID; the main thread's tid is
## the process id. Unlike wall time, it leaves out the time a thread waited for a CPU while other
## processes ran; and summed over every thread it still counts the work moved off the main thread.
##
## The kernel brings a thread's figure up to date when the thread sleeps, at a scheduler tick
## (every 4 ms here), and, for the thread reading it, when that thread reads /proc/self/stat (the
## process's times, which the kernel computes exactly for its caller): main_usec() reads that
## first, so the main thread's figure is exact to the microsecond (checked against
## CLOCK_THREAD_CPUTIME_ID in C). Another thread's figure can lag by what it ran since it last
## slept or was ticked: nothing for a thread asleep, which is where the message rows take their
## readings (before a flood and after its last message, the I/O worker waits on its socket).
##
## The files stay open: flush() drops what stdio buffered and seek(0) makes the kernel write the
## file afresh, a few microseconds where opening it costs tens.
class Cpu:
	var _main: FileAccess
	var _process: FileAccess

	func _init() -> void:
		_main = FileAccess.open("/proc/self/task/%d/schedstat" % OS.get_process_id(), FileAccess.READ)
		_process = FileAccess.open("/proc/self/stat", FileAccess.READ)

	## Whether /proc gives CPU times here (Linux).
	func is_available() -> bool:
		return _main != null and _process != null and main_usec() > 0.0

	## Microseconds the main thread has run on a CPU, up to now (0 where /proc is missing). About
	## 25 us of main-thread time a call.
	func main_usec() -> float:
		if _process == null:
			return 0.0
		_process.flush()
		_process.seek(0)
		_process.get_line()
		return read(_main)

	## What two main_usec() calls in a row measure: the part of a reading that falls inside a
	## bracket of two (the median of 101 pairs).
	func pair_usec() -> float:
		var pairs := PackedFloat64Array()
		for i in 101:
			var first := main_usec()
			pairs.append(main_usec() - first)
		return Util.median(pairs)

	## The schedstat file of every thread but the main one, by thread id.
	static func open_other_threads() -> Dictionary:
		var files := {}
		for tid in DirAccess.get_directories_at("/proc/self/task"):
			var file := FileAccess.open("/proc/self/task/%s/schedstat" % tid, FileAccess.READ)
			if file != null and tid != str(OS.get_process_id()):
				files[tid] = file
		return files

	## Microseconds each thread of `files` has run, by thread id; a thread that ended is left out.
	static func read_threads(files: Dictionary) -> Dictionary:
		var usec := {}
		for tid: String in files:
			var value := read(files[tid])
			if value >= 0.0:
				usec[tid] = value
		return usec

	## The microseconds in an open schedstat file, or -1 once its thread ended.
	static func read(file: FileAccess) -> float:
		if file == null:
			return -1.0
		file.flush()
		file.seek(0)
		var line := file.get_line()
		return line.get_slice(" ", 0).to_int() / 1000.0 if line != "" else -1.0


## The main thread's CPU time in each frame's process phase: every node's _process, the hub's
## step among them (with the GDScript signal handlers it calls), between two probe nodes, one
## processing first and one last. What lies between a frame's readings is the work of the nodes
## that process, plus a constant part of the two readings themselves (about 40 us here), which
## every figure takes out: each is a difference with frames without the subject.
##
## Why not whole frames: an idle headless frame at 60 fps costs the main thread 200-300 us of CPU
## here (the engine's frame, waking from the frame's sleep on a VM), and between windows of 300
## frames that drifted by +-40 us with what else ran on the machine, ten times the fixed costs
## the idle rows compare. Measured within the process phase, the same cost agrees within about
## 1 us from one measurement to the next. What the runtime costs elsewhere in a frame is left
## out: the engine's main-loop hook (gdext's frame callback, after the process phase), which only
## checks that the hub stepped this frame, and waking from sleep.
class Phase:
	## Main-thread CPU microseconds of the last frame's process phase.
	var last_usec := 0.0
	var _cpu := Cpu.new()
	var _began := 0.0

	## Adds the two probe nodes under `parent` (which stays in the tree while measuring).
	func _init(parent: Node) -> void:
		for first: bool in [true, false]:
			var probe := Probe.new()
			probe.name = "PhaseProbeFirst" if first else "PhaseProbeLast"
			probe.process_mode = Node.PROCESS_MODE_ALWAYS
			# The hub processes at the lowest priority but one half (i32::MIN / 2).
			probe.process_priority = -2147483648 if first else 2147483647
			probe.on_process = _begin if first else _end
			parent.add_child.call_deferred(probe)

	func _begin() -> void:
		_began = _cpu.main_usec()

	func _end() -> void:
		last_usec = _cpu.main_usec() - _began


## A node that calls `on_process` from its _process.
class Probe extends Node:
	var on_process: Callable

	func _process(_delta: float) -> void:
		on_process.call()


## Measures a window of frames: the main thread's CPU time of each frame's process phase
## (`phase`), a wall-time figure of each frame (`wall`: the hub's step, or a baseline's own
## _process), and the CPU time of every other thread of the process over the window. It takes its
## readings as a frame starts (SceneTree.process_frame), from the frame before.
class Meter:
	## Emitted by the tick that ends the window.
	signal finished

	enum { IDLE, ARMED, RUNNING, STOPPING }

	## Main-thread CPU microseconds of each frame's process phase.
	var main := PackedFloat64Array()
	## The wall-time figure of each frame, in microseconds.
	var wall := PackedFloat64Array()
	## Time.get_ticks_usec() at each frame's tick.
	var ticks := PackedInt64Array()
	## CPU microseconds of every thread but the main one over the window (the I/O worker, the
	## radio's decoder, the engine's own threads).
	var others_usec := 0.0
	## Threads that ended during the window: what they ran in it is missing from others_usec.
	var threads_ended := 0

	var _tree: SceneTree
	var _phase: Phase
	var _wall: Callable
	var _state := IDLE
	var _files := {}
	var _start := {}

	## `wall` returns the wall-time figure of the frame that just ended (none: 0).
	func _init(tree: SceneTree, phase: Phase, wall := Callable()) -> void:
		_tree = tree
		_phase = phase
		_wall = wall

	## Starts a window when the next frame starts.
	func start() -> void:
		main = PackedFloat64Array()
		wall = PackedFloat64Array()
		ticks = PackedInt64Array()
		others_usec = 0.0
		threads_ended = 0
		if _state == IDLE:
			_tree.process_frame.connect(_tick)
		_state = ARMED

	## Ends the window when the next frame starts, and waits for it.
	func stop() -> void:
		if _state == IDLE:
			return
		if _state == ARMED:
			_tree.process_frame.disconnect(_tick)
			_state = IDLE
			return
		_state = STOPPING
		await finished

	func frames() -> int:
		return main.size()

	## Main-thread CPU microseconds per frame, the mean over the window.
	func main_per_frame() -> float:
		return Util.sum(main) / maxi(main.size(), 1)

	## Whole-process CPU microseconds over the window: the main thread's process phases and every
	## other thread.
	func process_usec() -> float:
		return Util.sum(main) + others_usec

	## Whole-process CPU microseconds per frame over the window.
	func process_per_frame() -> float:
		return process_usec() / maxi(main.size(), 1)

	## Frames per second over the window.
	func fps() -> float:
		return (ticks.size() - 1) / ((ticks[-1] - ticks[0]) / 1e6) if ticks.size() > 1 else 0.0

	## What a reader needs to judge the process figure: threads that ended meanwhile.
	func threads_note() -> String:
		return "" if threads_ended == 0 else " (%d thread(s) ended during the window)" % threads_ended

	func _tick() -> void:
		if _state == ARMED:
			_files = Cpu.open_other_threads()
			_start = Cpu.read_threads(_files)
			_state = RUNNING
			return
		main.append(_phase.last_usec)
		wall.append(_wall.call() if _wall.is_valid() else 0.0)
		ticks.append(Time.get_ticks_usec())
		if _state == STOPPING:
			var end := Cpu.read_threads(_files)
			others_usec = 0.0
			for tid: String in end:
				others_usec += end[tid] - _start.get(tid, end[tid])
			threads_ended = _files.size() - end.size()
			_files = {}
			_state = IDLE
			_tree.process_frame.disconnect(_tick)
			finished.emit()


## Measures `count` frames with a new Meter (see there for `wall`).
static func measure(tree: SceneTree, phase: Phase, count: int, wall := Callable()) -> Meter:
	var meter := Meter.new(tree, phase, wall)
	meter.start()
	await frames(tree, count)
	await meter.stop()
	return meter


## The main-thread CPU a subject adds to each frame's process phase, measured in place: for
## `pairs` pairs of frames, the subject does not process in one frame (`toggle.call(false)` as the
## frame starts) and processes in the next (`toggle.call(true)`); each pair gives the difference
## of its two frames' phases, so that a drift of the machine's speed (other processes, caches)
## hits both sides alike. With `settle` > 0, that many frames with the subject processing come
## between the two and are not measured: a subject that catches up after a frame off (a radio
## pushing two frames of audio) is measured in a frame like any other. Returns {"cost": the 10 %
## trimmed mean of the pairs' differences, "on" and "off": the trimmed means of the frames with
## and without the subject, "wall": the trimmed mean of `wall` in the frames with it}. The
## subject is left processing.
static func alternating(tree: SceneTree, phase: Phase, toggle: Callable, pairs: int, wall := Callable(),
		settle := 0) -> Dictionary:
	var on := PackedFloat64Array()
	var off := PackedFloat64Array()
	var walls := PackedFloat64Array()
	for i in pairs:
		for step in settle + 2:
			# Resumed as the frame starts (SceneTree.process_frame), before any node processes.
			toggle.call(step > 0)
			await tree.process_frame
			if step == 0:
				off.append(phase.last_usec)
			elif step == settle + 1:
				on.append(phase.last_usec)
				if wall.is_valid():
					walls.append(wall.call())
	toggle.call(true)
	var differences := PackedFloat64Array()
	for i in pairs:
		differences.append(on[i] - off[i])
	return {"cost": trimmed_mean(differences), "on": trimmed_mean(on), "off": trimmed_mean(off), "wall": trimmed_mean(walls)}


## What a node delivers per frame while it has more waiting than it can deliver (the capacity
## rows): a frame counts when its step ran to at least `full` of the hub's budget and messages
## still waited after it, so that the budget, not the supply, ended it.
class Capacity:
	## The hub's step budget, in microseconds.
	var budget := 0.0
	## The share of the budget a step must have run to for its frame to count.
	var full := 0.9
	## Messages delivered in each frame.
	var delivered := PackedFloat64Array()
	## Messages delivered in each frame that counts, its step's wall time and its process phase's CPU.
	var counted := PackedFloat64Array()
	var steps := PackedFloat64Array()
	var mains := PackedFloat64Array()

	func _init(budget_usec: float, full_share: float) -> void:
		budget = budget_usec
		full = full_share

	## One frame: `count` messages delivered, the hub's step took `step_usec` (wall) and the process
	## phase `phase_usec` of main-thread CPU, and `waiting` whether messages still waited after it.
	func frame(count: float, step_usec: float, phase_usec: float, waiting: bool) -> void:
		delivered.append(count)
		if step_usec >= full * budget and waiting:
			counted.append(count)
			steps.append(step_usec)
			mains.append(phase_usec)

	## The figure: the median of the messages delivered in the frames that count.
	func messages() -> float:
		return Util.median(counted)

	## Whether the steps kept to their budget (their median wall time at most 1.2 times it).
	func kept_budget() -> bool:
		return Util.median(steps) <= 1.2 * budget

	func verdict(target: int) -> String:
		var text := ">= %d messages per frame within the %.0f us budget" % [target, budget]
		if not counted.is_empty() and not kept_budget():
			return "%s: MISSED (the steps took %.0f us)" % [text, Util.median(steps)]
		return Util.verdict(messages() >= target, text)

	## The figure's method and what went with it, for a row's detail.
	func describe() -> String:
		var cpu := Util.median(mains)
		return ("The figure is the median of the messages delivered in the frames whose step ran to at least "
				+ "%.0f%% of the %.0f us budget and left messages waiting (%d of %d frames). In those frames (medians): "
				+ "hub step %.0f us wall, main-thread CPU of the process phase %.0f us, so %.0f messages per 2 ms of "
				+ "that CPU. Over all %d frames: %.0f messages per frame (median)") % [full * 100.0, budget,
				counted.size(), delivered.size(), Util.median(steps), cpu, messages() * 2000.0 / maxf(cpu, 1.0),
				delivered.size(), Util.median(delivered)]


## The cost per item of work done during `busy`, with `idle` a window of the same setup doing
## nothing (measured just before): {"main": main-thread CPU us, "process": whole-process CPU
## us, "wall": the wall figure summed over `busy`} per item, and the fixed cost per frame
## ("fixed_main", "fixed_process": `idle`'s), which is taken out of `busy` for each of its frames,
## so that what is left is the marginal cost of the items.
static func marginal(busy: Meter, idle: Meter, items: int) -> Dictionary:
	var n := maxf(items, 1.0)
	return {
		"main": (sum(busy.main) - idle.main_per_frame() * busy.frames()) / n,
		"process": (busy.process_usec() - idle.process_per_frame() * busy.frames()) / n,
		"wall": sum(busy.wall) / n,
		"fixed_main": idle.main_per_frame(),
		"fixed_process": idle.process_per_frame(),
	}


## The run with the median `key` (of an even count, the upper of the middle two).
static func median_run(runs: Array, key := "main") -> Dictionary:
	var sorted := runs.duplicate()
	sorted.sort_custom(func(a: Dictionary, b: Dictionary) -> bool: return a[key] < b[key])
	return sorted[sorted.size() / 2]


## `key` of each run, as "0.123, 0.456".
static func list_key(runs: Array, key: String) -> String:
	var parts := PackedStringArray()
	for run: Dictionary in runs:
		parts.append("%.3f" % run[key])
	return ", ".join(parts)


## A target's verdict for a row: "TEXT: met" or "TEXT: MISSED".
static func verdict(met: bool, text: String) -> String:
	return "%s: %s" % [text, "met" if met else "MISSED"]


## `--name=value` user arguments (after `--`).
static func options() -> Dictionary:
	var found := {}
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--") and "=" in arg:
			found[arg.substr(2, arg.find("=") - 2)] = arg.substr(arg.find("=") + 1)
	return found


## Prints one row for `cargo xtask bench` (see rust/xtask/src/commands/bench.rs); `target`, when
## given, is the row's target and whether it was met (see verdict()).
static func row(metric: String, unit: String, ours: float, baseline: float, baseline_name: String,
		lower_is_better: bool, detail: String, target := "") -> void:
	var fields := {
		"metric": metric,
		"unit": unit,
		"ours": ours,
		"baseline": baseline,
		"baseline_name": baseline_name,
		"lower_is_better": lower_is_better,
		"detail": detail,
	}
	if target != "":
		fields["target"] = target
	print("BENCH " + JSON.stringify(fields))


static func frames(tree: SceneTree, count: int) -> void:
	for i in count:
		await tree.process_frame


## Waits frame by frame until `condition` holds; false after `timeout_sec`.
static func wait_until(tree: SceneTree, condition: Callable, timeout_sec: float) -> bool:
	var deadline := Time.get_ticks_msec() + int(timeout_sec * 1000.0)
	while not condition.call():
		if Time.get_ticks_msec() > deadline:
			return false
		await tree.process_frame
	return true


## Starts `program argv`, a server that writes its port to `port_file` once it listens, and waits
## up to `timeout_sec` for that port. Returns [pid, port]: pid 0 if it could not start, port 0
## if it exited or said nothing in time.
static func start_port_server(tree: SceneTree, program: String, argv: PackedStringArray, port_file: String,
		timeout_sec: float) -> Array[int]:
	if FileAccess.file_exists(port_file):
		DirAccess.remove_absolute(port_file)
	var pid := OS.create_process(program, argv)
	if pid <= 0:
		return [0, 0]
	var ready := await wait_until(tree, func() -> bool:
		return FileAccess.file_exists(port_file) or not OS.is_process_running(pid), timeout_sec)
	var port := FileAccess.get_file_as_string(port_file).strip_edges().to_int() if ready else 0
	return [pid, port]


## The processes a bench scene starts (servers, load generators, baselines), killed with
## kill_all() before it quits.
class Processes:
	var _pids: Array[int] = []
	var _scene := ""

	func _init(scene: String) -> void:
		_scene = scene

	## Starts `program` with `args`; its pid, or 0 (and an error) when it could not start.
	func spawn(program: String, args: Array) -> int:
		var pid := OS.create_process(program, PackedStringArray(args))
		if pid > 0:
			_pids.append(pid)
		else:
			push_error("%s: cannot start %s" % [_scene, program])
		return pid

	func kill(pid: int) -> void:
		if pid > 0 and OS.is_process_running(pid):
			OS.kill(pid)
		_pids.erase(pid)

	func kill_all() -> void:
		for pid in _pids.duplicate():
			kill(pid)

	## Starts `redis-benchmark -q ARGS` with its report going to the file `out`; returns {pid, out}.
	func start_redis_benchmark(out: String, args: Array) -> Dictionary:
		var pid := spawn("sh", ["-c", 'out=$1; shift; exec "$@" > "$out" 2>&1', "sh", out, "redis-benchmark", "-q"] + args)
		return {"pid": pid, "out": out}

	## Waits for a start_redis_benchmark() run to exit (30 s at most); the requests per second
	## it reported, or 0 if unknown.
	func redis_benchmark_rate(tree: SceneTree, run: Dictionary) -> float:
		await Util.wait_until(tree, func() -> bool: return not OS.is_process_running(run.pid), 30.0)
		kill(run.pid)
		var text := FileAccess.get_file_as_string(run.out)
		DirAccess.remove_absolute(run.out)
		var found := RegEx.create_from_string("([0-9.]+) requests per second").search_all(text)
		return found[-1].get_string(1).to_float() if not found.is_empty() else 0.0


## `values` as "a, b, c", without decimals, for a row's detail.
static func list(values: PackedFloat64Array) -> String:
	var parts := PackedStringArray()
	for v in values:
		parts.append("%.0f" % v)
	return ", ".join(parts)


static func sum(values: PackedFloat64Array) -> float:
	var total := 0.0
	for v in values:
		total += v
	return total


## The median, averaging the middle two of an even count (0 for no values).
static func median(values: PackedFloat64Array) -> float:
	if values.is_empty():
		return 0.0
	var sorted := values.duplicate()
	sorted.sort()
	var mid := sorted.size() / 2
	return sorted[mid] if sorted.size() % 2 == 1 else (sorted[mid - 1] + sorted[mid]) / 2.0


## The nearest-rank percentile, `p` from 0 to 100 (0 for no values).
static func percentile(values: PackedFloat64Array, p: float) -> float:
	if values.is_empty():
		return 0.0
	var sorted := values.duplicate()
	sorted.sort()
	var rank := clampi(int(ceil(p / 100.0 * sorted.size())) - 1, 0, sorted.size() - 1)
	return sorted[rank]


## The mean of the values left after dropping the lowest and highest 10 %.
static func trimmed_mean(values: PackedFloat64Array) -> float:
	var sorted := values.duplicate()
	sorted.sort()
	var cut := sorted.size() / 10
	var kept := sorted.slice(cut, sorted.size() - cut)
	return sum(kept) / maxi(kept.size(), 1)
