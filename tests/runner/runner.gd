## Headless test runner: runs every `test_*` method of every `res://cases/**/test_*.gd` and
## quits with exit code 0 when all passed, 1 otherwise.
##
## Each test gets a fresh instance of its script (which extends res://runner/test_case.gd),
## added under this node; `before_each()` and `after_each()` run around it when defined, and
## any of them may `await`. A test fails when an assertion failed, when it raised a script
## error, logged an error it did not announce with expect_error() (push_error, or an error of
## the extension) or a Rust panic it did not announce with expect_panic(), when an announced
## error or panic did not happen, or when it ran out of time (then its instance is freed and
## the runner moves on). Warnings do not fail a test: the extension warns about slow task
## polls, which a loaded machine causes at random. An error logged between two tests fails the
## next one; one logged after the last test fails the run. Output: `RUNNING tests in ...`, then
## `PASS file::method (N ms)` or `FAIL file::method: why` per test, then `N passed, N failed`
## alone on the last line.
##
## User arguments (after `--`): `--filter=SUBSTR` runs only tests whose `file::method`
## contains SUBSTR; `--only-file=FILE` only the tests of FILE (a path below cases/), and
## `--skip-file=FILE` all but those (xtask runs the tests that measure their own process in a
## process of their own); `--allow-empty` ends with success when no test matched (without it,
## that fails the run).
extends Node

const TestCase := preload("res://runner/test_case.gd")
const ErrorCapture := preload("res://runner/error_capture.gd")

const CASES_DIR := "res://cases"

## How many of an unexpected kind of error a failure message lists.
const SHOWN_ERRORS := 3

var _filter := ""
var _only_file := ""
var _skip_file := ""
var _allow_empty := false
var _passed := 0
var _failed := 0
var _capture := ErrorCapture.new()
# The test that ran last, for errors logged after it ended.
var _last_test := ""


func _ready() -> void:
	process_mode = Node.PROCESS_MODE_ALWAYS
	var args := OS.get_cmdline_user_args()
	_filter = _parse_filter(args)
	_only_file = _argument(args, "--only-file=")
	_skip_file = _argument(args, "--skip-file=")
	_allow_empty = args.has("--allow-empty")
	OS.add_logger(_capture)
	_run_all.call_deferred()


func _run_all() -> void:
	# xtask's log check leaves the errors from here to the summary to this runner (log_check.rs).
	print("RUNNING tests in %s%s" % [CASES_DIR, "" if _filter.is_empty() else " matching --filter=" + _filter])
	var ran := 0
	for path in _discover(CASES_DIR):
		var file := path.trim_prefix(CASES_DIR + "/")
		var script := load(path) as GDScript
		if script == null or not script.can_instantiate():
			# Its load errors are this report's, not the next test's.
			_capture.take()
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
	var late := _judge_errors(_capture.take(), [], [])
	if not late.is_empty():
		ran += 1
		_report("(after the last test, %s)" % _last_test, 0, late)
	OS.remove_logger(_capture)
	if ran == 0:
		print("no tests found%s" % ("" if _filter.is_empty() else " matching --filter=" + _filter))
	print("%d passed, %d failed" % [_passed, _failed])
	get_tree().quit(0 if _failed == 0 and (ran > 0 or _allow_empty) else 1)


func _run_test(script: GDScript, method: String, test_name: String) -> void:
	# Errors logged since the last test was judged: its lingering work (or start-up).
	var between := _judge_errors(_capture.take(), [], [])
	var result := await run_case(script, method)
	var failures: PackedStringArray = result.failures
	if not between.is_empty():
		var after := "after " + _last_test if not _last_test.is_empty() else "before the first test"
		failures.append("logged between tests (%s): %s" % [after, "; ".join(between)])
	_last_test = test_name
	_report(test_name, result.elapsed_ms, failures)


