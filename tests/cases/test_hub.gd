## AsyncHub and AsyncTask: timers, cancellation, ownership, failures, pause.
extends "res://runner/test_case.gd"


func after_each() -> void:
	AsyncHub.cancel_all()


## Starts an interval whose first tick holds the main thread `msec` ms (a handler runs inside its
## task's poll) and cancels it; returns whether that tick ran.
func hold_the_main_thread_in_one_poll(msec: int) -> bool:
	var ticker := AsyncHub.interval(0.01)
	var ticked := [false]
	ticker.ticked.connect(func(_n: int) -> void:
		OS.delay_msec(msec)
		ticked[0] = true
		ticker.cancel(), CONNECT_ONE_SHOT)
	return await wait_until(func(): return ticked[0])


func test_the_autoload_is_the_hub_gdscript_sees() -> void:
	assert_eq(AsyncHub.get_class(), "AsyncHub")
	assert_true(AsyncHub.is_inside_tree(), "AsyncHub resolves to the autoload node")
	assert_eq(str(AsyncHub.get_path()), "/root/AsyncHub")
	assert_eq(AsyncHub.process_mode, Node.PROCESS_MODE_ALWAYS)


func test_sleep_completes_no_earlier_than_asked() -> void:
	for seconds in [0.0, 0.05, 0.2]:
		var start := Time.get_ticks_usec()
		var task := AsyncHub.sleep(seconds)
		var result = await task.completed
		var elapsed := (Time.get_ticks_usec() - start) / 1e6
		assert_ge(elapsed, seconds, "sleep(%s) took %s s" % [seconds, elapsed])
		assert_eq(result, null)
		assert_true(task.is_done())


func test_interval_ticks_in_order_and_stops_on_cancel() -> void:
	var ticker := AsyncHub.interval(0.02)
	var ticks := watch(ticker, "ticked")
	watch(ticker, "cancelled")
	assert_true(await ticks.wait(5.0, 3), "three ticks")
	assert_eq(ticks.args(0), [1])
	assert_eq(ticks.args(1), [2])
	assert_eq(ticks.args(2), [3])
	assert_true(ticker.cancel())
	assert_true(ticker.is_done())
	assert_signal_count(ticker, "cancelled", 1)
	var count := ticks.count()
	await wait_seconds(0.1)
	assert_eq(ticks.count(), count, "no tick after cancel")
	assert_false(ticker.cancel(), "cancelling twice does nothing")


func test_cancel_all_returns_the_number_cancelled() -> void:
	assert_eq(AsyncHub.task_count(), 0)
	var tasks := [AsyncHub.sleep(10.0), AsyncHub.sleep(10.0), AsyncHub.interval(1.0)]
	for task in tasks:
		watch(task, "cancelled")
	assert_eq(AsyncHub.task_count(), 3)
	assert_eq(AsyncHub.cancel_all(), 3)
	assert_eq(AsyncHub.task_count(), 0)
	assert_eq(AsyncHub.cancel_all(), 0)
	for task in tasks:
		assert_true(task.is_done())
		assert_signal_count(task, "cancelled", 1)


func test_tasks_lists_id_name_owner_and_age() -> void:
	var task := AsyncHub.sleep(10.0)
	await wait_frames(2)
	var listed: Array[Dictionary] = AsyncHub.tasks()
	assert_eq(listed.size(), 1)
	assert_eq(listed[0].id, task.get_id())
	assert_eq(listed[0].name, "sleep")
	assert_eq(listed[0].owner, "AsyncHub")
	assert_gt(listed[0].age_sec, 0.0)


func test_a_failing_task_reports_and_the_game_goes_on() -> void:
	var hub_failures := watch(AsyncHub, "task_failed")
	expect_error("task 'interval' of AsyncHub failed: interval: seconds must be")
	var bad := AsyncHub.interval(0.0)
	var failed := watch(bad, "failed")
	assert_true(await failed.wait(), "the task emits failed")
	assert_true(String(failed.args(0)[0]).contains("seconds must be"), str(failed.args(0)))
	assert_eq(hub_failures.count(), 1)
	assert_eq(hub_failures.args(0)[0], "interval")
	assert_true(bad.is_done())
	var logged := logged_errors().filter(func(e): return e.message.contains("task 'interval'"))
	assert_eq(logged.size(), 1, "push_error logs the failure")
	# The game goes on: other tasks still run.
	await AsyncHub.sleep(0.01).completed
	assert_eq(AsyncHub.sleep(-1.0).get_task_name(), "sleep")


