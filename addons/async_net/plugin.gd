@tool
extends EditorPlugin
## Async Net: registers the AsyncHub autoload that steps the shared network
## runtime, and offers two editor tools (Project > Tools > Async Net): the
## editor spawner, a TcpSpawnerServer that spawns nodes into the scene being
## edited, one undo step each, so outside tools can build a level; and the
## editor server (editor_server.gd), an HttpServer through which outside
## programs read the edited scene, add nodes with undo and follow the
## selection.

const AUTOLOAD_NAME := "AsyncHub"
const AUTOLOAD_PATH := "res://addons/async_net/async_hub.tscn"
const AUTOLOAD_SETTING := "autoload/" + AUTOLOAD_NAME

const SETTING_HOST := "async_net/editor_spawner/host"
const SETTING_PORT := "async_net/editor_spawner/port"
const SETTING_SCENE := "async_net/editor_spawner/scene"
const SETTING_SERVER_HOST := "async_net/editor_server/host"
const SETTING_SERVER_PORT := "async_net/editor_server/port"
const SETTING_SERVER_TOKEN := "async_net/editor_server/token"
const MENU_NAME := "Async Net"
const MENU_SPAWNER_ID := 0
const MENU_SERVER_ID := 1
const EditorServer := preload("res://addons/async_net/editor_server.gd")

var _menu: PopupMenu
var _spawner: TcpSpawnerServer
var _editor_server: EditorServer


func _enable_plugin() -> void:
	# The autoload shares its name with the AsyncHub class on purpose: GDScript
	# resolves `AsyncHub` through the extension's engine singleton of that name,
	# and at run time the autoload takes that global's place. The Autoload
	# dialog refuses names that match a class, so the setting is written here.
	ProjectSettings.set_setting(AUTOLOAD_SETTING, "*" + AUTOLOAD_PATH)
	ProjectSettings.save()


func _disable_plugin() -> void:
	if ProjectSettings.has_setting(AUTOLOAD_SETTING):
		ProjectSettings.set_setting(AUTOLOAD_SETTING, null)
		ProjectSettings.save()


func _enter_tree() -> void:
	_add_setting(SETTING_HOST, "127.0.0.1", TYPE_STRING)
	_add_setting(SETTING_PORT, 8885, TYPE_INT, PROPERTY_HINT_RANGE, "0,65535")
	_add_setting(SETTING_SCENE, "", TYPE_STRING, PROPERTY_HINT_FILE, "*.tscn,*.scn")
	_add_setting(SETTING_SERVER_HOST, "127.0.0.1", TYPE_STRING)
	_add_setting(SETTING_SERVER_PORT, 8886, TYPE_INT, PROPERTY_HINT_RANGE, "0,65535")
	_add_setting(SETTING_SERVER_TOKEN, "", TYPE_STRING, PROPERTY_HINT_PASSWORD)
	_menu = PopupMenu.new()
	_menu.add_check_item("Spawn from TCP into the Edited Scene", MENU_SPAWNER_ID)
	_menu.set_item_tooltip(0, "Listens on %s / %s; each line a client sends spawns %s into the open scene." % [
		SETTING_HOST, SETTING_PORT, SETTING_SCENE])
	_menu.add_check_item("Serve the Editor over HTTP", MENU_SERVER_ID)
	_menu.set_item_tooltip(1, ("Listens on %s / %s (and requires %s when set): GET /scene, POST /nodes, "
		+ "WebSocket /events.") % [SETTING_SERVER_HOST, SETTING_SERVER_PORT, SETTING_SERVER_TOKEN])
	_menu.id_pressed.connect(_on_menu_id_pressed)
	add_tool_submenu_item(MENU_NAME, _menu)


func _exit_tree() -> void:
	set_editor_spawner_enabled(false)
	set_editor_server_enabled(false)
	remove_tool_menu_item(MENU_NAME)
	_menu = null


## Starts or stops the editor spawner (what the Tools menu toggles). It listens
## on the address in the project settings and spawns into the edited scene.
func set_editor_spawner_enabled(enabled: bool) -> void:
	if enabled == is_editor_spawner_enabled():
		return
	if enabled:
		_spawner = TcpSpawnerServer.new()
		_spawner.name = "EditorTcpSpawner"
		_spawner.autostart = false
		_spawner.spawn_into_edited_scene = true
		_spawner.host = ProjectSettings.get_setting(SETTING_HOST, "127.0.0.1")
		_spawner.port = ProjectSettings.get_setting(SETTING_PORT, 8885)
		var scene_path: String = ProjectSettings.get_setting(SETTING_SCENE, "")
		if not scene_path.is_empty():
			_spawner.scene = load(scene_path) as PackedScene
		_spawner.listening.connect(func(port: int) -> void:
			print("Async Net: lines sent to %s:%d spawn into the edited scene" % [_spawner.host, port]))
		add_child(_spawner)
		_spawner.start()
	else:
		# free(), not queue_free(): the port must be released now.
		_spawner.free()
		_spawner = null
	if _menu:
		_menu.set_item_checked(_menu.get_item_index(MENU_SPAWNER_ID), enabled)


func is_editor_spawner_enabled() -> bool:
	return _spawner != null


## The running editor spawner, or null.
func get_editor_spawner() -> TcpSpawnerServer:
	return _spawner


## Starts or stops the editor server (what the Tools menu toggles): an HttpServer on the address
## in the project settings that serves the edited scene (see editor_server.gd).
func set_editor_server_enabled(enabled: bool) -> void:
	if enabled == is_editor_server_enabled():
		return
	if enabled:
		_editor_server = EditorServer.new()
		_editor_server.name = "EditorHttpServer"
		_editor_server.configure(self, ProjectSettings.get_setting(SETTING_SERVER_HOST, "127.0.0.1"),
			ProjectSettings.get_setting(SETTING_SERVER_PORT, 8886), ProjectSettings.get_setting(SETTING_SERVER_TOKEN, ""))
		_editor_server.server.listening.connect(func(port: int) -> void:
			print("Async Net: the editor is served at http://%s:%d/scene" % [_editor_server.server.host, port]))
		add_child(_editor_server)
	else:
		# free(), not queue_free(): the port must be released now.
		_editor_server.free()
		_editor_server = null
	if _menu:
		_menu.set_item_checked(_menu.get_item_index(MENU_SERVER_ID), enabled)


func is_editor_server_enabled() -> bool:
	return _editor_server != null


## The running editor server's HttpServer, or null.
func get_editor_server() -> HttpServer:
	return _editor_server.server if _editor_server else null


func _on_menu_id_pressed(id: int) -> void:
	if id == MENU_SPAWNER_ID:
		set_editor_spawner_enabled(not is_editor_spawner_enabled())
	elif id == MENU_SERVER_ID:
		set_editor_server_enabled(not is_editor_server_enabled())


func _add_setting(name: String, default: Variant, type: int, hint := PROPERTY_HINT_NONE, hint_string := "") -> void:
	if not ProjectSettings.has_setting(name):
		ProjectSettings.set_setting(name, default)
	ProjectSettings.set_initial_value(name, default)
	ProjectSettings.add_property_info({"name": name, "type": type, "hint": hint, "hint_string": hint_string})
	ProjectSettings.set_as_basic(name, true)
