class_name DemoScreen
extends Control
## The frame every demo scene inherits (demo_screen.tscn): a header with the
## Back button, the demo's title and a one-line summary; the demo's own content
## in `%Content`; the status panel on the right. A demo script extends this,
## declares its `INFO`, calls `status.watch(node, stat_keys)` for its
## network nodes, reports with `say()` and overrides `has_live_data()`.

## Lines kept in the log view.
const MAX_LOG_LINES := 500
## Colours of log lines: what the demo sent, what came back, what went wrong.
const SENT_COLOR := Color(0.545, 0.576, 0.655)
const RECEIVED_COLOR := Color(0.239, 0.839, 0.776)
const ERROR_COLOR := Color(0.937, 0.357, 0.357)
const TIME_COLOR := Color(0.4, 0.43, 0.5)

## What the menu and the header show, from the demo script's `INFO` constant: `order` (the
## menu follows the tutorial's order), `title`, `summary`, `classes` (the node classes it
## shows) and `tag` (console lines read "[tag] ..."). main.gd reads it from the script alone,
## without loading the scene and its resources.
var info: Dictionary = info_of(get_script())
var _opened_msec := Time.get_ticks_msec()

@onready var status: StatusPanel = %StatusPanel
## The demo's log card, when it has one (a RichTextLabel with the unique name Log).
@onready var log_view: RichTextLabel = get_node_or_null("%Log")


func _ready() -> void:
	%Title.text = info.get("title", name)
	%Summary.text = info.get("summary", "")
	%Back.pressed.connect(DemoRunner.back_to_menu)


## Escape (ui_cancel) goes back to the menu, like the Back button.
func _unhandled_input(event: InputEvent) -> void:
	if event.is_action_pressed(&"ui_cancel"):
		get_viewport().set_input_as_handled()
		DemoRunner.back_to_menu()


## The `INFO` constant of a demo script ({} when it has none).
static func info_of(script: Script) -> Dictionary:
	return script.get_script_constant_map().get("INFO", {}) if script else {}


## Whether the demo shows live network data yet (the screenshot tour waits for it).
func has_live_data() -> bool:
	return false


## Prints a line to the console transcript with the demo's tag, e.g. "[radio] started",
## and appends it to the log view (as plain text: network data is never parsed as BBCode),
## in `color` when one is given.
func say(text: String, color := Color.TRANSPARENT) -> void:
	DemoRunner.log_line("[%s] %s" % [info.get("tag", name), text])
	if not log_view:
		return
	if log_view.get_paragraph_count() > 1 or not log_view.get_parsed_text().is_empty():
		log_view.newline()
	log_view.push_color(TIME_COLOR)
	log_view.add_text("%6.1f s  " % ((Time.get_ticks_msec() - _opened_msec) / 1000.0))
	log_view.pop()
	if color.a > 0.0:
		log_view.push_color(color)
	log_view.add_text(text)
	if color.a > 0.0:
		log_view.pop()
	while log_view.get_paragraph_count() > MAX_LOG_LINES:
		log_view.remove_paragraph(0)
