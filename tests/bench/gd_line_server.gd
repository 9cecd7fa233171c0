## The baseline of the TCP rows: TcpSpawnerServer's protocol written the way a Godot user
## would, on Godot's own TCPServer and StreamPeerTCP polled in _process.
##
## Each frame: accept what is pending, then for every client poll(), get_available_bytes(),
## read what came, split it into lines on "\n" (dropping a "\r" before it), decode UTF-8, make a
## node name (strip, validate_node_name, cap the length), spawn when asked to, and answer
## "OK <name>\n" (replies batched into one put_data per client and frame, which is kinder to the
## baseline than a put_data per line). Lines longer than MAX_LINE_BYTES close the client, as in
## TcpSpawnerServer. No token, no rate limit (the benchmarks turn both off on our side too).
##
## The main-thread cost of a frame is everything _process does, measured with
## Time.get_ticks_usec() around it: last_process_usec and total_process_usec.
extends Node

## Same default limits as TcpSpawnerServer.
const MAX_LINE_BYTES := 4096
const MAX_NAME_CHARS := 64

## Spawn a node per line (else only answer it).
var spawn_nodes := false
## What each line spawns; null spawns a Node3D, like TcpSpawnerServer.
var scene: PackedScene
## Where spawned nodes go.
var spawn_parent: Node
## Most clients at once.
var max_clients := 64

## Microseconds the last _process took.
var last_process_usec := 0
## Microseconds of every _process since listen().
var total_process_usec := 0
## Lines answered "OK".
var lines_ok := 0

var _server := TCPServer.new()
var _peers: Array[StreamPeerTCP] = []
var _buffers: Array[PackedByteArray] = []


## Listens on a free loopback port; returns it, or -1.
func listen() -> int:
	if _server.listen(0, "127.0.0.1") != OK:
		return -1
	return _server.get_local_port()


## Clients connected now.
func client_count() -> int:
	return _peers.size()


func _exit_tree() -> void:
	for peer in _peers:
		peer.disconnect_from_host()
	_peers.clear()
	_buffers.clear()
	_server.stop()


func _process(_delta: float) -> void:
	var start := Time.get_ticks_usec()
	while _server.is_connection_available():
		var peer := _server.take_connection()
		if _peers.size() >= max_clients:
			peer.put_data("ERR too many clients\n".to_utf8_buffer())
			peer.disconnect_from_host()
			continue
		peer.set_no_delay(true)
		_peers.append(peer)
		_buffers.append(PackedByteArray())
	var i := 0
	while i < _peers.size():
		var peer := _peers[i]
		peer.poll()
		if peer.get_status() != StreamPeerTCP.STATUS_CONNECTED:
			_drop(i)
			continue
		var available := peer.get_available_bytes()
		if available > 0 and not _receive(i, peer, available):
			_drop(i)
			continue
		i += 1
	last_process_usec = Time.get_ticks_usec() - start
	total_process_usec += last_process_usec


## Reads `available` bytes of client `index` and answers its complete lines. False: close it.
func _receive(index: int, peer: StreamPeerTCP, available: int) -> bool:
	var got: Array = peer.get_partial_data(available)
	if got[0] != OK:
		return false
	var buffer: PackedByteArray = _buffers[index]
	buffer.append_array(got[1])
	var replies := PackedStringArray()
	var line_start := 0
	var newline := buffer.find(10, line_start)
	while newline >= 0:
		var line_end := newline
		if line_end > line_start and buffer[line_end - 1] == 13:
			line_end -= 1
		if line_end - line_start > MAX_LINE_BYTES:
			peer.put_data("ERR line too long\n".to_utf8_buffer())
			return false
		if line_end > line_start:
			replies.append(_answer(buffer.slice(line_start, line_end)))
		line_start = newline + 1
		newline = buffer.find(10, line_start)
	buffer = buffer.slice(line_start)
	_buffers[index] = buffer
	if not replies.is_empty():
		peer.put_data("".join(replies).to_utf8_buffer())
	if buffer.size() > MAX_LINE_BYTES:
		peer.put_data("ERR line too long\n".to_utf8_buffer())
		return false
	return true


## The reply to one line (without its terminator).
func _answer(bytes: PackedByteArray) -> String:
	var text := bytes.get_string_from_utf8()
	if text.contains("\uFFFD"):
		return "ERR invalid utf-8\n"
	var node_name := text.strip_edges().validate_node_name().left(MAX_NAME_CHARS)
	if node_name.is_empty():
		return "ERR empty name\n"
	if spawn_nodes:
		node_name = _spawn(node_name)
	lines_ok += 1
	return "OK %s\n" % node_name


## Adds one instance named `base` (or base2, base3... when taken); returns its final name.
func _spawn(base: String) -> String:
	var node: Node = scene.instantiate() if scene else Node3D.new()
	var unique := base
	var suffix := 2
	while spawn_parent.has_node(unique):
		unique = "%s%d" % [base, suffix]
		suffix += 1
	node.name = unique
	spawn_parent.add_child(node)
	return node.name


func _drop(index: int) -> void:
	_peers[index].disconnect_from_host()
	_peers.remove_at(index)
	_buffers.remove_at(index)
