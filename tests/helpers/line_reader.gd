## Reads `\n`-terminated reply lines from a StreamPeerTCP a frame at a time,
## so the server under test keeps stepping while a test waits.
extends RefCounted


## One reply line, without its `\n` ("" on timeout or when the peer closes).
static func read_line(tree: SceneTree, client: StreamPeerTCP, timeout_sec := 5.0) -> String:
	var bytes := PackedByteArray()
	var deadline := Time.get_ticks_msec() + int(timeout_sec * 1000.0)
	while Time.get_ticks_msec() < deadline:
		client.poll()
		if client.get_status() != StreamPeerTCP.STATUS_CONNECTED:
			break
		while client.get_available_bytes() > 0:
			var byte := client.get_u8()
			if byte == 10:
				return bytes.get_string_from_utf8()
			bytes.append(byte)
		await tree.process_frame
	return bytes.get_string_from_utf8()
