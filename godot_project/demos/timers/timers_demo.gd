extends Control
## The tutorial's first example: two timers running at once on the AsyncHub
## runtime, and a button that cancels every task.

@onready var _log: RichTextLabel = %Log
@onready var _tasks_label: Label = %TasksLabel


func _ready() -> void:
	%StartButton.pressed.connect(start_timers)
	%CancelButton.pressed.connect(cancel_all)
	start_timers()


func start_timers() -> void:
	for seconds in [1, 3]:
		var ticker := AsyncHub.interval(seconds)
		ticker.ticked.connect(func(_count: int) -> void: _say("%d seconds elapsed" % seconds))
		ticker.cancelled.connect(func() -> void: _say("the %d-second timer was cancelled" % seconds))
	_say("started a 1-second and a 3-second timer")


func cancel_all() -> void:
	var count := AsyncHub.cancel_all()
	_say("cancel_all() cancelled %d task(s)" % count)


func _process(_delta: float) -> void:
	_tasks_label.text = "tasks: %d   step: %.1f µs" % [
		AsyncHub.task_count(),
		Performance.get_custom_monitor(&"async_net/step_usec"),
	]


func _say(text: String) -> void:
	DemoRunner.log_line("[timers] " + text)
	_log.append_text(text + "\n")
