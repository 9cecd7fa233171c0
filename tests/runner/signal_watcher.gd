## Records the emissions of one signal of one object, with their arguments.
## Made by test_case.gd's watch(); lives as long as the test.
extends RefCounted

## Emitted after each recorded emission, with its arguments.
signal recorded(args: Array)

## The watched signal.
var signal_name: StringName
## Arguments of every emission so far, oldest first.
var emissions: Array[Array] = []


func _init(object: Object, watched_signal: StringName) -> void:
	signal_name = watched_signal
	if object != null:
		object.connect(watched_signal, _on_emitted)


func _on_emitted(...args: Array) -> void:
	emissions.append(args)
	recorded.emit(args)


## Number of emissions so far.
func count() -> int:
	return emissions.size()


## Arguments of emission `index` (negative counts from the end); [] when there is none.
func args(index := -1) -> Array:
	if index < -emissions.size() or index >= emissions.size():
		return []
	return emissions[index]


## Forgets the emissions recorded so far.
func clear() -> void:
	emissions.clear()


## Waits until the signal was emitted `total` times in all (default: once more than now);
## returns false if `timeout_sec` of real time passed first.
func wait(timeout_sec := 5.0, total := -1) -> bool:
	if total < 0:
		total = emissions.size() + 1
	var tree := Engine.get_main_loop() as SceneTree
	var deadline := Time.get_ticks_msec() + int(timeout_sec * 1000.0)
	while emissions.size() < total:
		if Time.get_ticks_msec() >= deadline:
			return false
		await tree.process_frame
	return true
