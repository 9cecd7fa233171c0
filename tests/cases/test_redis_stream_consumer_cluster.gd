## RedisStreamConsumer against the six-node Redis Cluster that `cargo xtask test` starts for
## these tests (helpers/redis_cluster.gd): entries added with WAIT during traffic while the
## master of the stream's slot is killed; the consumer carries on, and every entry whose add()
## returned an id is handled.
extends "res://runner/test_case.gd"

const Cluster := preload("res://helpers/redis_cluster.gd")

var cluster: Cluster
var consumer: RedisStreamConsumer


func _init() -> void:
	timeouts = {"test_the_consumer_carries_on_when_the_master_of_its_stream_is_killed": 90.0}


func before_each() -> void:
	cluster = Cluster.new()
	if assert_true(cluster.is_available(), Cluster.MISSING):
		assert_true(await cluster.wait_healthy(), "the cluster is healthy before the test: %s" % cluster.why_unhealthy())


func after_each() -> void:
	if is_instance_valid(consumer):
		consumer.free()


func test_the_consumer_carries_on_when_the_master_of_its_stream_is_killed() -> void:
	if not cluster.is_available():
		return
	var stream := "{orders-%d}" % Time.get_ticks_usec()
	consumer = RedisStreamConsumer.new()
	consumer.autostart = false
	consumer.cluster = true
	consumer.url = cluster.urls[0]
	consumer.cluster_urls = cluster.urls.slice(1)
	consumer.stream = stream
	consumer.group = "shop"
	consumer.start_id = "0"
	consumer.add_wait_replicas = 1
	consumer.add_wait_timeout_sec = 1.0
	consumer.reconnect_min_sec = 0.1
	consumer.reconnect_max_sec = 0.5
	consumer.connect_timeout_sec = 2.0
	add_child(consumer)
	var received := {}
	consumer.entry_received.connect(func(id: String, _fields: Dictionary) -> void: received[id] = true)
	consumer.start()
	if not assert_true(await wait_until(func(): return consumer.state == RedisStreamConsumer.CONNECTED, 15.0), "connected"):
		return
	var home := cluster.master_of(stream)
	# Adds that fail while the shard has no master are not promised; what failed is reported.
	expect_error("RedisStreamConsumer", MAYBE)
	var added := {}
	var failed := [0]
	var add := func(i: int) -> void:
		var task: AsyncTask = consumer.add({"n": str(i)})
		task.completed.connect(func(id: String) -> void: added[id] = true)
		task.failed.connect(func(_message: String) -> void: failed[0] += 1)
	for i in 100:
		add.call(i)
		await get_tree().process_frame
	assert_gt(cluster.kill_master(home), 0, "killed the master of the stream's slot")
	for i in range(100, 400):
		add.call(i)
		await get_tree().process_frame
	assert_true(await cluster.wait_for_failover(home, cluster.keyslot(stream)), "a replica took over")
	for i in range(400, 450):
		add.call(i)
		await get_tree().process_frame
	assert_true(await wait_until(func(): return added.size() + failed[0] == 450, 30.0), "every add answered")
	var lost := func() -> Array: return added.keys().filter(func(id): return not received.has(id))
	assert_true(await wait_until(func(): return lost.call().is_empty(), 30.0), "every added entry handled; missing %s" % [lost.call()])
	assert_gt(added.size(), 150, "adds succeeded before and after the failover (failed: %d)" % failed[0])
	assert_eq(consumer.state, RedisStreamConsumer.CONNECTED)
	print("  added %d, failed %d, handled %d, reconnects %d" % [added.size(), failed[0], received.size(), consumer.get_stats().reconnects])
	assert_true(await cluster.wait_healthy(30.0), "six nodes again: %s" % cluster.why_unhealthy())
