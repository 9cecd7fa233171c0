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
	await _test_f1_help_describes_every_member()
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


func _test_f1_help_describes_every_member() -> void:
	# What F1 shows: the editor's help page of each extension class, as gdext registers its
	# `///` docs (`register-docs`). Every entry (property, method, signal, constant) must have a
	# description, and every member ClassDB knows must have an entry.
	var name := "editor.gd::test_f1_help_describes_every_member"
	var classes := PackedStringArray()
	for cls in ClassDB.get_class_list():
		if ClassDB.class_get_api_type(cls) == ClassDB.API_EXTENSION:
			classes.append(cls)
	classes.sort()
	for cls in ["AsyncHub", "AsyncTask", "RadioStream", "RedisSubscriber", "TcpSpawnerServer", "WsEcho"]:
		_check(cls in classes, "%s is an extension class" % cls)
	var script_editor := EditorInterface.get_script_editor()
	for cls in classes:
		script_editor.goto_help("class_name:" + cls)
		var text := ""
		for i in 20:
			await get_tree().process_frame
			text = _help_page_text(script_editor, cls)
			if not text.is_empty():
				break
		if not _check(not text.is_empty(), "%s has a help page" % cls):
			continue
		for problem in _undocumented(cls, text):
			_check(false, "%s: %s" % [cls, problem])
	_finish(name)


## The text of the help page of `cls` open in the script editor, or "".
func _help_page_text(script_editor: Node, cls: String) -> String:
	for help in script_editor.find_children(cls, "EditorHelp", true, false):
		for label: RichTextLabel in help.find_children("*", "RichTextLabel", true, false):
			var text := label.get_parsed_text()
			if text.contains("Class: ") and text.contains(cls):
				return text
	return ""


## What the help page `text` of `cls` lacks: a brief or full description, an entry for a member
## ClassDB lists, or a description under an entry ("●" lines).
func _undocumented(cls: String, text: String) -> PackedStringArray:
	const HEADERS := ["Description", "Properties", "Methods", "Signals", "Constants", "Enumerations",
		"Property Descriptions", "Method Descriptions", "Tutorials", "Theme Properties"]
	const NO_DESCRIPTION := "There is currently no description"
	var problems := PackedStringArray()
	var lines := text.replace("\u00a0", " ").split("\n")
	var entries := {}
	var entry := ""
	var body := ""
	var section := "brief"
	var section_text := {}
	for line in lines + PackedStringArray(["Constants"]):
		var trimmed := line.strip_edges()
		if trimmed.begins_with("●") or trimmed in HEADERS:
			if not entry.is_empty():
				entries[entry] = body
			entry = trimmed.trim_prefix("●").strip_edges() if trimmed.begins_with("●") else ""
			body = ""
			if trimmed in HEADERS:
				section = trimmed
		elif not entry.is_empty():
			body += trimmed
		elif not (trimmed.begins_with("Class:") or trimmed.begins_with("Inherits:") or trimmed.begins_with("Inherited By:")):
			section_text[section] = section_text.get(section, "") + trimmed
	for part in ["brief", "Description"]:
		var described: String = section_text.get(part, "")
		if described.is_empty() or described.contains(NO_DESCRIPTION):
			problems.append("no %s description" % ("brief" if part == "brief" else "full"))
	for key: String in entries:
		var described: String = entries[key]
		if described.is_empty() or described.contains(NO_DESCRIPTION):
			problems.append("no description for '%s'" % key)
	# Entries read "void name(...)", "name(...)" (signals), "NAME = 0" and "<type>name [default: ...]".
	var accessors := {}
	var members := PackedStringArray()
	for prop in ClassDB.class_get_property_list(cls, true):
		if prop.usage & (PROPERTY_USAGE_CATEGORY | PROPERTY_USAGE_GROUP | PROPERTY_USAGE_SUBGROUP):
			continue
		members.append(prop.name)
		accessors[ClassDB.class_get_property_setter(cls, prop.name)] = true
		accessors[ClassDB.class_get_property_getter(cls, prop.name)] = true
	for method in ClassDB.class_get_method_list(cls, true):
		if not accessors.has(StringName(method.name)):
			members.append(" %s(" % method.name)
	for signal_info in ClassDB.class_get_signal_list(cls, true):
		members.append("^%s(" % signal_info.name)
	for constant in ClassDB.class_get_integer_constant_list(cls, true):
		members.append("^%s =" % constant)
	for member in members:
		var found := false
		for key: String in entries:
			if ("^" + key).contains(member) if member.begins_with("^") else (" " + key).contains(member):
				found = true
				break
		if not found:
			problems.append("no help entry for '%s'" % member.trim_prefix("^").strip_edges())
	return problems


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
