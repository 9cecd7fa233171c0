## Self-test of the test runner and test_case.gd helpers. Only the cases about errors of the
## extension need it.
extends "res://runner/test_case.gd"

const Fixtures := preload("res://runner/selftest_fixtures.gd")

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
		assert_true(recorded[0].ends_with("(test_runner_selftest.gd:%d)" % 49), recorded[0])
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
	expect_error("selftest: a deliberate error")
	push_error("selftest: a deliberate error")
	var messages := logged_errors().map(func(e: Dictionary) -> String: return e.message)
	assert_true("selftest: a deliberate error" in messages, str(messages))


# --- which logged errors fail a test: fixtures run and judged as the runner runs a test ---------

## The failures the runner finds when it runs `method` of selftest_fixtures.gd as a test.
func failures_of(method: String) -> PackedStringArray:
	var result: Dictionary = await get_parent().run_case(Fixtures, method)
	return result.failures


## Fails unless `failures` is one failure that starts with `start` and contains `detail`.
func assert_one_failure(failures: PackedStringArray, start: String, detail := "") -> void:
	if assert_eq(failures.size(), 1, str(failures)):
		assert_true(failures[0].begins_with(start) and (detail.is_empty() or failures[0].contains(detail)), failures[0])


func test_an_unexpected_error_fails_the_test() -> void:
	assert_one_failure(await failures_of("logs_an_error_it_did_not_announce"),
		"unexpected error", "selftest: an error nobody announced")


func test_an_announced_error_does_not_fail_the_test() -> void:
	assert_eq(await failures_of("logs_an_error_it_announced"), PackedStringArray())


func test_an_announced_error_that_is_not_logged_fails_the_test() -> void:
	assert_one_failure(await failures_of("announces_an_error_that_is_not_logged"),
		"expected an error containing \"selftest: never logged\" 1 time(s), logged 0")


func test_an_announcement_covers_only_the_errors_after_it() -> void:
	var failures := await failures_of("logs_an_error_before_announcing_it")
	assert_eq(failures.size(), 2, str(failures))
	if failures.size() == 2:
		assert_true(failures[0].begins_with("unexpected error") and failures[0].contains("too early"), failures[0])
		assert_true(failures[1].begins_with("expected an error containing \"selftest: too early\""), failures[1])


func test_an_announced_error_is_consumed_once_per_announcement() -> void:
	assert_one_failure(await failures_of("logs_an_error_twice_that_it_announced_once"),
		"unexpected error", "selftest: twice (2)")


func test_any_number_means_at_least_once() -> void:
	assert_eq(await failures_of("logs_an_error_three_times_announced_as_any_number"), PackedStringArray())
	assert_one_failure(await failures_of("announces_any_number_of_an_error_that_is_not_logged"),
		"expected an error containing \"selftest: not even once\" at least once, logged 0")


func test_warnings_do_not_fail_the_test() -> void:
	assert_eq(await failures_of("logs_a_warning"), PackedStringArray())


func test_an_error_the_extension_logs_fails_the_test_unless_announced() -> void:
	assert_one_failure(await failures_of("provokes_an_error_of_the_extension"),
		"unexpected error", "port must be 0 to 65535, got 70000")
	assert_eq(await failures_of("provokes_an_announced_error_of_the_extension"), PackedStringArray())


func test_errors_of_the_test_around_a_run_stay_its_own() -> void:
	expect_error("selftest: the outer test's error")
	push_error("selftest: the outer test's error")
	assert_eq(await failures_of("logs_a_warning"), PackedStringArray(), "the inner run leaves it alone")
	var messages := logged_errors().map(func(e: Dictionary) -> String: return e.message)
	assert_true("selftest: the outer test's error" in messages, "and it stays for this test: %s" % messages)


func _emit_later(value: int) -> void:
	pinged.emit(value, "three")


func _slow_double(value: int) -> int:
	await wait_frames(2)
	return value * 2


func test_an_error_announced_with_maybe_may_happen_or_not() -> void:
	expect_error("an error this test never logs", MAYBE)
	expect_error("an error logged twice here", MAYBE)
	push_error("an error logged twice here")
	push_error("an error logged twice here")
