## RedisSubscriber against the six-node Redis Cluster that `cargo xtask test` starts for these
## tests (helpers/redis_cluster.gd): the harness itself, then sharded and plain pub/sub across
## the three masters, a slot moved during traffic and a master killed during traffic.
extends "res://runner/test_case.gd"

const Cluster := preload("res://helpers/redis_cluster.gd")

var cluster: Cluster
var sub: RedisSubscriber
## A second node, only publishing (as another game server would).
var publisher: RedisSubscriber


func _init() -> void:
	timeouts = {
		"test_the_harness_fails_a_killed_master_over_and_moves_a_slot": 60.0,
		"test_resharding_a_slot_during_traffic": 40.0,
		"test_killing_a_master_during_traffic": 80.0,
	}


func before_each() -> void:
	cluster = Cluster.new()
	if assert_true(cluster.is_available(), Cluster.MISSING):
		assert_true(await cluster.wait_healthy(), "the cluster is healthy before the test: %s" % cluster.why_unhealthy())


func after_each() -> void:
	for node in [sub, publisher]:
		if is_instance_valid(node):
			node.free()


## A started cluster subscriber seeded with the node on `seed_port` (then the others).
func make_node(seed_port: int) -> RedisSubscriber:
	var node := RedisSubscriber.new()
	node.autostart = false
	node.cluster = true
	node.url = "redis://127.0.0.1:%d" % seed_port
	var others := PackedStringArray()
	for url in cluster.urls:
		if url != node.url:
			others.append(url)
	node.cluster_urls = others
	node.reconnect_min_sec = 0.05
	node.reconnect_max_sec = 0.5
	add_child(node)
	return node


## Starts `sub` and waits until it is connected and `subscriptions` are confirmed.
func start_and_wait(subscriptions: int) -> bool:
	var subscribed := watch(sub, "subscribed")
	var needed := subscribed.count() + subscriptions
	sub.start()
	return await wait_until(func(): return sub.state == RedisSubscriber.CONNECTED and subscribed.count() >= needed, 10.0)


## One sharded channel served by each master, named `prefix` + a number.
func one_channel_per_master(prefix: String) -> PackedStringArray:
	var found := PackedStringArray()
	for port in cluster.masters():
		found.append(cluster.channel_on(port, prefix))
	return found


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


func test_sharded_channels_on_all_three_masters() -> void:
	var channels := one_channel_per_master("shard:")
	if not assert_eq(channels.size(), 3, "a channel per master"):
		return
	sub = make_node(cluster.ports[0])
	sub.shard_channels = channels
	var messages := watch(sub, "message_received")
	if not assert_true(await start_and_wait(3), "connected, three sharded channels confirmed"):
		return
	for channel in channels:
		assert_eq(cluster.shard_subscribers(channel), 1, "%s held once, on its master" % channel)
	# From outside, on each channel's own master, then through the node itself.
	for channel in channels:
		assert_eq(cluster.run(cluster.master_of(channel), ["SPUBLISH", channel, "from cli"]), "1")
	var counts := []
	for channel in channels:
		counts.append(await sub.spublish(channel, "from node").completed)
	assert_eq(counts, [1, 1, 1], "each spublish reached one subscriber")
	assert_true(await messages.wait(5.0, 6), "six messages")
	var got := {}
	for i in messages.count():
		var args := messages.args(i)
		assert_eq(args[2], "", "sharded messages have no pattern")
		got["%s %s" % [args[0], args[1]]] = got.get("%s %s" % [args[0], args[1]], 0) + 1
	for channel in channels:
		assert_eq(got.get(channel + " from cli", 0), 1, channel)
		assert_eq(got.get(channel + " from node", 0), 1, channel)
	assert_eq(sub.get_stats().shard_channels, 3)

	var unsubscribed := watch(sub, "unsubscribed")
	sub.sunsubscribe(channels[1])
	assert_true(await unsubscribed.wait(5.0), "unsubscribed")
	assert_eq(unsubscribed.args(0), [channels[1]])
	assert_eq(sub.shard_channels, PackedStringArray([channels[0], channels[2]]))
	assert_eq(cluster.shard_subscribers(channels[1]), 0, "gone from its master")
	assert_eq(await sub.spublish(channels[1], "nobody").completed, 0)


func test_plain_and_pattern_subscriptions_across_the_cluster() -> void:
	sub = make_node(cluster.ports[1])
	sub.channels = PackedStringArray(["news"])
	sub.patterns = PackedStringArray(["game.*"])
	var messages := watch(sub, "message_received")
	if not assert_true(await start_and_wait(2), "connected"):
		return
	assert_eq(cluster.subscribers("news"), 1, "one subscription in the whole cluster")
	assert_eq(cluster.pattern_subscriptions(), 1)
	# A PUBLISH on any node reaches every node: publish on each of the six. Each answers with
	# the subscribers it has itself: 1 on the node the subscriber is connected to, else 0.
	var answers := 0
	for port in cluster.ports:
		answers += cluster.run(port, ["PUBLISH", "news", "n%d" % port]).to_int()
		cluster.run(port, ["PUBLISH", "game.%d" % port, "g"])
	assert_eq(answers, 1, "one node holds the subscription")
	assert_true(await sub.publish("news", "from node").completed in [0, 1], "publish through the cluster")
	assert_true(await messages.wait(5.0, 13), "thirteen messages")
	var news := 0
	var games := 0
	for i in messages.count():
		var args := messages.args(i)
		if args[0] == "news":
			news += 1
			assert_eq(args[2], "")
		elif args[0].begins_with("game."):
			games += 1
			assert_eq(args[2], "game.*")
	assert_eq([news, games], [7, 6], "each message once")
	await wait_frames(5)
	assert_eq(messages.count(), 13, "no duplicates")


