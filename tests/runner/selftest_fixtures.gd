## Test methods that test_runner_selftest.gd has the runner run and judge (runner.gd's
## run_case()), to show which logged errors fail a test. Not under res://cases, so the runner
## never runs them as tests of their own; some of them fail on purpose.
extends "res://runner/test_case.gd"


func logs_an_error_it_did_not_announce() -> void:
	push_error("selftest: an error nobody announced")


func logs_an_error_it_announced() -> void:
	expect_error("selftest: announced")
	push_error("selftest: announced, and logged")


func announces_an_error_that_is_not_logged() -> void:
	expect_error("selftest: never logged")


func logs_an_error_before_announcing_it() -> void:
	push_error("selftest: too early")
	expect_error("selftest: too early")


func logs_an_error_twice_that_it_announced_once() -> void:
	expect_error("selftest: twice")
	push_error("selftest: twice (1)")
	push_error("selftest: twice (2)")


func logs_an_error_three_times_announced_as_any_number() -> void:
	expect_error("selftest: repeated", ANY)
	for i in 3:
		push_error("selftest: repeated %d" % i)


func announces_any_number_of_an_error_that_is_not_logged() -> void:
	expect_error("selftest: not even once", ANY)


func logs_a_warning() -> void:
	push_warning("selftest: a warning")


func provokes_an_error_of_the_extension() -> void:
	var server := TcpSpawnerServer.new()
	server.port = 70000
	add_child(server)
	server.free()


func provokes_an_announced_error_of_the_extension() -> void:
	expect_error("port must be 0 to 65535, got 70000")
	provokes_an_error_of_the_extension()
