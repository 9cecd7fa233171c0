## RedisSubscriber against the six-node Redis Cluster that `cargo xtask test` starts for these
## tests (helpers/redis_cluster.gd): the harness itself, then sharded and plain pub/sub across
## the three masters, a slot moved during traffic and a master killed during traffic.
extends "res://runner/test_case.gd"

const Cluster := preload("res://helpers/redis_cluster.gd")

var cluster: Cluster


func _init() -> void:
	timeouts = {
		"test_the_harness_fails_a_killed_master_over_and_moves_a_slot": 60.0,
	}


func before_each() -> void:
	cluster = Cluster.new()
	if assert_true(cluster.is_available(), Cluster.MISSING):
		assert_true(await cluster.wait_healthy(), "the cluster is healthy before the test: %s" % cluster.why_unhealthy())


## The harness the other tests (and RedisStreamConsumer's) rely on: three masters, a slot moved
## there and back, a master killed and replaced by its replica, the killed node back as a replica.
func test_the_harness_fails_a_killed_master_over_and_moves_a_slot() -> void:
	var masters := cluster.masters()
	if not assert_eq(masters.size(), 3, "three masters"):
		return
	var slot := cluster.keyslot("harness")
	var home := cluster.master_of_slot(slot)
	var away := masters[0] if masters[0] != home else masters[1]
	assert_eq(cluster.run(home, ["SET", "harness", "kept"]), "OK")
	assert_true(cluster.move_slot(slot, away), "slot moved")
	assert_eq(cluster.master_of_slot(slot), away)
	assert_eq(cluster.run(away, ["GET", "harness"]), "kept", "the key moved with its slot")
	assert_true(cluster.move_slot(slot, home), "slot moved back")
	assert_eq(cluster.run(home, ["GET", "harness"]), "kept")

	var started := Time.get_ticks_msec()
	assert_gt(cluster.kill_master(home), 0, "killed the master")
	assert_true(await cluster.wait_for_failover(home, slot), "a replica took over")
	var took_over := cluster.master_of_slot(slot)
	assert_ne(took_over, home)
	print("  failover took %d ms" % (Time.get_ticks_msec() - started))
	assert_eq(cluster.run(took_over, ["GET", "harness"]), "kept", "the replica had the key")
	assert_true(await cluster.wait_healthy(30.0), "six nodes again: %s" % cluster.why_unhealthy())
	var back := cluster.nodes().filter(func(n): return n.port == home)
	assert_eq(back.size(), 1)
	assert_true(not back.is_empty() and back[0].flags.has("slave"), "the killed node is back as a replica")
	assert_eq(cluster.run(took_over, ["DEL", "harness"]), "1")
