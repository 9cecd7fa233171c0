@tool
extends Node
## The editor over HTTP (Project > Tools > Async Net > Serve the Editor over HTTP):
## an HttpServer inside the editor through which outside programs (scripts,
## assistants, level tools) read and change the scene being edited.
##
## - `GET /scene`: the edited scene's tree as JSON.
## - `POST /nodes`: adds nodes (a scene to instance or a class, a name, a
##   parent path, properties), one undo step each.
## - WebSocket `/events`: one JSON message per selection change, edited scene
##   switch and change to the scene's undo history.
##
## It listens on the project settings `async_net/editor_server/host` (loopback
## by default), `port` and `token` (when set, every request needs
## `Authorization: Bearer <token>`). docs/editor_server.md has the protocol.

## The WebSocket path of the events.
const EVENTS_PATH := "/events"
## Most nodes one POST may add.
const MAX_NODES_PER_REQUEST := 256
## Deepest level of the tree GET /scene walks.
const MAX_DEPTH := 64
## The types whose values may be given as JSON arrays of numbers.
const VECTOR_TYPES := [TYPE_VECTOR2, TYPE_VECTOR2I, TYPE_VECTOR3, TYPE_VECTOR3I, TYPE_VECTOR4,
	TYPE_VECTOR4I, TYPE_COLOR]

## The server (a child of this node).
var server := HttpServer.new()
var _plugin: EditorPlugin


## Sets the address, and the plugin whose `scene_changed` the events report; call before adding
## this node to the tree.
func configure(plugin: EditorPlugin, host: String, port: int, token: String) -> void:
	_plugin = plugin
	server.name = "HttpServer"
	server.autostart = false
	server.host = host
	server.port = port
	server.token = token


func _ready() -> void:
	server.route("GET", "/scene", _get_scene)
	server.route("POST", "/nodes", _post_nodes)
	server.websocket(EVENTS_PATH)
	add_child(server)
	EditorInterface.get_selection().selection_changed.connect(_on_selection_changed)
	EditorInterface.get_editor_undo_redo().history_changed.connect(_on_history_changed)
	if _plugin:
		_plugin.scene_changed.connect(_on_scene_changed)
	server.start()


# --- GET /scene ------------------------------------------------------------------------------------

func _get_scene(request: HttpServerRequest) -> Variant:
	var root := EditorInterface.get_edited_scene_root()
	if root == null:
		request.respond(409, {"error": "no scene is open in the editor"})
		return null
	return {"scene": root.scene_file_path, "root": _describe(root, root, 0)}


## `node` as {name, class, path (from the scene root, "." for the root), script and scene when it
## has them, children}: the nodes the scene itself holds (owned by its root), as the Scene dock
## shows them.
func _describe(node: Node, root: Node, depth: int) -> Dictionary:
	var entry := {"name": String(node.name), "class": node.get_class(), "path": String(root.get_path_to(node))}
	var script: Script = node.get_script()
	if script and not script.resource_path.is_empty():
		entry["script"] = script.resource_path
	if node != root and not node.scene_file_path.is_empty():
		entry["scene"] = node.scene_file_path
	var children: Array = []
	if depth < MAX_DEPTH:
		for child in node.get_children():
			if child.owner == root:
				children.append(_describe(child, root, depth + 1))
	entry["children"] = children
	return entry


# --- POST /nodes -----------------------------------------------------------------------------------

## Body: one node, an array of nodes, or {"nodes": [...]}; a node is {"class": "Node3D"} or
## {"scene": "res://x.tscn"}, with optional "name", "parent" (a path from the scene root, "." by
## default) and "properties" ({name: value}; a value is JSON, an array of numbers for a vector or
## colour, a resource path for a resource, or a Godot literal such as "Vector3(1, 2, 3)").
## Checks every node before adding any; answers {"added": [{"name", "path"}, ...]}.
func _post_nodes(request: HttpServerRequest) -> Variant:
	var root := EditorInterface.get_edited_scene_root()
	if root == null:
		request.respond(409, {"error": "no scene is open in the editor"})
		return null
	# Parsed here rather than with request.json(), which logs an error for a bad body: a client's
	# mistake gets its answer, not a line in the editor's log.
	var parser := JSON.new()
	if parser.parse(request.text()) != OK:
		request.respond(400, {"error": "the body is not JSON (line %d: %s); send a node object, or an array of them"
			% [parser.get_error_line(), parser.get_error_message()]})
		return null
	var body: Variant = parser.data
	var specs: Variant = body.get("nodes") if body is Dictionary and body.has("nodes") else body
	if specs is Dictionary:
		specs = [specs]
	if not specs is Array or specs.is_empty() or specs.size() > MAX_NODES_PER_REQUEST:
		request.respond(400, {"error": "the body must be a node object, or an array of 1 to %d of them" % MAX_NODES_PER_REQUEST})
		return null
	var made: Array = []
	for spec: Variant in specs:
		var result := _make(spec, root)
		if result.has("error"):
			for done: Dictionary in made:
				done.node.free()
			request.respond(400, {"error": "node %d: %s" % [made.size(), result.error]})
			return null
		made.append(result)
	var added: Array = []
	for done: Dictionary in made:
		_add_with_undo(done.node, done.parent, root)
		added.append({"name": String(done.node.name), "path": String(root.get_path_to(done.node))})
	return {"added": added}