## Runs `method` of `script` on a fresh instance and judges it; returns {failures:
## PackedStringArray, elapsed_ms: int}. Errors logged from its start to its end are its own
## (those of a test that runs this one are left to that test).
func run_case(script: GDScript, method: String) -> Dictionary:
	var instance: Variant = script.new()
	if not instance is TestCase:
		if instance is Object and not instance is RefCounted:
			instance.free()
		return {"failures": PackedStringArray(["the script must extend \"res://runner/test_case.gd\""]), "elapsed_ms": 0}
	var test: TestCase = instance
	test.name = method
	test.process_mode = Node.PROCESS_MODE_ALWAYS
	test._error_log = _capture
	var first_error := _capture.next_seq()
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
	var expected_errors := test._expected_errors.duplicate(true)
	remove_child(test)
	test.free()
	get_tree().paused = false
	Engine.time_scale = 1.0
	# One frame for deferred frees and for the hub to cancel the freed nodes' tasks.
	await get_tree().process_frame
	failures.append_array(_judge_errors(_capture.take_since(first_error), expected_panics, expected_errors))
	return {"failures": failures, "elapsed_ms": elapsed_ms}


## Runs one test with its before_each/after_each; each may be a coroutine.
func _invoke(test: TestCase, method: String, state: Dictionary) -> void:
	if test.has_method("before_each"):
		await test.call("before_each")
	await test.call(method)
	if test.has_method("after_each"):
		await test.call("after_each")
	state.done = true


## Failures for the errors logged during a test: script errors; Rust panics it did not announce
## with expect_panic() and announced panics that did not happen; other errors (warnings aside)
## that no expect_error() covers, and announced errors not logged as often as announced.
## `expected_errors` are test_case.gd's {text, count, since}.
func _judge_errors(entries: Array[Dictionary], expected_panics: PackedStringArray,
		expected_errors: Array[Dictionary]) -> PackedStringArray:
	var failures := PackedStringArray()
	var seen := {}
	var unexpected := PackedStringArray()
	var matched: Array[int] = []
	matched.resize(expected_errors.size())
	matched.fill(0)
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
		elif entry.type != Logger.ERROR_TYPE_WARNING:
			var i := _expectation_of(entry, expected_errors, matched)
			if i < 0:
				unexpected.append("\"%s\" at %s" % [entry.message.replace("\n", " "), entry.where])
			else:
				matched[i] += 1
	for text in expected_panics:
		if not seen.has(text):
			failures.append("expected a Rust panic containing \"%s\", none happened" % text)
	if not unexpected.is_empty():
		var shown := unexpected.slice(0, SHOWN_ERRORS)
		if unexpected.size() > SHOWN_ERRORS:
			shown.append("and %d more" % (unexpected.size() - SHOWN_ERRORS))
		failures.append("unexpected error (announce it with expect_error() if the test provokes it): %s" % "; ".join(shown))
	for i in expected_errors.size():
		var expected: Dictionary = expected_errors[i]
		var count: int = expected.count
		if count == TestCase.MAYBE:
			continue
		if matched[i] == 0 or (count != TestCase.ANY and matched[i] != count):
			var times := "at least once" if count == TestCase.ANY else "%d time(s)" % count
			failures.append("expected an error containing \"%s\" %s, logged %d" % [expected.text, times, matched[i]])
	return failures


## Index of the first expectation that covers `entry` (its text occurs in the message, it was
## made before the error was logged, and it has not taken all the errors it announced), or -1.
static func _expectation_of(entry: Dictionary, expected_errors: Array[Dictionary], matched: Array[int]) -> int:
	for i in expected_errors.size():
		var expected: Dictionary = expected_errors[i]
		var room: bool = expected.count < 0 or matched[i] < expected.count
		if room and entry.seq >= expected.since and entry.message.contains(expected.text):
			return i
	return -1


func _report(test_name: String, elapsed_ms: int, failures: PackedStringArray) -> void:
	if failures.is_empty():
		_passed += 1
		print("PASS %s (%d ms)" % [test_name, elapsed_ms])
	else:
		_failed += 1
		print("FAIL %s: %s" % [test_name, "; ".join(failures)])


func _matches(test_name: String) -> bool:
	var file := test_name.get_slice("::", 0)
	if (not _only_file.is_empty() and file != _only_file) or (not _skip_file.is_empty() and file == _skip_file):
		return false
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


## The value of the argument `prefix`VALUE, or "".
static func _argument(args: PackedStringArray, prefix: String) -> String:
	for arg in args:
		if arg.begins_with(prefix):
			return arg.trim_prefix(prefix)
	return ""


static func _parse_filter(args: PackedStringArray) -> String:
	for i in args.size():
		if args[i].begins_with("--filter="):
			return args[i].trim_prefix("--filter=")
		if args[i] == "--filter" and i + 1 < args.size():
			return args[i + 1]
	return ""