func test_sharded_calls_need_cluster_mode() -> void:
	sub = RedisSubscriber.new()
	sub.autostart = false
	sub.url = cluster.urls[0]
	add_child(sub)
	sub.start()
	expect_error("sharded channels need cluster = true", 2)
	var failed := watch(sub, "error")
	sub.ssubscribe("x")
	assert_eq(sub.shard_channels, PackedStringArray(), "not added")
	var task: AsyncTask = sub.spublish("x", "y")
	var failure := watch(task, "failed")
	assert_true(await failure.wait(5.0), "spublish failed")
	assert_true(str(failure.args(0)[0]).contains("need cluster = true"), str(failure.args(0)))
	assert_eq(failed.count(), 2, "both reported through the node's error signal")


## Publishes through a node every 10 ms while a test does something else, and keeps what the
## node's tasks answered: an acknowledged message is one whose task completed (with the number
## of subscribers that got it); a failed one was not acknowledged.
class Traffic:
	## [channel, sharded] pairs, each published to once per round.
	var plan: Array
	var node: RedisSubscriber
	var rounds := 0
	var _last_msec := 0
	## "channel payload" -> receivers, for the acknowledged ones.
	var acked := {}
	## "channel payload" -> why, for the failed ones.
	var failed := {}
	var _tasks: Array[AsyncTask] = []

	func _init(publishing: RedisSubscriber, channels: Array) -> void:
		node = publishing
		plan = channels

	func tick() -> void:
		if Time.get_ticks_msec() - _last_msec < 10:
			return
		_last_msec = Time.get_ticks_msec()
		for entry in plan:
			var payload := str(rounds)
			var key := "%s %s" % [entry[0], payload]
			var task: AsyncTask = node.spublish(entry[0], payload) if entry[1] else node.publish(entry[0], payload)
			task.completed.connect(func(receivers): acked[key] = receivers)
			task.failed.connect(func(why): failed[key] = why)
			_tasks.append(task)
		rounds += 1

	func pending() -> int:
		return _tasks.size() - acked.size() - failed.size()

	## Acknowledged messages of `channel` that the subscriber must get: for a sharded channel
	## those SPUBLISH counted a subscriber for (its master holds them all); a plain PUBLISH counts
	## only the subscribers of the node that took it, so every acknowledged one.
	func delivered_to_someone(channel: String) -> PackedStringArray:
		var sharded := plan.any(func(entry): return entry[0] == channel and entry[1])
		var keys := PackedStringArray()
		for key in acked:
			if key.begins_with(channel + " ") and (acked[key] >= 1 or not sharded):
				keys.append(key)
		return keys

	func count(channel: String, table: Dictionary) -> int:
		return table.keys().filter(func(k): return k.begins_with(channel + " ")).size()


## Runs `traffic` on every frame (it publishes once per 10 ms) until stop_traffic().
func start_traffic(traffic: Traffic) -> void:
	get_tree().process_frame.connect(traffic.tick)


func stop_traffic(traffic: Traffic) -> void:
	get_tree().process_frame.disconnect(traffic.tick)
	assert_true(await wait_until(func(): return traffic.pending() == 0, 15.0), "every publish answered")


## "channel payload" -> how many times it arrived.
func arrivals(messages) -> Dictionary:
	var seen := {}
	for i in messages.count():
		var args: Array = messages.args(i)
		var key := "%s %s" % [args[0], args[1]]
		seen[key] = seen.get(key, 0) + 1
	return seen


## Every message acknowledged with a receiver arrived exactly once, and none arrived twice.
func assert_no_loss_no_duplicates(traffic: Traffic, seen: Dictionary, channel: String) -> void:
	var lost := 0
	for key in traffic.delivered_to_someone(channel):
		if seen.get(key, 0) != 1:
			lost += 1
	var twice := seen.keys().filter(func(k): return k.begins_with(channel + " ") and seen[k] > 1)
	print("  %s: %d acknowledged for the subscriber, %d with no receiver, %d failed, %d arrived, %d lost" % [
		channel, traffic.delivered_to_someone(channel).size(), traffic.count(channel, traffic.acked) - traffic.delivered_to_someone(channel).size(),
		traffic.count(channel, traffic.failed), seen.keys().filter(func(k): return k.begins_with(channel + " ")).size(), lost])
	assert_eq(lost, 0, "%s: every message acknowledged with a receiver arrived once" % channel)
	assert_eq(twice, [], "%s: none arrived twice" % channel)


