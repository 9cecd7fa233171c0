## The baseline of the WebSocket broadcast row: a WebSocket server written the way Godot's own
## demos do it, on TCPServer and WebSocketPeer.accept_stream(), every peer polled in _process;
## broadcast_text() sends to every open peer.
extends Node

var _server := TCPServer.new()
var _peers: Array[WebSocketPeer] = []


## Listens on a free loopback port; returns it, or -1.
func listen() -> int:
	if _server.listen(0, "127.0.0.1") != OK:
		return -1
	return _server.get_local_port()


## Peers whose handshake is done.
func open_count() -> int:
	return _peers.filter(func(p: WebSocketPeer) -> bool: return p.get_ready_state() == WebSocketPeer.STATE_OPEN).size()


func broadcast_text(text: String) -> void:
	for peer in _peers:
		if peer.get_ready_state() == WebSocketPeer.STATE_OPEN:
			peer.send_text(text)


func _exit_tree() -> void:
	for peer in _peers:
		peer.close()
	_peers.clear()
	_server.stop()


func _process(_delta: float) -> void:
	while _server.is_connection_available():
		var peer := WebSocketPeer.new()
		# Room for a frame's broadcasts to a slow reader (the default outbound buffer is 64 KiB).
		peer.outbound_buffer_size = 1 << 20
		peer.accept_stream(_server.take_connection())
		_peers.append(peer)
	var i := 0
	while i < _peers.size():
		_peers[i].poll()
		if _peers[i].get_ready_state() == WebSocketPeer.STATE_CLOSED:
			_peers.remove_at(i)
		else:
			i += 1
