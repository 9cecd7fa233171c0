## Base of every test script in res://cases: `extends "res://runner/test_case.gd"`.
##
## Assertions record a failure (with the calling line) and let the test go on; each returns
## whether it held, so a test can stop early with `if not assert_eq(...): return`.
## Helpers wait for frames, real time, conditions and signals; they work while the tree is
## paused. Each test method runs on a fresh instance, a child of the runner, freed afterwards.
extends Node

const SignalWatcher := preload("res://runner/signal_watcher.gd")

const _OWN_FILES: Array[String] = ["res://runner/test_case.gd", "res://runner/signal_watcher.gd"]

## expect_error(text, ANY): the error may be logged any number of times, but at least once.
const ANY := -1
## expect_error(text, MAYBE): any number of times, none included: for an error that a fault the
## test provokes may or may not cause, depending on timing (a publish while a Redis shard has no
## master during a failover).
const MAYBE := -2

## Time limit of each test of this script, in seconds.
var timeout_sec := 10.0
## Per-test time limits overriding timeout_sec, e.g. `{"test_reconnect": 30.0}`.
var timeouts := {}

# Read by the runner.
var _failures := PackedStringArray()
var _expected_panics := PackedStringArray()
# The errors this test announced: {text, count (or ANY), since (the first error it covers)}.
var _expected_errors: Array[Dictionary] = []
# Set by the runner: collects engine errors logged during this test (runner/error_capture.gd).
var _error_log: Object = null
var _watchers := {}


# --- assertions ---------------------------------------------------------------------------

## Records a failure.
func fail(message: String) -> void:
	_failures.append("%s (%s)" % [message, _caller()])


func assert_true(condition: Variant, message := "") -> bool:
	if condition:
		return true
	return _fail(message, "expected true, got %s" % _show(condition))


func assert_false(condition: Variant, message := "") -> bool:
	if not condition:
		return true
	return _fail(message, "expected false, got %s" % _show(condition))


func assert_eq(actual: Variant, expected: Variant, message := "") -> bool:
	if _equal(actual, expected):
		return true
	return _fail(message, "expected %s, got %s" % [_show(expected), _show(actual)])


func assert_ne(actual: Variant, unexpected: Variant, message := "") -> bool:
	if not _equal(actual, unexpected):
		return true
	return _fail(message, "expected anything but %s" % _show(unexpected))


func assert_gt(actual: Variant, bound: Variant, message := "") -> bool:
	return _compare(actual, bound, ">", message)


func assert_ge(actual: Variant, bound: Variant, message := "") -> bool:
	return _compare(actual, bound, ">=", message)


func assert_lt(actual: Variant, bound: Variant, message := "") -> bool:
	return _compare(actual, bound, "<", message)


func assert_le(actual: Variant, bound: Variant, message := "") -> bool:
	return _compare(actual, bound, "<=", message)


## Numbers, or vectors component by component, equal within `tolerance`.
func assert_almost_eq(actual: Variant, expected: Variant, tolerance := 0.00001, message := "") -> bool:
	var close := false
	if _is_number(actual) and _is_number(expected):
		close = absf(float(actual) - float(expected)) <= tolerance
	elif typeof(actual) == typeof(expected) and typeof(actual) in [TYPE_VECTOR2, TYPE_VECTOR3, TYPE_VECTOR4]:
		var difference: Variant = (actual - expected).abs()
		close = difference[difference.max_axis_index()] <= tolerance
	if close:
		return true
	return _fail(message, "expected %s ± %s, got %s" % [_show(expected), tolerance, _show(actual)])


## Fails unless `got` is `expected`, naming the first difference.
func assert_sequence(got: Array[String], expected: Array[String], what: String) -> void:
	for i in mini(got.size(), expected.size()):
		if got[i] != expected[i]:
			fail("%s: message %d is %s, expected %s" % [what, i, got[i], expected[i]])
			return
	assert_eq(got.size(), expected.size(), "%s: message count" % what)


# --- Rust panics and engine errors --------------------------------------------------------

## Announces that this test provokes a Rust panic whose report contains `text`: the panic then
## does not fail the test (nor `cargo xtask test`), but the test fails if no such panic happens.
func expect_panic(text: String) -> void:
	print("EXPECT-PANIC: %s" % text)
	_expected_panics.append(text)


## Announces that this test provokes an error (push_error, or an error the extension logs, as
## every node does with what its `error` signal reports) whose message contains `text`, logged
## `count` times (ANY: once or more; MAYBE: any number, none included) from now on. Those errors then do not fail the test; the
## test fails if they are not logged as often as announced. Any other error fails it: announce
## an error only when the test provokes it on purpose, never to silence a bug. Printed, so
## that the log shows the error that follows is on purpose.
func expect_error(text: String, count := 1) -> void:
	print("EXPECT-ERROR: %s" % text)
	var since: int = _error_log.next_seq() if _error_log != null else 0
	_expected_errors.append({"text": text, "count": count, "since": since})


## Errors logged since the test started (push_error, script errors, panics, warnings), as
## dictionaries {type: Logger.ErrorType, message: String, where: String, seq: int}. The runner
## judges them when the test ends (see expect_error() and expect_panic()).
func logged_errors() -> Array[Dictionary]:
	if _error_log == null:
		return []
	return _error_log.snapshot()


# --- waiting --------------------------------------------------------------------------------

