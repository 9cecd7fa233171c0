class_name StatusPanel
extends PanelContainer
## The status panel every demo shows: the AsyncHub monitors (task count, the
## time of the last runtime step, a chart of it, the longest single task poll
## of the last second and whose it was), the tasks the hub runs, and
## for each watched node its state (names from the class constants, updated
## on `state_changed`, when it has one) and a few of its `get_stats()` numbers.

const STATE_NAMES := ["STOPPED", "CONNECTING", "CONNECTED", "LISTENING", "RECONNECTING", "FAILED"]
const STATE_COLORS := {
	"STOPPED": Color(0.545, 0.576, 0.655),
	"CONNECTING": Color(0.96, 0.725, 0.259),
	"RECONNECTING": Color(0.96, 0.725, 0.259),
	"CONNECTED": Color(0.298, 0.851, 0.482),
	"LISTENING": Color(0.298, 0.851, 0.482),
	"FAILED": Color(0.937, 0.357, 0.357),
}
const MAX_TASKS_SHOWN := 4
## The longest poll shown is that of the last whole second (one frame's would flicker).
const SLOWEST_HOLD_MSEC := 1000

## The monitor values: task count, last step time, frames per second.
@onready var _monitors := {"tasks": %Tasks, "step": %Step, "fps": %Fps, "slowest": %Slowest, "slowest_key": %SlowestKey}
@onready var _chart: Sparkline = %Chart
@onready var _task_list: Label = %TaskList
@onready var _nodes: VBoxContainer = %Nodes
@onready var _nodes_section: Control = %NodesSection

## One entry per watched node: {node, values: {stat key: Label}, state: Label, names}.
var _watched: Array[Dictionary] = []
## The longest poll of the second in progress (AsyncHub.get_slowest_task()), and when it ends.
var _slowest := {}
var _slowest_until := 0


func _ready() -> void:
	_nodes_section.visible = false


## Shows `node`'s state and the `get_stats()` values named in `keys`.
func watch(node: Node, keys: PackedStringArray = []) -> void:
	var row := VBoxContainer.new()
	row.add_theme_constant_override("separation", 6)
	var head := HBoxContainer.new()
	var name_label := Label.new()
	name_label.text = node.get_class()
	name_label.theme_type_variation = &"Value"
	name_label.size_flags_horizontal = Control.SIZE_EXPAND_FILL
	var state := Label.new()
	state.theme_type_variation = &"Pill"
	head.add_child(name_label)
	head.add_child(state)
	var stats := GridContainer.new()
	stats.columns = 2
	stats.add_theme_constant_override("h_separation", 16)
	stats.add_theme_constant_override("v_separation", 2)
	var values := {}
	for key in keys:
		var key_label := Label.new()
		key_label.theme_type_variation = &"Muted"
		key_label.text = key.capitalize().replace("Sec", "(s)")
		key_label.size_flags_horizontal = Control.SIZE_EXPAND_FILL
		var value := Label.new()
		value.theme_type_variation = &"Value"
		value.horizontal_alignment = HORIZONTAL_ALIGNMENT_RIGHT
		stats.add_child(key_label)
		stats.add_child(value)
		values[key] = value
	row.add_child(head)
	row.add_child(stats)
	_nodes.add_child(row)
	_nodes_section.visible = true
	var entry := {"node": node, "values": values, "state": state, "names": state_names(node)}
	_watched.append(entry)
	# A node without a connection of its own (HttpSession: one per request) has no state to show.
	state.visible = node.has_signal(&"state_changed")
	if state.visible:
		node.state_changed.connect(func(_state: int) -> void: _show_state(entry))
		_show_state(entry)


## Maps each state value of `node`'s class to its constant name (CONNECTED, ...).
static func state_names(node: Object) -> Dictionary:
	var names := {}
	for name in STATE_NAMES:
		if ClassDB.class_has_integer_constant(node.get_class(), name):
			names[ClassDB.class_get_integer_constant(node.get_class(), name)] = name
	return names


func _show_state(entry: Dictionary) -> void:
	var node: Node = entry.node
	if not is_instance_valid(node):
		return
	var name: String = entry.names.get(node.state, "?")
	var label: Label = entry.state
	label.text = name
	var color: Color = STATE_COLORS.get(name, Color.WHITE)
	label.add_theme_color_override("font_color", color)
	var pill := (label.get_theme_stylebox("normal") as StyleBoxFlat).duplicate() as StyleBoxFlat
	pill.bg_color = Color(color, 0.14)
	label.add_theme_stylebox_override("normal", pill)


func _process(_delta: float) -> void:
	var step := float(Performance.get_custom_monitor(&"async_net/step_usec"))
	_monitors.tasks.text = str(AsyncHub.task_count())
	_monitors.step.text = "%.1f µs" % step
	_monitors.fps.text = "%d" % Engine.get_frames_per_second()
	_chart.push(step)
	_show_slowest(AsyncHub.get_slowest_task())
	var lines: PackedStringArray = []
	var tasks := AsyncHub.tasks()
	for task in tasks.slice(0, MAX_TASKS_SHOWN):
		lines.append("%s  ·  %.0f s" % [task.name, task.age_sec])
	if tasks.size() > MAX_TASKS_SHOWN:
		lines.append("… and %d more" % (tasks.size() - MAX_TASKS_SHOWN))
	_task_list.text = "\n".join(lines) if not lines.is_empty() else "no tasks"
	for entry in _watched:
		if not is_instance_valid(entry.node):
			continue
		var stats: Dictionary = entry.node.get_stats()
		for key in entry.values:
			entry.values[key].text = _number(stats.get(key, 0))


## Shows the longest task poll of the last whole second: a step ends only between polls, so
## this is the work that decides how far a frame's step can run past its budget.
func _show_slowest(frame: Dictionary) -> void:
	if frame.get("usec", 0.0) > _slowest.get("usec", -1.0):
		_slowest = frame
	var now := Time.get_ticks_msec()
	if now < _slowest_until:
		return
	_slowest_until = now + SLOWEST_HOLD_MSEC
	if _slowest.is_empty():
		_monitors.slowest_key.text = "Longest poll"
		_monitors.slowest_key.tooltip_text = ""
		_monitors.slowest.text = "–"
	else:
		_monitors.slowest_key.text = "Longest poll · %s" % _slowest.task
		_monitors.slowest_key.tooltip_text = "%s of %s" % [_slowest.task, _slowest.owner]
		_monitors.slowest.text = "%.0f µs" % _slowest.usec
	_slowest = {}


static func _number(value: Variant) -> String:
	if value is float:
		return "%.1f" % value
	return str(value)