func test_resharding_a_slot_during_traffic() -> void:
	var masters := cluster.masters()
	var home := masters[0]
	var away := masters[1]
	var channel := cluster.channel_on(home, "moving:")
	var slot := cluster.keyslot(channel)
	sub = make_node(masters[2])
	sub.shard_channels = PackedStringArray([channel])
	sub.channels = PackedStringArray(["plain:moving"])
	var messages := watch(sub, "message_received")
	if not assert_true(await start_and_wait(2), "connected"):
		return
	publisher = make_node(masters[2])
	publisher.start()
	assert_true(await wait_until(func(): return publisher.state == RedisSubscriber.CONNECTED, 10.0))
	var traffic := Traffic.new(publisher, [[channel, true], ["plain:moving", false]])
	start_traffic(traffic)
	await wait_seconds(0.5)
	var before := traffic.rounds
	assert_true(cluster.move_slot(slot, away), "slot %d moved from %d to %d" % [slot, home, away])
	assert_true(await wait_until(func(): return cluster.shard_subscribers(channel) == 1, 10.0), "subscribed on the new master")
	await wait_seconds(0.5)
	await stop_traffic(traffic)
	await wait_frames(10)
	var seen := arrivals(messages)
	assert_no_loss_no_duplicates(traffic, seen, channel)
	assert_no_loss_no_duplicates(traffic, seen, "plain:moving")
	assert_eq(cluster.master_of(channel), away)
	assert_eq(cluster.shard_subscribers(channel), 1, "once, on the new master")
	assert_eq(cluster.shard_subscribers_everywhere(channel), 1, "and on no other node")
	assert_eq(cluster.run(home, ["PUBSUB", "SHARDNUMSUB", channel]).split("\n")[-1], "0", "none left on the old one")
	assert_eq(cluster.subscribers("plain:moving"), 1)
	assert_true(seen.has("%s %d" % [channel, traffic.rounds - 1]), "the last message after the move arrived")
	assert_gt(traffic.rounds, before + 10, "traffic went on during the move")
	assert_eq(sub.state, RedisSubscriber.CONNECTED)
	assert_true(cluster.move_slot(slot, home), "slot moved back")


func test_killing_a_master_during_traffic() -> void:
	var masters := cluster.masters()
	var victim := masters[0]
	var doomed := cluster.channel_on(victim, "doomed:")
	var safe := cluster.channel_on(masters[1], "safe:")
	sub = make_node(masters[1])
	sub.shard_channels = PackedStringArray([doomed, safe])
	sub.channels = PackedStringArray(["plain:failover"])
	var messages := watch(sub, "message_received")
	if not assert_true(await start_and_wait(3), "connected"):
		return
	publisher = make_node(masters[2])
	publisher.start()
	assert_true(await wait_until(func(): return publisher.state == RedisSubscriber.CONNECTED, 10.0))
	# While the victim's shard has no master, a publish to it may fail, and the subscriber may
	# say that it cannot resubscribe there yet: how often depends on the failover's timing.
	expect_error("publish failed", MAYBE)
	expect_error("sharded channels: ", MAYBE)
	var traffic := Traffic.new(publisher, [[doomed, true], [safe, true], ["plain:failover", false]])
	start_traffic(traffic)
	await wait_seconds(0.5)
	var slot := cluster.keyslot(doomed)
	var started := Time.get_ticks_msec()
	assert_gt(cluster.kill_master(victim), 0, "killed the master %d" % victim)
	assert_true(await cluster.wait_for_failover(victim, slot), "a replica took over")
	print("  failover took %d ms" % (Time.get_ticks_msec() - started))
	assert_true(await wait_until(func(): return cluster.shard_subscribers(doomed) == 1, 15.0), "resubscribed on the new master")
	var after := traffic.rounds
	# Traffic goes on while the killed node comes back (xtask restarts it, as a replica of its
	# replica), and a while after.
	assert_true(await wait_until(func(): return cluster.run(victim, ["PING"]) == "PONG", 20.0), "the killed node is back")
	await wait_seconds(1.0)
	await stop_traffic(traffic)
	assert_true(await cluster.wait_healthy(30.0), "six nodes again: %s" % cluster.why_unhealthy())
	await wait_frames(10)
	var seen := arrivals(messages)
	for channel in [doomed, safe, "plain:failover"]:
		assert_no_loss_no_duplicates(traffic, seen, channel)
	assert_eq(traffic.count(safe, traffic.failed), 0, "the shard that kept its master lost nothing")
	assert_eq(cluster.shard_subscribers(doomed), 1, "the victim's channel held once, on the new master")
	assert_eq(cluster.shard_subscribers_everywhere(doomed), 1, "and on no other node (the killed one is back, as a replica)")
	assert_eq(cluster.shard_subscribers(safe), 1)
	assert_eq(cluster.shard_subscribers_everywhere(safe), 1)
	assert_eq(cluster.subscribers("plain:failover"), 1)
	assert_true(seen.has("%s %d" % [doomed, traffic.rounds - 1]), "messages after the failover arrived")
	assert_gt(traffic.rounds, after + 10)
	assert_eq(sub.state, RedisSubscriber.CONNECTED)
