## Runs a client helper (real clients in another process: tcp_clients.py, http_clients.py)
## without blocking the main thread, so the server under test keeps stepping.
extends RefCounted

const SCRIPT := "res://helpers/tcp_clients.py"
const LIMIT_MSEC := 30000


## Runs `plan` (see tcp_clients.py) and returns its result dictionary, or
## {"error": ...} if the process could not run or did not finish in time.
static func run(tree: SceneTree, plan: Dictionary) -> Dictionary:
	return await run_script(tree, SCRIPT, plan)


## Runs `script` (a res:// path) with `plan` as its JSON argument under `python` and returns
## the JSON the script wrote, or {"error": ...} if it could not run or did not finish in time.
static func run_script(tree: SceneTree, script: String, plan: Dictionary, python := "python3") -> Dictionary:
	return await finish(tree, start(script, plan, python))


## Starts `script` with `plan` (see run_script) and returns its handle for finish(), so the
## test can act while the clients run.
static func start(script: String, plan: Dictionary, python := "python3") -> Dictionary:
	var out_path := OS.get_temp_dir().path_join("async_net_clients_%d_%d.json" % [OS.get_process_id(), Time.get_ticks_usec()])
	var args := [ProjectSettings.globalize_path(script), JSON.stringify(plan), out_path]
	return {"pid": OS.create_process(python, args), "out": out_path, "python": python}


## Waits for the clients started by start() and returns what they wrote, or {"error": ...}.
static func finish(tree: SceneTree, handle: Dictionary) -> Dictionary:
	var pid: int = handle.pid
	if pid <= 0:
		return {"error": "cannot start %s" % handle.python}
	var deadline := Time.get_ticks_msec() + LIMIT_MSEC
	while OS.is_process_running(pid):
		if Time.get_ticks_msec() > deadline:
			OS.kill(pid)
			return {"error": "the clients did not finish in %d ms" % LIMIT_MSEC}
		await tree.process_frame
	var text := FileAccess.get_file_as_string(handle.out)
	DirAccess.remove_absolute(handle.out)
	var result = JSON.parse_string(text)
	return result if result is Dictionary else {"error": "no result from the clients: '%s'" % text}
