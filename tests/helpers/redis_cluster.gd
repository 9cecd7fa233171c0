## The test Redis Cluster that `cargo xtask test` starts for the tests that use it (six nodes
## on loopback, three masters and three replicas: rust/xtask/src/redis_cluster.rs), and what a
## test does to it through redis-cli: find which master serves a channel, kill a master and wait
## for its replica to take over, move a slot, count subscribers. xtask restarts a killed node
## (as a replica) once its slots have moved; `wait_healthy()` waits for that, so a test that
## kills or moves leaves the cluster as it found it. Use as
##
##     const Cluster := preload("res://helpers/redis_cluster.gd")
##     var cluster := Cluster.new()
##     if not assert_true(cluster.is_available(), Cluster.MISSING): return
##
## The methods that wait are coroutines (`await cluster.wait_healthy()`).
extends RefCounted

const Env := preload("res://runner/env.gd")

## What a test says when the cluster is not there.
const MISSING := "ASYNC_NET_TEST_REDIS_CLUSTER_URLS names six nodes (run through `cargo xtask test`)"

## How often the waits look at the cluster.
const POLL_SEC := 0.1

## The six nodes' URLs (redis://127.0.0.1:PORT).
var urls := PackedStringArray()
## Their ports.
var ports := PackedInt32Array()
var _cli := ""


func _init() -> void:
	urls = Env.value(Env.REDIS_CLUSTER_URLS).split(",", false)
	for url in urls:
		ports.append(url.get_slice(":", 2).to_int())
	_cli = Env.value(Env.REDIS_CLI)


## Whether xtask started the cluster for this run.
func is_available() -> bool:
	return ports.size() == 6 and not _cli.is_empty()


## Runs redis-cli on the node at `port`; its output, trimmed ("" when nothing answered; an
## error reply reads "ERR ...", "MOVED ...").
func run(port: int, args: Array) -> String:
	var output := []
	OS.execute(_cli, PackedStringArray(["-h", "127.0.0.1", "-p", str(port)] + args), output, true)
	return output[0].strip_edges() if output.size() > 0 else ""


## CLUSTER NODES as the first node that answers sees it, one Dictionary per node: `id`, `port`,
## `flags` (PackedStringArray), `master` (its master's id, "" for a master), `slots` (Array of
## [first, last]), `failed`, `migrating` and `connected` (bool).
func nodes() -> Array[Dictionary]:
	for port in ports:
		var text := run(port, ["CLUSTER", "NODES"])
		if text.is_empty() or text.contains("Could not connect") or text.begins_with("ERR"):
			continue
		var found: Array[Dictionary] = []
		for line in text.split("\n", false):
			var fields := line.strip_edges().split(" ", false)
			if fields.size() < 8:
				continue
			var flags := fields[2].split(",")
			var slots := []
			var migrating := false
			for i in range(8, fields.size()):
				if fields[i].begins_with("["):
					migrating = true
				elif fields[i].contains("-"):
					slots.append([fields[i].get_slice("-", 0).to_int(), fields[i].get_slice("-", 1).to_int()])
				else:
					slots.append([fields[i].to_int(), fields[i].to_int()])
			found.append({
				"id": fields[0],
				"port": fields[1].get_slice("@", 0).get_slice(",", 0).get_slice(":", 1).to_int(),
				"flags": flags,
				"master": "" if fields[3] == "-" else fields[3],
				"slots": slots,
				"failed": flags.has("fail") or flags.has("fail?"),
				"migrating": migrating,
				"connected": fields[7] == "connected",
			})
		return found
	return []


## The hash slot of a key or sharded channel.
func keyslot(name: String) -> int:
	for port in ports:
		var answer := run(port, ["CLUSTER", "KEYSLOT", name])
		if answer.is_valid_int():
			return answer.to_int()
	return -1


## The port of the master that serves `slot`; 0 when none does.
func master_of_slot(slot: int) -> int:
	for node in nodes():
		if node.flags.has("master") and not node.failed:
			for range_ in node.slots:
				if slot >= range_[0] and slot <= range_[1]:
					return node.port
	return 0


## The port of the master that serves the (sharded) channel `name`.
func master_of(name: String) -> int:
	return master_of_slot(keyslot(name))


## The ports of the masters serving slots, in slot order.
func masters() -> PackedInt32Array:
	var found := []
	for node in nodes():
		if node.flags.has("master") and not node.failed and not node.slots.is_empty():
			found.append([node.slots[0][0], node.port])
	found.sort()
	var result := PackedInt32Array()
	for pair in found:
		result.append(pair[1])
	return result


## A channel named `prefix` + a number whose slot the master on `port` serves.
func channel_on(port: int, prefix: String) -> String:
	for i in 1000:
		var name := "%s%d" % [prefix, i]
		if master_of(name) == port:
			return name
	return ""


## PUBSUB SHARDNUMSUB `channel` on the master that serves it: how many sharded subscriptions
## that node holds for it (a client subscribed twice counts twice).
func shard_subscribers(channel: String) -> int:
	var lines := run(master_of(channel), ["PUBSUB", "SHARDNUMSUB", channel]).split("\n")
	return lines[1].to_int() if lines.size() == 2 else -1


