## Runs tcp_clients.py (real TCP clients in another process) without
## blocking the main thread, so the server under test keeps stepping.
extends RefCounted

const SCRIPT := "res://helpers/tcp_clients.py"
const LIMIT_MSEC := 30000


## Runs `plan` (see tcp_clients.py) and returns its result dictionary, or
## {"error": ...} if the process could not run or did not finish in time.
static func run(tree: SceneTree, plan: Dictionary) -> Dictionary:
	var out_path := OS.get_temp_dir().path_join("async_net_clients_%d_%d.json" % [OS.get_process_id(), Time.get_ticks_usec()])
	var args := [ProjectSettings.globalize_path(SCRIPT), JSON.stringify(plan), out_path]
	var pid := OS.create_process("python3", args)
	if pid <= 0:
		return {"error": "cannot start python3"}
	var deadline := Time.get_ticks_msec() + LIMIT_MSEC
	while OS.is_process_running(pid):
		if Time.get_ticks_msec() > deadline:
			OS.kill(pid)
			return {"error": "the clients did not finish in %d ms" % LIMIT_MSEC}
		await tree.process_frame
	var text := FileAccess.get_file_as_string(out_path)
	DirAccess.remove_absolute(out_path)
	var result = JSON.parse_string(text)
	return result if result is Dictionary else {"error": "no result from the clients: '%s'" % text}