## Makes the node `spec` describes, with its properties set: {node, parent} or {error}.
func _make(spec: Variant, root: Node) -> Dictionary:
	if not spec is Dictionary:
		return {"error": "not a JSON object"}
	var parent_path := String(spec.get("parent", "."))
	var parent := root if parent_path in [".", ""] else root.get_node_or_null(NodePath(parent_path))
	if parent == null or (parent != root and parent.owner != root):
		return {"error": "no node '%s' in the edited scene" % parent_path}
	var node: Node
	if spec.has("scene"):
		var path := String(spec.scene)
		if not path.begins_with("res://") or not ResourceLoader.exists(path, "PackedScene"):
			return {"error": "no scene '%s'" % path}
		var packed := load(path) as PackedScene
		if packed == null or not packed.can_instantiate():
			return {"error": "'%s' cannot be instanced" % path}
		node = packed.instantiate(PackedScene.GEN_EDIT_STATE_INSTANCE)
	elif spec.has("class"):
		var cls := String(spec.get("class"))
		if not ClassDB.class_exists(cls) or not ClassDB.can_instantiate(cls) or not ClassDB.is_parent_class(cls, "Node"):
			return {"error": "'%s' is not a node class that can be made" % cls}
		node = ClassDB.instantiate(cls)
	else:
		return {"error": "give \"scene\" (a res:// path) or \"class\""}
	var name := String(spec.get("name", "")).validate_node_name()
	if not name.is_empty():
		node.name = name
	var properties: Variant = spec.get("properties", {})
	if not properties is Dictionary:
		node.free()
		return {"error": "\"properties\" must be an object"}
	for key: Variant in properties:
		var problem := _set_property(node, String(key), properties[key])
		if not problem.is_empty():
			node.free()
			return {"error": problem}
	return {"node": node, "parent": parent}


## Sets `node`'s property `property` from the JSON `value`; returns what was wrong, or "".
func _set_property(node: Node, property: String, value: Variant) -> String:
	var info := {}
	for candidate in node.get_property_list():
		if candidate.name == property and candidate.usage & PROPERTY_USAGE_EDITOR:
			info = candidate
	if info.is_empty() or property == "script":
		return "%s has no property '%s' that can be set" % [node.get_class(), property]
	var type: int = info.type
	var converted: Variant = value
	if type == TYPE_OBJECT:
		if not (value is String and value.begins_with("res://") and ResourceLoader.exists(value)):
			return "'%s' takes a resource path (res://...)" % property
		converted = load(value)
	elif value is Array and type in VECTOR_TYPES:
		converted = _vector(value, type)
	elif value is String and type not in [TYPE_STRING, TYPE_STRING_NAME, TYPE_NODE_PATH]:
		# A Godot literal ("Vector3(1, 2, 3)"); never an object, which would run its script.
		converted = null if "Object(" in value or "Resource(" in value else str_to_var(value)
	elif typeof(value) != type:
		converted = type_convert(value, type)
	if typeof(converted) != type and not (type == TYPE_NIL or converted is Object):
		return "'%s' takes a %s, not %s" % [property, type_string(type), JSON.stringify(value)]
	node.set(property, converted)
	return ""


## A vector or colour of `type` from an array of numbers, or null.
func _vector(numbers: Array, type: int) -> Variant:
	for n: Variant in numbers:
		if not (n is float or n is int):
			return null
	var f := func(i: int) -> float: return float(numbers[i]) if i < numbers.size() else 0.0
	match [type, numbers.size()]:
		[TYPE_VECTOR2, 2], [TYPE_VECTOR2I, 2]:
			return type_convert(Vector2(f.call(0), f.call(1)), type)
		[TYPE_VECTOR3, 3], [TYPE_VECTOR3I, 3]:
			return type_convert(Vector3(f.call(0), f.call(1), f.call(2)), type)
		[TYPE_VECTOR4, 4], [TYPE_VECTOR4I, 4]:
			return type_convert(Vector4(f.call(0), f.call(1), f.call(2), f.call(3)), type)
		[TYPE_COLOR, 3], [TYPE_COLOR, 4]:
			return Color(f.call(0), f.call(1), f.call(2), f.call(3) if numbers.size() == 4 else 1.0)
	return null


## Adds `node` under `parent` as one undo step, owned by the scene root so that it is saved.
func _add_with_undo(node: Node, parent: Node, root: Node) -> void:
	var undo := EditorInterface.get_editor_undo_redo()
	undo.create_action("Add \"%s\" over HTTP" % node.name, UndoRedo.MERGE_DISABLE, root)
	undo.add_do_method(parent, "add_child", node, true)
	undo.add_do_method(node, "set_owner", root)
	undo.add_do_reference(node)
	undo.add_undo_method(parent, "remove_child", node)
	undo.commit_action()


# --- WebSocket /events -----------------------------------------------------------------------------

func _send_event(event: Dictionary) -> void:
	if server.state == HttpServer.LISTENING:
		server.broadcast_text(EVENTS_PATH, JSON.stringify(event))


func _on_selection_changed() -> void:
	var root := EditorInterface.get_edited_scene_root()
	var paths: Array = []
	for node in EditorInterface.get_selection().get_selected_nodes():
		if root and (node == root or root.is_ancestor_of(node)):
			paths.append(String(root.get_path_to(node)))
	_send_event({"event": "selection_changed", "nodes": paths})


func _on_scene_changed(root: Node) -> void:
	_send_event({"event": "scene_changed", "scene": root.scene_file_path if root else ""})


func _on_history_changed() -> void:
	var root := EditorInterface.get_edited_scene_root()
	if root == null:
		return
	var undo := EditorInterface.get_editor_undo_redo()
	var history := undo.get_history_undo_redo(undo.get_object_history_id(root))
	_send_event({"event": "scene_edited", "scene": root.scene_file_path, "version": history.get_version(),
		"action": history.get_current_action_name()})
