@tool
extends EditorPlugin
## Editor-mode tests, run inside a real (headless) editor by
## `godot --headless --editor --path tests -- --run-editor-tests`: the Async
## Net editor spawner spawns into the edited scene, owned by its root, one
## undo step per node. Prints PASS/FAIL lines and `N passed, N failed`, then quits.

const LineReader := preload("res://helpers/line_reader.gd")
const ASYNC_NET_PLUGIN := "res://addons/async_net/plugin.gd"
const SCENE := "res://editor_tests/edited_scene.tscn"

var _passed := 0
var _failed := 0
var _failures := PackedStringArray()


func _enter_tree() -> void:
	if "--run-editor-tests" in OS.get_cmdline_user_args():
		_run.call_deferred()


func _run() -> void:
	await _frames(10)
	await _test_spawner_spawns_into_the_edited_scene_with_undo()
	await _test_hot_reload_while_tasks_run()
	print("%d passed, %d failed" % [_passed, _failed])
	get_tree().quit(0 if _failed == 0 else 1)


func _test_spawner_spawns_into_the_edited_scene_with_undo() -> void:
	var name := "editor.gd::test_spawner_spawns_into_the_edited_scene_with_undo"
	EditorInterface.open_scene_from_path(SCENE)
	await _frames(5)
	var root := EditorInterface.get_edited_scene_root()
	if not _check(root != null and root.name == "Level", "the test scene is open"):
		return _finish(name)
	var plugin := _find_async_net_plugin()
	if not _check(plugin != null, "the Async Net plugin is loaded"):
		return _finish(name)

	# A free port and a scene, as a user would set them in the project settings.
	ProjectSettings.set_setting(plugin.SETTING_PORT, 0)
	ProjectSettings.set_setting(plugin.SETTING_SCENE, "res://editor_tests/robot.tscn")
	plugin.set_editor_spawner_enabled(true)
	var spawner: TcpSpawnerServer = plugin.get_editor_spawner()
	_check(spawner != null and spawner.get_bound_port() > 0, "the editor spawner listens")
	var client := StreamPeerTCP.new()
	client.connect_to_host("127.0.0.1", spawner.get_bound_port())
	while client.get_status() == StreamPeerTCP.STATUS_CONNECTING:
		client.poll()
		await get_tree().process_frame
	client.put_data("R2D2\n".to_utf8_buffer())
	var reply := await LineReader.read_line(get_tree(), client)
	_check(reply == "OK R2D2", "reply OK R2D2, got '%s'" % reply)

	var spawned := root.get_node_or_null("R2D2")
	_check(spawned != null, "the node joined the edited scene")
	if spawned:
		_check(spawned.owner == root, "owned by the scene root, so it is saved")
		_check(spawned.scene_file_path == "res://editor_tests/robot.tscn", "an instance of the configured scene")
		_check(spawned.get_node("Body").owner != root, "the instance's own children stay in its scene")
		var undo_redo := EditorInterface.get_editor_undo_redo()
		var history := undo_redo.get_history_undo_redo(undo_redo.get_object_history_id(root))
		_check(history.undo(), "undo succeeds")
		_check(root.get_node_or_null("R2D2") == null, "undo removed it")
		_check(history.redo(), "redo succeeds")
		_check(root.get_node_or_null("R2D2") != null, "redo brought it back")

	var port := spawner.get_bound_port()
	plugin.set_editor_spawner_enabled(false)
	var probe := TCPServer.new()
	_check(probe.listen(port, "127.0.0.1") == OK, "turning it off frees the port")
	probe.stop()
	client.disconnect_from_host()
	_finish(name)


func _test_hot_reload_while_tasks_run() -> void:
	var name := "editor.gd::test_hot_reload_while_tasks_run"
	var ticker := AsyncHub.interval(0.01)
	var server := TcpSpawnerServer.new()
	server.port = 0
	server.autostart = false
	add_child(server)
	server.start()
	await _frames(3)
	_check(AsyncHub.task_count() >= 2, "tasks are running before the reload")
	var status := GDExtensionManager.reload_extension("res://addons/async_net/async_net.gdextension")
	_check(status == GDExtensionManager.LOAD_STATUS_OK, "reload status %d" % status)
	await _frames(5)
	# The reload shut the old runtime down (its tasks ended); the new library starts a fresh one.
	# This coroutine was compiled before the reload, so it calls dynamically: its direct calls
	# would use method binds of the old library (scripts are recompiled, running coroutines not).
	var hub := Engine.get_singleton("AsyncHub")
	_check(hub != null and hub.get_class() == "AsyncHub", "the AsyncHub singleton survives the reload")
	var slept: Object = hub.call("sleep", 0.01)
	var done := [false]
	slept.completed.connect(func(_r: Variant) -> void: done[0] = true)
	var deadline := Time.get_ticks_msec() + 5000
	while not done[0] and Time.get_ticks_msec() < deadline:
		await get_tree().process_frame
	_check(done[0], "a task started after the reload completes")
	_check(server.call("get_state") == 0, "the server's task ended with the old runtime (STOPPED)")
	server.call("start")
	_check(server.call("get_bound_port") > 0, "and it can start again")
	server.free()
	ticker = null
	_finish(name)


func _find_async_net_plugin() -> EditorPlugin:
	var stack: Array[Node] = [EditorInterface.get_base_control().get_tree().root]
	while not stack.is_empty():
		var node: Node = stack.pop_back()
		if node is EditorPlugin and node.get_script() and node.get_script().resource_path == ASYNC_NET_PLUGIN:
			return node
		stack.append_array(node.get_children())
	return null


func _frames(count: int) -> void:
	for i in count:
		await get_tree().process_frame


func _check(condition: bool, what: String) -> bool:
	if not condition:
		_failures.append(what)
	return condition


func _finish(name: String) -> void:
	if _failures.is_empty():
		_passed += 1
		print("PASS %s" % name)
	else:
		_failed += 1
		print("FAIL %s: %s" % [name, "; ".join(_failures)])
	_failures.clear()
