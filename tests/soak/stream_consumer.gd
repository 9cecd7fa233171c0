## The scene of the stream soak (rust/xtask/src/commands/soak/streams.rs): one
## RedisStreamConsumer reading the soak's stream from its Redis Cluster, under a fixed consumer
## name, so that each restart of this process takes back the entries the killed one had been
## handed and never acknowledged. The harness kills this process with SIGKILL at random
## moments and starts it again; a master of the cluster is killed once.
##
## The handler appends each id to `handled.txt` in the exchange folder and flushes it before it
## returns; the entry is acknowledged after that (auto_ack), so every acknowledged entry is in
## the file, and a SIGKILL between the two only makes a duplicate. A line cut short by the kill
## is not an id and the harness ignores it.
##
## Environment (set by xtask): ASYNC_NET_SOAK_DIR, ASYNC_NET_SOAK_STREAM_URLS,
## ASYNC_NET_SOAK_STREAM. Files: this scene writes `stream-ready` (its pid) once connected; it
## quits when `stream-quit` exists, writing `stream-stats.json` first.
extends Node

const Env := preload("res://runner/env.gd")

var dir := ""
var consumer: RedisStreamConsumer
var handled: FileAccess
var ready_written := false


func _ready() -> void:
	dir = Env.value(Env.SOAK_DIR)
	var urls := Env.value(Env.SOAK_STREAM_URLS).split(",", false)
	var path := dir.path_join("handled.txt")
	handled = FileAccess.open(path, FileAccess.READ_WRITE if FileAccess.file_exists(path) else FileAccess.WRITE)
	handled.seek_end()
	consumer = RedisStreamConsumer.new()
	consumer.cluster = true
	consumer.url = urls[0]
	consumer.cluster_urls = urls.slice(1)
	consumer.stream = Env.value(Env.SOAK_STREAM)
	consumer.group = "soak"
	consumer.consumer = "soak-consumer"
	consumer.start_id = "0"
	# The entries of a killed process are taken back at the restart, not claimed.
	consumer.claim_idle_sec = 60.0
	consumer.max_deliveries = 1000
	consumer.reconnect_min_sec = 0.1
	consumer.reconnect_max_sec = 1.0
	consumer.connect_timeout_sec = 2.0
	consumer.entries_received.connect(_on_entries)
	# Failovers and kills make connection errors: counted by the harness, not judged here.
	consumer.error.connect(func(message: String) -> void: print("STREAM-ERROR ", message))
	add_child(consumer)


func _on_entries(ids: PackedStringArray, _fields: Array[Dictionary]) -> void:
	for id in ids:
		handled.store_line(id)
	handled.flush()


func _process(_delta: float) -> void:
	if not ready_written and consumer.state == RedisStreamConsumer.CONNECTED:
		ready_written = true
		var ready := FileAccess.open(dir.path_join("stream-ready"), FileAccess.WRITE)
		ready.store_string(str(OS.get_process_id()))
		ready.close()
	if FileAccess.file_exists(dir.path_join("stream-quit")):
		var stats := FileAccess.open(dir.path_join("stream-stats.json"), FileAccess.WRITE)
		stats.store_string(JSON.stringify(consumer.get_stats()))
		stats.close()
		handled.close()
		get_tree().quit(0)
