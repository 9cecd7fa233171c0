## Headless test runner: runs every `test_*` method of every `res://cases/**/test_*.gd` and
## quits with exit code 0 when all passed, 1 otherwise.
##
## Each test gets a fresh instance of its script (which extends res://runner/test_case.gd),
## added under this node; `before_each()` and `after_each()` run around it when defined, and
## any of them may `await`. A test fails when an assertion failed, when it raised a script
## error or an unannounced Rust panic, or when it ran out of time (then its instance is freed
## and the runner moves on). Output: `PASS file::method (N ms)` or `FAIL file::method: why`
## per test, then `N passed, N failed` alone on the last line.
##
## User arguments (after `--`): `--filter=SUBSTR` runs only tests whose `file::method`
## contains SUBSTR.
extends Node

const TestCase := preload("res://runner/test_case.gd")
const ErrorCapture := preload("res://runner/error_capture.gd")

const CASES_DIR := "res://cases"

var _filter := ""
var _passed := 0
var _failed := 0
var _capture := ErrorCapture.new()


func _ready() -> void:
	process_mode = Node.PROCESS_MODE_ALWAYS
	_filter = _parse_filter(OS.get_cmdline_user_args())
	OS.add_logger(_capture)
	_run_all.call_deferred()


func _run_all() -> void:
	var ran := 0
	for path in _discover(CASES_DIR):
		var file := path.trim_prefix(CASES_DIR + "/")
		var script := load(path) as GDScript
		if script == null or not script.can_instantiate():
			if _matches("%s::" % file):
				ran += 1
				_report("%s::(load)" % file, 0, ["the script does not load (see the errors above)"])
			continue
		for info in _test_methods(script):
			var test_name := "%s::%s" % [file, info.name]
			if not _matches(test_name):
				continue
			ran += 1
			if info.args.size() > info.default_args.size():
				_report(test_name, 0, ["test methods take no arguments"])
			else:
				await _run_test(script, info.name, test_name)
	OS.remove_logger(_capture)
	if ran == 0:
		print("no tests found%s" % ("" if _filter.is_empty() else " matching --filter=" + _filter))
	print("%d passed, %d failed" % [_passed, _failed])
	get_tree().quit(0 if _failed == 0 and ran > 0 else 1)


func _run_test(script: GDScript, method: String, test_name: String) -> void:
	var instance: Variant = script.new()
	if not instance is TestCase:
		if instance is Object and not instance is RefCounted:
			instance.free()
		_report(test_name, 0, ["the script must extend \"res://runner/test_case.gd\""])
		return
	var test: TestCase = instance
	test.name = method
	test.process_mode = Node.PROCESS_MODE_ALWAYS
	test._error_log = _capture
	_capture.take()
	add_child(test)

	var timeout_sec: float = test.timeouts.get(method, test.timeout_sec)
	var state := {"done": false}
	var start_usec := Time.get_ticks_usec()
	_invoke(test, method, state)
	var deadline_usec := start_usec + int(timeout_sec * 1_000_000.0)
	while not state.done and Time.get_ticks_usec() < deadline_usec:
		await get_tree().process_frame
	var elapsed_ms := (Time.get_ticks_usec() - start_usec) / 1000

	var failures := test._failures.duplicate()
	if not state.done:
		failures.append("timed out after %s s (set timeout_sec or timeouts[\"%s\"] to allow more)" % [timeout_sec, method])
	var expected_panics := test._expected_panics.duplicate()
	remove_child(test)
	test.free()
	get_tree().paused = false
	Engine.time_scale = 1.0
	# One frame for deferred frees and for the hub to cancel the freed nodes' tasks.
	await get_tree().process_frame
	failures.append_array(_judge_errors(_capture.take(), expected_panics))
	_report(test_name, elapsed_ms, failures)


## Runs one test with its before_each/after_each; each may be a coroutine.
func _invoke(test: TestCase, method: String, state: Dictionary) -> void:
	if test.has_method("before_each"):
		await test.call("before_each")
	await test.call(method)
	if test.has_method("after_each"):
		await test.call("after_each")
	state.done = true


## Failures for the errors logged during a test: script errors, and Rust panics the test did
## not announce with expect_panic(); also announced panics that did not happen.
func _judge_errors(entries: Array[Dictionary], expected_panics: PackedStringArray) -> PackedStringArray:
	var failures := PackedStringArray()
	var seen := {}
	for entry in entries:
		if entry.type == Logger.ERROR_TYPE_SCRIPT:
			failures.append("script error: %s at %s" % [entry.message, entry.where])
		elif ErrorCapture.is_panic(entry):
			var announced := false
			for text in expected_panics:
				if entry.message.contains(text):
					announced = true
					seen[text] = true
			if not announced:
				failures.append("unexpected Rust panic: %s" % entry.message)
	for text in expected_panics:
		if not seen.has(text):
			failures.append("expected a Rust panic containing \"%s\", none happened" % text)
	return failures


func _report(test_name: String, elapsed_ms: int, failures: PackedStringArray) -> void:
	if failures.is_empty():
		_passed += 1
		print("PASS %s (%d ms)" % [test_name, elapsed_ms])
	else:
		_failed += 1
		print("FAIL %s: %s" % [test_name, "; ".join(failures)])


func _matches(test_name: String) -> bool:
	return _filter.is_empty() or test_name.contains(_filter)


## Method infos (see Object.get_method_list()) of a script's `test_*` methods, in declaration order.
func _test_methods(script: GDScript) -> Array[Dictionary]:
	var methods: Array[Dictionary] = []
	var names := {}
	for info in script.get_script_method_list():
		if info.name.begins_with("test_") and not names.has(info.name):
			names[info.name] = true
			methods.append(info)
	return methods


## Every `test_*.gd` below `dir`, sorted.
func _discover(dir: String) -> PackedStringArray:
	var found := PackedStringArray()
	for file in DirAccess.get_files_at(dir):
		if file.begins_with("test_") and file.ends_with(".gd"):
			found.append(dir.path_join(file))
	for sub in DirAccess.get_directories_at(dir):
		found.append_array(_discover(dir.path_join(sub)))
	found.sort()
	return found


static func _parse_filter(args: PackedStringArray) -> String:
	for i in args.size():
		if args[i].begins_with("--filter="):
			return args[i].trim_prefix("--filter=")
		if args[i] == "--filter" and i + 1 < args.size():
			return args[i + 1]
	return ""
