extends Control
## Demo launcher: one button per demo found under res://demos (a folder each,
## its scene named *_demo.tscn). `-- --demo=NAME` opens one directly. With no
## display, every demo runs at once and prints what happens.

const DEMOS_DIR := "res://demos"

var _demo: Node
var _back: CanvasLayer

@onready var _menu: Control = %Menu
@onready var _buttons: VBoxContainer = %Buttons


func _ready() -> void:
	var demos := find_demos()
	var wanted := _wanted_demo()
	if not wanted.is_empty():
		demos = demos.filter(func(path: String) -> bool: return path.get_file().begins_with(wanted))
	if DemoRunner.headless:
		_menu.hide()
		DemoRunner.log_line("running %d demo(s) headless: %s" % [demos.size(), ", ".join(demos.map(_title))])
		for path in demos:
			add_child(load(path).instantiate())
		return
	for path in demos:
		var button := Button.new()
		button.text = _title(path)
		button.custom_minimum_size = Vector2(320, 48)
		button.pressed.connect(open_demo.bind(path))
		_buttons.add_child(button)
	if demos.size() == 1 and not wanted.is_empty():
		open_demo(demos[0])


## The demo scenes, sorted by folder name.
static func find_demos() -> Array[String]:
	var found: Array[String] = []
	for folder in DirAccess.get_directories_at(DEMOS_DIR):
		for file in DirAccess.get_files_at(DEMOS_DIR.path_join(folder)):
			# Exported projects list scenes as *.tscn.remap.
			var scene := file.trim_suffix(".remap")
			if scene.ends_with("_demo.tscn") and not found.has(DEMOS_DIR.path_join(folder).path_join(scene)):
				found.append(DEMOS_DIR.path_join(folder).path_join(scene))
	found.sort()
	return found


func open_demo(path: String) -> void:
	close_demo()
	_menu.hide()
	_demo = load(path).instantiate()
	add_child(_demo)
	_back = CanvasLayer.new()
	_back.layer = 100
	var button := Button.new()
	button.text = "‹ Back to demos"
	button.position = Vector2(get_viewport_rect().size.x - 200, 16)
	button.pressed.connect(close_demo)
	_back.add_child(button)
	add_child(_back)


func close_demo() -> void:
	if _demo:
		_demo.queue_free()
		_back.queue_free()
		_demo = null
		_back = null
	_menu.show()


static func _title(path: String) -> String:
	return path.get_file().trim_suffix("_demo.tscn").capitalize()


static func _wanted_demo() -> String:
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--demo="):
			return arg.trim_prefix("--demo=")
	return ""
