extends Node
## Demo-wide helpers: `--seconds=N` (after `--` on the command line) quits the
## demo after N seconds, and `log_line()` prints with a timestamp so the
## headless run reads like a transcript.

var seconds_limit := 0.0
var headless := DisplayServer.get_name() == "headless"


func _ready() -> void:
	process_mode = Node.PROCESS_MODE_ALWAYS
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--seconds="):
			seconds_limit = arg.trim_prefix("--seconds=").to_float()
	if seconds_limit > 0.0:
		get_tree().create_timer(seconds_limit, true, false, true).timeout.connect(_on_time_up)


func log_line(text: String) -> void:
	print("[%7.3f s] %s" % [Time.get_ticks_msec() / 1000.0, text])


func _on_time_up() -> void:
	log_line("demo ran for %s s, quitting" % seconds_limit)
	get_tree().quit()
