## What every bench scene shares: its command-line options, waiting on
## frames, the statistics it reports, and the `BENCH {json}` row that
## `cargo xtask bench` collects.
extends RefCounted


## `--name=value` user arguments (after `--`).
static func options() -> Dictionary:
	var found := {}
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--") and "=" in arg:
			found[arg.substr(2, arg.find("=") - 2)] = arg.substr(arg.find("=") + 1)
	return found


## Prints one row for `cargo xtask bench` (see rust/xtask/src/commands/bench.rs).
static func row(metric: String, unit: String, ours: float, baseline: float, baseline_name: String,
		lower_is_better: bool, detail: String) -> void:
	print("BENCH " + JSON.stringify({
		"metric": metric,
		"unit": unit,
		"ours": ours,
		"baseline": baseline,
		"baseline_name": baseline_name,
		"lower_is_better": lower_is_better,
		"detail": detail,
	}))


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