func test_freeing_a_node_cancels_its_tasks_and_frees_its_port() -> void:
	var server := TcpSpawnerServer.new()
	server.port = 0
	add_child(server)
	var port := server.get_bound_port()
	assert_gt(port, 0)
	await wait_frames(2)
	assert_eq(AsyncHub.task_count(), 1)
	assert_true(AsyncHub.tasks()[0].owner.ends_with(str(server.name)), str(AsyncHub.tasks()))
	server.free()
	assert_eq(AsyncHub.task_count(), 0, "the node's task is gone at once")
	var probe := TCPServer.new()
	assert_eq(probe.listen(port, "127.0.0.1"), OK, "the port is free at once")
	probe.stop()


func test_the_hub_keeps_stepping_while_paused() -> void:
	get_tree().paused = true
	var ticker := AsyncHub.interval(0.01)
	var ticks := watch(ticker, "ticked")
	var ok := await ticks.wait(5.0, 3)
	get_tree().paused = false
	assert_true(ok, "ticks arrive while the tree is paused")


func test_handlers_may_cancel_their_own_task_and_start_new_ones() -> void:
	var ticker := AsyncHub.interval(0.01)
	var follow_up: Array = []
	# One-shot: a lambda that captures the task it is connected to would keep it alive forever.
	ticker.ticked.connect(func(_n: int) -> void:
		ticker.cancel()
		follow_up.append(AsyncHub.sleep(0.0)), CONNECT_ONE_SHOT)
	assert_true(await wait_until(func(): return ticker.is_done()))
	await wait_frames(3)
	assert_eq(follow_up.size(), 1, "one tick: cancelled from its own handler")
	assert_true(follow_up[0].is_done(), "the task started from the handler ran")


func test_a_manual_step_inside_a_step_is_ignored() -> void:
	var ticker := AsyncHub.interval(0.01)
	var stepped := [false]
	ticker.ticked.connect(func(_n: int) -> void:
		AsyncHub.step()
		stepped[0] = true
		ticker.cancel(), CONNECT_ONE_SHOT)
	assert_true(await wait_until(func(): return stepped[0]))
	AsyncHub.step()


func test_monitors_report_tasks_and_step_time() -> void:
	AsyncHub.sleep(10.0)
	await wait_frames(2)
	assert_eq(Performance.get_custom_monitor(&"async_net/tasks"), 1)
	assert_eq(AsyncHub.max_step_usec, 2000, "the default step budget")
	# A step that runs a 5 ms handler takes at least 5 ms: the monitor shows it while that step
	# is the last one (this frame or one of the next few), then the idle steps after it.
	var step_usec := func() -> float: return Performance.get_custom_monitor(&"async_net/step_usec")
	assert_true(await hold_the_main_thread_in_one_poll(5))
	var longest := 0.0
	for i in 3:
		longest = maxf(longest, step_usec.call())
		await wait_frames(1)
	assert_ge(longest, 5000.0, "the step that ran the 5 ms handler, in µs")
	assert_true(await wait_until(func(): return step_usec.call() < 5000.0, 2.0), "then an idle step: %s µs" % step_usec.call())


func test_the_slowest_task_of_the_frame_is_named() -> void:
	await wait_frames(2)
	assert_eq(AsyncHub.get_slowest_task(), {}, "no task ran in the last frame")
	assert_true(await hold_the_main_thread_in_one_poll(20))
	# The frame that ran it is the last frame now or one of the next few.
	var seen := {}
	for i in 3:
		var slowest := AsyncHub.get_slowest_task()
		if slowest.get("usec", 0.0) >= 20_000.0:
			seen = slowest
			break
		await wait_frames(1)
	assert_eq(seen.get("task"), "interval", "the slowest task: %s" % seen)
	assert_eq(seen.get("owner"), "AsyncHub", "timers belong to the hub")
	await wait_frames(2)
	assert_eq(AsyncHub.get_slowest_task(), {}, "the next frames ran no task")