## Waits `count` process frames.
func wait_frames(count := 1) -> void:
	for i in count:
		await get_tree().process_frame


## Waits `seconds` of real time (ignores Engine.time_scale, runs while paused). A timer counts
## the frames' deltas, which Godot smooths (application/run/delta_smoothing), so it can fire a
## little early in real time (186 ms for 0.2 s once in CI): the clock has the last word.
func wait_seconds(seconds: float) -> void:
	var deadline := Time.get_ticks_usec() + int(seconds * 1_000_000.0)
	await get_tree().create_timer(seconds, true, false, true).timeout
	while Time.get_ticks_usec() < deadline:
		await get_tree().process_frame


## Checks `condition` every frame until it returns true (-> true) or `timeout_sec` passed (-> false).
func wait_until(condition: Callable, timeout_sec := 5.0) -> bool:
	var deadline := Time.get_ticks_msec() + int(timeout_sec * 1000.0)
	while true:
		if condition.call():
			return true
		if Time.get_ticks_msec() >= deadline:
			return false
		await get_tree().process_frame
	return false


# --- signals --------------------------------------------------------------------------------

## Starts recording emissions of `object.signal_name` (returns the same watcher if already
## watched). `await watch(node, "done").wait()` waits for the next emission.
## A loopback port that was free a moment ago (for a server a test starts itself).
func free_port() -> int:
	var probe := TCPServer.new()
	probe.listen(0, "127.0.0.1")
	var port := probe.get_local_port()
	probe.stop()
	return port


func watch(object: Object, signal_name: StringName) -> SignalWatcher:
	var key := _watch_key(object, signal_name)
	if not _watchers.has(key):
		_watchers[key] = SignalWatcher.new(object, signal_name)
	return _watchers[key]


## How many times a watched signal was emitted.
func signal_count(object: Object, signal_name: StringName) -> int:
	return _watcher(object, signal_name).count()


## Arguments of emission `index` of a watched signal (negative counts from the end).
func signal_args(object: Object, signal_name: StringName, index := -1) -> Array:
	return _watcher(object, signal_name).args(index)


func assert_signal_emitted(object: Object, signal_name: StringName, message := "") -> bool:
	if signal_count(object, signal_name) > 0:
		return true
	return _fail(message, "signal %s was not emitted" % signal_name)


func assert_signal_not_emitted(object: Object, signal_name: StringName, message := "") -> bool:
	var count := signal_count(object, signal_name)
	if count == 0:
		return true
	return _fail(message, "signal %s was emitted %d time(s): %s" % [signal_name, count, _watcher(object, signal_name).emissions])


func assert_signal_count(object: Object, signal_name: StringName, expected: int, message := "") -> bool:
	var count := signal_count(object, signal_name)
	if count == expected:
		return true
	return _fail(message, "signal %s: expected %d emission(s), got %d" % [signal_name, expected, count])


# --- internals ------------------------------------------------------------------------------

func _watcher(object: Object, signal_name: StringName) -> SignalWatcher:
	var key := _watch_key(object, signal_name)
	if not _watchers.has(key):
		fail("signal %s is not watched: call watch(object, \"%s\") first" % [signal_name, signal_name])
		return SignalWatcher.new(null, signal_name)
	return _watchers[key]


func _watch_key(object: Object, signal_name: StringName) -> String:
	return "%d:%s" % [object.get_instance_id(), signal_name]


func _fail(message: String, detail: String) -> bool:
	fail(detail if message.is_empty() else "%s: %s" % [message, detail])
	return false


func _compare(actual: Variant, bound: Variant, op: String, message: String) -> bool:
	var comparable := (_is_number(actual) and _is_number(bound)) \
			or (typeof(actual) == typeof(bound) and typeof(actual) in [TYPE_STRING, TYPE_STRING_NAME])
	if not comparable:
		return _fail(message, "cannot compare %s %s %s" % [_show(actual), op, _show(bound)])
	var holds: bool
	match op:
		">": holds = actual > bound
		">=": holds = actual >= bound
		"<": holds = actual < bound
		_: holds = actual <= bound
	if holds:
		return true
	return _fail(message, "expected %s %s %s" % [_show(actual), op, _show(bound)])


static func _is_number(value: Variant) -> bool:
	return typeof(value) in [TYPE_INT, TYPE_FLOAT]


## Equality without runtime errors between unrelated types: numbers compare by value,
## String and StringName by text, anything else must have the same type.
static func _equal(a: Variant, b: Variant) -> bool:
	if _is_number(a) and _is_number(b):
		return a == b
	var texts := [TYPE_STRING, TYPE_STRING_NAME]
	if typeof(a) in texts and typeof(b) in texts:
		return str(a) == str(b)
	return typeof(a) == typeof(b) and a == b


static func _show(value: Variant) -> String:
	match typeof(value):
		TYPE_STRING:
			return "\"%s\"" % value
		TYPE_STRING_NAME:
			return "&\"%s\"" % value
		TYPE_NIL:
			return "null"
	return str(value)


## `file:line` of the test code that called into this script.
func _caller() -> String:
	for backtrace in Engine.capture_script_backtraces(false):
		for i in backtrace.get_frame_count():
			var file := backtrace.get_frame_file(i)
			if file not in _OWN_FILES:
				return "%s:%d" % [file.get_file(), backtrace.get_frame_line(i)]
	return "?"
