## The baseline of the HttpServer rows: an HTTP/1.1 server written the way Godot's GDScript
## server addons are (godottpd and the like), on TCPServer and StreamPeerTCP polled in
## _process, and written fairly: keep-alive and pipelining, every pending connection accepted
## each frame, all the complete requests of a frame answered in that frame, and replies written
## with put_partial_data from a buffer per client (put_data would block the frame on a big file).
##
## Each frame, for every client: poll(), read what came, split the head off at the blank line,
## parse the request line and headers, look the path up (an exact route, whose GDScript handler
## returns a Dictionary sent as JSON, or a file under a served folder, read with FileAccess per
## request as those addons do), and queue the answer. Request bodies are not read (the bench
## sends GETs only); a request head over MAX_HEAD_BYTES closes the client.
extends Node

const MAX_HEAD_BYTES := 65536

## Requests answered.
var requests := 0

var _server := TCPServer.new()
var _routes := {}
var _file_prefix := ""
var _file_dir := ""
var _peers: Array[StreamPeerTCP] = []
var _inputs: Array[String] = []
var _outputs: Array[PackedByteArray] = []


## Listens on a free loopback port; returns it, or -1.
func listen() -> int:
	if _server.listen(0, "127.0.0.1") != OK:
		return -1
	return _server.get_local_port()


## Answers GET `path` with what `handler` (given the request as a Dictionary) returns, as JSON.
func route(path: String, handler: Callable) -> void:
	_routes[path] = handler


## Answers GET `prefix`<name> with the file <name> of `directory`.
func serve_files(prefix: String, directory: String) -> void:
	_file_prefix = prefix
	_file_dir = directory


func _exit_tree() -> void:
	for peer in _peers:
		peer.disconnect_from_host()
	_peers.clear()
	_server.stop()


func _process(_delta: float) -> void:
	while _server.is_connection_available():
		var peer := _server.take_connection()
		peer.set_no_delay(true)
		_peers.append(peer)
		_inputs.append("")
		_outputs.append(PackedByteArray())
	var i := 0
	while i < _peers.size():
		if _serve(i):
			i += 1
		else:
			_peers[i].disconnect_from_host()
			_peers.remove_at(i)
			_inputs.remove_at(i)
			_outputs.remove_at(i)


## Reads, answers and writes for client `i`; false once it is to be dropped.
func _serve(i: int) -> bool:
	var peer := _peers[i]
	peer.poll()
	if peer.get_status() != StreamPeerTCP.STATUS_CONNECTED:
		return false
	var available := peer.get_available_bytes()
	if available > 0:
		_inputs[i] += peer.get_utf8_string(available)
	var keep := true
	while keep:
		var end := _inputs[i].find("\r\n\r\n")
		if end < 0:
			if _inputs[i].length() > MAX_HEAD_BYTES:
				return false
			break
		var head := _inputs[i].substr(0, end)
		_inputs[i] = _inputs[i].substr(end + 4)
		keep = _answer(i, head)
	if not _outputs[i].is_empty():
		var sent: Array = peer.put_partial_data(_outputs[i])
		if sent[0] != OK:
			return false
		_outputs[i] = _outputs[i].slice(sent[1])
	return keep or not _outputs[i].is_empty()


## Answers one request head; false when the client asked to close.
func _answer(i: int, head: String) -> bool:
	var lines := head.split("\r\n")
	var request_line := lines[0].split(" ")
	var headers := {}
	for n in range(1, lines.size()):
		var colon := lines[n].find(":")
		if colon > 0:
			headers[lines[n].substr(0, colon).strip_edges().to_lower()] = lines[n].substr(colon + 1).strip_edges()
	var method := request_line[0] if request_line.size() > 0 else ""
	var path := request_line[1].get_slice("?", 0) if request_line.size() > 1 else "/"
	var close := String(headers.get("connection", "")).to_lower() == "close"
	var request := {"method": method, "path": path, "headers": headers}
	requests += 1
	if method == "GET" and _routes.has(path):
		var body := JSON.stringify(_routes[path].call(request)).to_utf8_buffer()
		_queue(i, 200, "application/json", body, close)
	elif method == "GET" and not _file_prefix.is_empty() and path.begins_with(_file_prefix) and not ".." in path:
		var file := _file_dir.path_join(path.trim_prefix(_file_prefix).uri_decode())
		if FileAccess.file_exists(file):
			_queue(i, 200, "application/octet-stream", FileAccess.get_file_as_bytes(file), close)
		else:
			_queue(i, 404, "text/plain", "not found".to_utf8_buffer(), close)
	else:
		_queue(i, 404, "text/plain", "not found".to_utf8_buffer(), close)
	return not close


func _queue(i: int, status: int, type: String, body: PackedByteArray, close: bool) -> void:
	var head := "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: %s\r\n\r\n" % [
		status, "OK" if status == 200 else "Not Found", type, body.size(), "close" if close else "keep-alive"]
	_outputs[i].append_array(head.to_utf8_buffer())
	_outputs[i].append_array(body)
