## Runs the load generator (`testbed loadgen`, a release build passed as --loadgen=PATH) as a
## separate process, so the load comes from outside Godot, and waits for its JSON report without
## blocking the main thread: the report file is polled once per frame.
##
## The generator writes its report atomically (temporary file, then rename) and always exits by
## itself (--max-sec); a run that overstays its wait is killed anyway.
extends RefCounted

var _program: String
var _workdir: String
var _runs := 0


func _init(program: String, workdir: String) -> void:
	_program = program
	_workdir = workdir


## Whether the generator and the work directory exist.
func is_usable() -> bool:
	return FileAccess.file_exists(_program) and DirAccess.dir_exists_absolute(_workdir)


## Starts `loadgen MODE --port PORT --out FILE ARGS...`; returns the run (pid, out, stop), or {}
## when the process could not be started.
func start(mode: String, port: int, args: Array, max_sec: int) -> Dictionary:
	_runs += 1
	var out := _workdir.path_join("%s-%d.json" % [mode, _runs])
	var stop := _workdir.path_join("%s-%d.stop" % [mode, _runs])
	var argv := PackedStringArray(["loadgen", mode, "--port", str(port), "--out", out, "--max-sec", str(max_sec)])
	if mode == "idle":
		argv.append_array(["--stop-file", stop])
	for arg: Variant in args:
		argv.append(str(arg))
	var pid := OS.create_process(_program, argv)
	if pid <= 0:
		push_error("bench: cannot start %s %s" % [_program, " ".join(argv)])
		return {}
	return {"pid": pid, "out": out, "stop": stop}


## Waits, frame by frame, for the run's report and returns it; {"ok": false, "error": ...} when
## the process died without one or `timeout_sec` passed (the process is then killed).
func wait(run: Dictionary, timeout_sec: float) -> Dictionary:
	var tree := Engine.get_main_loop() as SceneTree
	var deadline := Time.get_ticks_msec() + int(timeout_sec * 1000.0)
	var out: String = run.out
	while not FileAccess.file_exists(out):
		if not OS.is_process_running(run.pid) and not FileAccess.file_exists(out):
			return {"ok": false, "error": "the load generator exited without a report"}
		if Time.get_ticks_msec() > deadline:
			OS.kill(run.pid)
			return {"ok": false, "error": "no report from the load generator within %.0f s" % timeout_sec}
		await tree.process_frame
	var text := FileAccess.get_file_as_string(out)
	DirAccess.remove_absolute(out)
	var report: Variant = JSON.parse_string(text)
	if report is Dictionary:
		return report
	return {"ok": false, "error": "unreadable report: %s" % text.strip_edges()}


## Tells an idle run to close its connections and exit; kills it if it has not within 5 s.
func stop(run: Dictionary) -> void:
	if run.is_empty():
		return
	var file := FileAccess.open(run.stop, FileAccess.WRITE)
	if file:
		file.close()
	var tree := Engine.get_main_loop() as SceneTree
	var deadline := Time.get_ticks_msec() + 5000
	while OS.is_process_running(run.pid):
		if Time.get_ticks_msec() > deadline:
			OS.kill(run.pid)
			break
		await tree.process_frame
