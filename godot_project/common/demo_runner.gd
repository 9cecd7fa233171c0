extends Node
## Demo-wide helpers (autoload `DemoRunner`). User arguments (after `--`):
## `--seconds=N` quits after N seconds; `--screenshots=DIR` tours the menu and
## every demo in a window and saves one PNG each into DIR (see main.gd);
## `--autoplay` makes the demos feed themselves sample traffic, as they always
## do headless. `log_line()` prints with a timestamp so a headless run reads
## like a transcript.

## The Back button of a demo asks for the menu; main.gd answers.
signal back_requested

var seconds_limit := 0.0
var headless := DisplayServer.get_name() == "headless"
## Where `--screenshots=DIR` saves PNGs ("" when not taking screenshots).
var screenshot_dir := ""
## Whether the demos generate their own traffic (headless, screenshots, `--autoplay`).
var autoplay := headless


func _ready() -> void:
	process_mode = Node.PROCESS_MODE_ALWAYS
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--seconds="):
			seconds_limit = arg.trim_prefix("--seconds=").to_float()
		elif arg.begins_with("--screenshots="):
			screenshot_dir = arg.trim_prefix("--screenshots=")
			autoplay = true
		elif arg == "--autoplay":
			autoplay = true
	if seconds_limit > 0.0:
		get_tree().create_timer(seconds_limit, true, false, true).timeout.connect(_on_time_up)


func log_line(text: String) -> void:
	print("[%7.3f s] %s" % [Time.get_ticks_msec() / 1000.0, text])


## Back to the menu: main.gd listens; a demo scene run on its own (F6) changes to the main scene.
func back_to_menu() -> void:
	if back_requested.get_connections().is_empty():
		get_tree().change_scene_to_file(ProjectSettings.get_setting("application/run/main_scene"))
	else:
		back_requested.emit()


func _on_time_up() -> void:
	log_line("demo ran for %s s, quitting" % seconds_limit)
	get_tree().quit()