## PUBSUB SHARDNUMSUB `channel` summed over all six nodes: a replica serves the sharded
## subscribers of its master's slots too, so a subscription held there would count here only.
func shard_subscribers_everywhere(channel: String) -> int:
	var total := 0
	for port in ports:
		var lines := run(port, ["PUBSUB", "SHARDNUMSUB", channel]).split("\n")
		if lines.size() == 2:
			total += lines[1].to_int()
	return total


## PUBSUB NUMSUB `channel` summed over the nodes (a plain subscription lives on one node).
func subscribers(channel: String) -> int:
	var total := 0
	for port in ports:
		var lines := run(port, ["PUBSUB", "NUMSUB", channel]).split("\n")
		if lines.size() == 2:
			total += lines[1].to_int()
	return total


## PUBSUB NUMPAT summed over the nodes.
func pattern_subscriptions() -> int:
	var total := 0
	for port in ports:
		var answer := run(port, ["PUBSUB", "NUMPAT"])
		if answer.is_valid_int():
			total += answer.to_int()
	return total


## Kills the master on `port` with SIGKILL (DEBUG is disabled in Redis 7: through the
## process_id of its INFO server); returns the pid, 0 when it could not.
func kill_master(port: int) -> int:
	for line in run(port, ["INFO", "server"]).split("\n"):
		if line.begins_with("process_id:"):
			var pid := line.get_slice(":", 1).strip_edges().to_int()
			return pid if OS.kill(pid) == OK else 0
	return 0


## Waits until a master other than the one on `killed_port` serves `slot` and the nodes that
## are up say `cluster_state:ok`; false after `timeout_sec`.
func wait_for_failover(killed_port: int, slot: int, timeout_sec := 15.0) -> bool:
	var deadline := Time.get_ticks_msec() + int(timeout_sec * 1000)
	while Time.get_ticks_msec() < deadline:
		var owner := master_of_slot(slot)
		if owner != 0 and owner != killed_port and _states_ok(false):
			return true
		await _pause()
	return false


## Waits until all six nodes are up and agree: `cluster_state:ok` on each, three masters serving
## every slot, no migration open, each master with one replica whose link is up and synced.
func wait_healthy(timeout_sec := 20.0) -> bool:
	var deadline := Time.get_ticks_msec() + int(timeout_sec * 1000)
	while Time.get_ticks_msec() < deadline:
		if why_unhealthy().is_empty():
			return true
		await _pause()
	return false


## Why the cluster is not healthy, "" when it is.
func why_unhealthy() -> String:
	if not _states_ok(true):
		return "a node is down or not ok"
	var view := nodes()
	if view.size() != 6:
		return "%d nodes known" % view.size()
	var served := 0
	var masters := 0
	for node in view:
		if node.failed or node.migrating or not node.connected:
			return "node %d is %s" % [node.port, ",".join(node.flags)]
		if node.flags.has("master"):
			masters += 1
			for range_ in node.slots:
				served += range_[1] - range_[0] + 1
		else:
			var info := run(node.port, ["INFO", "replication"])
			if not info.contains("master_link_status:up") or not info.contains("master_sync_in_progress:0"):
				return "replica %d not in sync" % node.port
	if masters != 3 or served != 16384:
		return "%d masters serve %d slots" % [masters, served]
	return ""


## Moves `slot` to the master on `to_port` while the cluster serves it: IMPORTING on the target,
## MIGRATING on the source, its keys moved with MIGRATE, then SETSLOT NODE on the target, the
## source and the other masters. False (with the answer pushed as an error) when a step fails.
func move_slot(slot: int, to_port: int) -> bool:
	var from_port := master_of_slot(slot)
	if from_port == to_port:
		return true
	var from_id := run(from_port, ["CLUSTER", "MYID"])
	var to_id := run(to_port, ["CLUSTER", "MYID"])
	var steps := [
		[to_port, ["CLUSTER", "SETSLOT", str(slot), "IMPORTING", from_id]],
		[from_port, ["CLUSTER", "SETSLOT", str(slot), "MIGRATING", to_id]],
	]
	for step in steps:
		if not _ok(step[0], step[1]):
			return false
	while true:
		var keys := run(from_port, ["CLUSTER", "GETKEYSINSLOT", str(slot), "100"]).split("\n", false)
		if keys.is_empty():
			break
		if not _ok(from_port, ["MIGRATE", "127.0.0.1", str(to_port), "", "0", "5000", "KEYS"] + Array(keys)):
			return false
	var order := [to_port, from_port]
	for port in masters():
		if port != to_port and port != from_port:
			order.append(port)
	for port in order:
		if not _ok(port, ["CLUSTER", "SETSLOT", str(slot), "NODE", to_id]):
			return false
	return true


func _ok(port: int, args: Array) -> bool:
	var answer := run(port, args)
	if answer == "OK" or answer == "NOKEY":
		return true
	push_error("redis cluster: %d answered %s with %s" % [port, " ".join(args), answer])
	return false


## Whether the nodes that answer say `cluster_state:ok` (`all`: and every node answers).
func _states_ok(all: bool) -> bool:
	var answered := 0
	for port in ports:
		var info := run(port, ["CLUSTER", "INFO"])
		if info.is_empty() or info.contains("Could not connect"):
			if all:
				return false
			continue
		if not info.contains("cluster_state:ok"):
			return false
		answered += 1
	return answered > 0


func _pause() -> Signal:
	return (Engine.get_main_loop() as SceneTree).create_timer(POLL_SEC, true, false, true).timeout
