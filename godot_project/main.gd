extends Control
## Demo launcher: one card per demo found under res://demos (a folder each, its
## scene named *_demo.tscn, inheriting res://common/demo_screen.tscn; the `INFO`
## of its script, *_demo.gd beside it, fills the card).
##
## User arguments (after `--`): `--demo=NAME` opens one demo directly (with no
## display: runs only that one). With no display every demo runs at once and
## prints what happens. `--screenshots=DIR` tours the menu and each demo in
## turn, waits until the demo shows live data, saves DIR/<name>.png and quits
## (exit code 1 when a demo never showed live data).

const DEMOS_DIR := "res://demos"
## How long the screenshot tour waits for a demo to show live data.
const LIVE_LIMIT_MSEC := 30000
## How long the tour lets a screen settle (layout, fades, a few more messages) before grabbing it.
const SETTLE_SEC := 1.5

var _demo: Node

@onready var _menu: Control = %Menu
@onready var _cards: GridContainer = %Cards
@onready var _hub: Label = %HubLine


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
	DemoRunner.back_requested.connect(close_demo)
	for path in demos:
		_cards.add_child(_card(path))
	_cards.move_child(%RunCard, -1)
	%Engine.text = "Godot %s  ·  %s" % [Engine.get_version_info().string, RenderingServer.get_video_adapter_name()]
	if not DemoRunner.screenshot_dir.is_empty():
		_screenshot_tour(demos)
	elif demos.size() == 1 and not wanted.is_empty():
		open_demo(demos[0])
	elif _cards.get_child_count() > 0:
		(_cards.get_child(0) as Control).grab_focus.call_deferred()


## The demo scenes, in menu order (`INFO.order` of each demo script, then folder name).
static func find_demos() -> Array[String]:
	var found: Array[String] = []
	for folder in DirAccess.get_directories_at(DEMOS_DIR):
		for file in DirAccess.get_files_at(DEMOS_DIR.path_join(folder)):
			# Exported projects list scenes as *.tscn.remap.
			var scene := file.trim_suffix(".remap")
			if scene.ends_with("_demo.tscn") and not found.has(DEMOS_DIR.path_join(folder).path_join(scene)):
				found.append(DEMOS_DIR.path_join(folder).path_join(scene))
	found.sort_custom(func(a: String, b: String) -> bool:
		var order_a: int = info_of(a).get("order", 0)
		var order_b: int = info_of(b).get("order", 0)
		return order_a < order_b if order_a != order_b else a < b)
	return found


## The `INFO` of the demo scene at `path`, read from its script (*_demo.gd beside it) without
## loading the scene: loading one only to read it would build its 3D resources for nothing.
static func info_of(path: String) -> Dictionary:
	var script := path.get_basename() + ".gd"
	return DemoScreen.info_of(load(script)) if ResourceLoader.exists(script) else {}


func open_demo(path: String) -> void:
	close_demo()
	_menu.hide()
	_demo = load(path).instantiate()
	add_child(_demo)


func close_demo() -> void:
	if _demo:
		_demo.queue_free()
		_demo = null
	_menu.show()
	if _cards.get_child_count() > 0:
		(_cards.get_child(0) as Control).grab_focus.call_deferred()


func _process(_delta: float) -> void:
	if _menu.visible:
		_hub.text = "AsyncHub  ·  %d task(s)  ·  last step %.1f µs" % [
			AsyncHub.task_count(), Performance.get_custom_monitor(&"async_net/step_usec")]


## A menu card: a button showing the demo's node classes, title and summary (its `INFO`).
func _card(path: String) -> Button:
	var card := Button.new()
	card.theme_type_variation = &"CardButton"
	card.custom_minimum_size = Vector2(0, 206)
	card.size_flags_horizontal = Control.SIZE_EXPAND_FILL
	card.pressed.connect(open_demo.bind(path))
	var margin := MarginContainer.new()
	margin.set_anchors_and_offsets_preset(Control.PRESET_FULL_RECT)
	for side in ["left", "right"]:
		margin.add_theme_constant_override("margin_" + side, 22)
	for side in ["top", "bottom"]:
		margin.add_theme_constant_override("margin_" + side, 18)
	margin.mouse_filter = Control.MOUSE_FILTER_IGNORE
	var column := VBoxContainer.new()
	column.add_theme_constant_override("separation", 6)
	column.mouse_filter = Control.MOUSE_FILTER_IGNORE
	var info := info_of(path)
	var texts := [
		[&"Section", String(info.get("classes", "")).to_upper()],
		[&"CardTitle", _title(path)],
		[&"Muted", info.get("summary", "")],
	]
	for pair in texts:
		var label := Label.new()
		label.theme_type_variation = pair[0]
		label.text = pair[1]
		label.autowrap_mode = TextServer.AUTOWRAP_WORD_SMART
		label.mouse_filter = Control.MOUSE_FILTER_IGNORE
		column.add_child(label)
	margin.add_child(column)
	card.add_child(margin)
	return card


## Shows the menu, then each demo until it has live data, saving a PNG of each; then quits.
func _screenshot_tour(demos: Array[String]) -> void:
	var dir := DemoRunner.screenshot_dir
	DirAccess.make_dir_recursive_absolute(dir)
	var not_live: PackedStringArray = []
	await get_tree().create_timer(SETTLE_SEC).timeout
	await _save_screenshot(dir.path_join("menu.png"))
	for path in demos:
		open_demo(path)
		var name := path.get_file().trim_suffix("_demo.tscn")
		var deadline := Time.get_ticks_msec() + LIVE_LIMIT_MSEC
		while not _demo.has_live_data() and Time.get_ticks_msec() < deadline:
			await get_tree().process_frame
		if not _demo.has_live_data():
			not_live.append(name)
			DemoRunner.log_line("SCREENSHOT-NOT-LIVE %s: no live data after %d s" % [name, LIVE_LIMIT_MSEC / 1000])
		await get_tree().create_timer(SETTLE_SEC).timeout
		await _save_screenshot(dir.path_join(name + ".png"))
		(_demo.get_node("%Back") as Button).pressed.emit()  # back to the menu the way a user goes
	await get_tree().process_frame  # let the last demo go (its viewports and sockets) before quitting
	get_tree().quit(1 if not not_live.is_empty() else 0)


func _save_screenshot(file: String) -> void:
	await RenderingServer.frame_post_draw
	var image := get_viewport().get_texture().get_image()
	image.convert(Image.FORMAT_RGB8)  # no alpha: smaller files
	var err := image.save_png(file)
	if err != OK:
		DemoRunner.log_line("SCREENSHOT-FAILED %s: %s" % [file, error_string(err)])
	else:
		DemoRunner.log_line("SCREENSHOT %s (%dx%d)" % [file, image.get_width(), image.get_height()])


## The demo's title (`INFO.title`, else made from the file name).
static func _title(path: String) -> String:
	return info_of(path).get("title", path.get_file().trim_suffix("_demo.tscn").capitalize())


static func _wanted_demo() -> String:
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--demo="):
			return arg.trim_prefix("--demo=")
	return ""
