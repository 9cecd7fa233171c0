## Self-test of the test runner and test_case.gd helpers; needs no extension.
extends "res://runner/test_case.gd"

signal pinged(value: int, text: String)

static var after_each_calls := 0

var _prepared := false


func before_each() -> void:
	await wait_frames(1)
	_prepared = true


func after_each() -> void:
	after_each_calls += 1


func test_before_each_ran_and_awaited() -> void:
	assert_true(_prepared, "before_each() completes before the test")


func test_after_each_runs_after_each_test() -> void:
	# Tests run in declaration order, each on a fresh instance: one test ran before.
	assert_eq(after_each_calls, 1)


func test_passing_assertions() -> void:
	assert_true(true)
	assert_false(false)
	assert_eq(1, 1.0, "int and float compare by value")
	assert_eq("abc", &"abc", "String and StringName compare by text")
	assert_eq([1, {"a": 2}], [1, {"a": 2}])
	assert_ne(1, "1", "different types are not equal")
	assert_gt(2, 1)
	assert_ge(2, 2)
	assert_lt(1, 2.5)
	assert_le("a", "b")
	assert_almost_eq(0.1 + 0.2, 0.3)
	assert_almost_eq(Vector2(1, 2), Vector2(1.000001, 2))


func test_failed_assertions_are_recorded_with_their_line() -> void:
	assert_true(assert_eq(1, 1))
	var held := assert_eq(2 + 2, 5, "arithmetic")
	assert_gt(1, 2)
	assert_almost_eq(1.0, 1.1, 0.01)
	assert_lt("a", 1)
	fail("explicit")
	var recorded := _failures.duplicate()
	_failures.clear()
	assert_false(held, "a failed assertion returns false")
	assert_eq(recorded.size(), 5, str(recorded))
	if recorded.size() == 5:
		assert_true(recorded[0].begins_with("arithmetic: expected 5, got 4"), recorded[0])
		assert_true(recorded[0].ends_with("(test_runner_selftest.gd:%d)" % 46), recorded[0])
		assert_true(recorded[3].begins_with("cannot compare"), recorded[3])
		assert_true(recorded[4].begins_with("explicit"), recorded[4])


func test_wait_frames() -> void:
	var start := Engine.get_process_frames()
	await wait_frames(3)
	assert_eq(Engine.get_process_frames() - start, 3)


func test_wait_seconds_is_real_time() -> void:
	Engine.time_scale = 0.1
	var start := Time.get_ticks_msec()
	await wait_seconds(0.2)
	var elapsed := Time.get_ticks_msec() - start
	assert_ge(elapsed, 190)
	assert_lt(elapsed, 1000, "time_scale does not stretch wait_seconds")


func test_helpers_work_while_paused() -> void:
	get_tree().paused = true
	await wait_frames(2)
	await wait_seconds(0.05)
	var frames := Engine.get_process_frames()
	assert_true(await wait_until(func() -> bool: return Engine.get_process_frames() >= frames + 2, 1.0))
	assert_true(get_tree().paused, "the runner resets the pause after the test")


func test_wait_until_times_out() -> void:
	var start := Time.get_ticks_msec()
	var ok: bool = await wait_until(func() -> bool: return false, 0.1)
	assert_false(ok)
	assert_ge(Time.get_ticks_msec() - start, 100)


func test_watch_records_emissions_and_args() -> void:
	var watcher := watch(self, "pinged")
	assert_signal_not_emitted(self, "pinged")
	pinged.emit(1, "one")
	pinged.emit(2, "two")
	assert_signal_count(self, "pinged", 2)
	assert_signal_emitted(self, "pinged")
	assert_eq(signal_args(self, "pinged"), [2, "two"])
	assert_eq(signal_args(self, "pinged", 0), [1, "one"])
	assert_eq(watcher.args(5), [])
	assert_eq(watch(self, "pinged"), watcher, "watching again returns the same watcher")

	_emit_later.call_deferred(3)
	assert_true(await watcher.wait(1.0), "wait() sees the next emission")
	assert_eq(watcher.args(), [3, "three"])
	assert_false(await watcher.wait(0.05), "wait() times out without an emission")


func test_coroutine_result_is_awaited() -> void:
	var value: int = await _slow_double(21)
	assert_eq(value, 42)


func test_logged_errors_are_visible_to_the_test() -> void:
	push_error("selftest: a deliberate error")
	var messages := logged_errors().map(func(e: Dictionary) -> String: return e.message)
	assert_true("selftest: a deliberate error" in messages, str(messages))


func _emit_later(value: int) -> void:
	pinged.emit(value, "three")


func _slow_double(value: int) -> int:
	await wait_frames(2)
	return value * 2
