extends DemoScreen
## The tutorial's first example: two timers running at once on the AsyncHub
## runtime, and a button that cancels every task. Each tile counts its ticks
## and fills up towards the next one.

const INFO := {
	"order": 1,
	"title": "Timers",
	"summary": "Two intervals tick side by side on the one runtime AsyncHub steps every frame.",
	"classes": "AsyncHub · AsyncTask",
	"tag": "timers",
}

const PERIODS := [1, 3]

## Per period: {ticks: int, last_msec: int, running: bool}.
var _timers := {}
## The intervals this demo started (the hub owns them: cancelled when the demo closes).
var _tickers: Array[AsyncTask] = []

@onready var _tiles := {1: %OneSecond, 3: %ThreeSeconds}


func _ready() -> void:
	super()
	%StartButton.pressed.connect(start_timers)
	%CancelButton.pressed.connect(cancel_all)
	start_timers()


func start_timers() -> void:
	for seconds in PERIODS:
		var state := {"ticks": 0, "last_msec": Time.get_ticks_msec(), "running": true}
		_timers[seconds] = state
		var ticker := AsyncHub.interval(seconds)
		_tickers.append(ticker)
		ticker.ticked.connect(func(count: int) -> void:
			state.ticks = count
			state.last_msec = Time.get_ticks_msec()
			say("%d seconds elapsed" % seconds))
		ticker.cancelled.connect(func() -> void:
			state.running = false
			say("the %d-second timer was cancelled" % seconds))
	say("started a 1-second and a 3-second timer")


func cancel_all() -> void:
	var count := AsyncHub.cancel_all()
	say("cancel_all() cancelled %d task(s)" % count)


func _exit_tree() -> void:
	for ticker in _tickers:
		ticker.cancel()


func has_live_data() -> bool:
	return _timers.get(3, {}).get("ticks", 0) >= 1


func _process(_delta: float) -> void:
	for seconds in PERIODS:
		var state: Dictionary = _timers.get(seconds, {})
		var tile: Control = _tiles[seconds]
		var ticks: int = state.get("ticks", 0)
		tile.get_node("Column/Count").text = "%d tick%s" % [ticks, "" if ticks == 1 else "s"]
		var bar: ProgressBar = tile.get_node("Column/Next")
		if state.get("running", false):
			bar.value = clampf((Time.get_ticks_msec() - state.last_msec) / (seconds * 1000.0), 0.0, 1.0)
			tile.get_node("Column/Note").text = "next tick in %.1f s" % (seconds * (1.0 - bar.value))
		else:
			bar.value = 0.0
			tile.get_node("Column/Note").text = "cancelled"
