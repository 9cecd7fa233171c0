@tool
extends EditorPlugin
## Enables the Async Net plugin the way the Plugins tab of the Project Settings does
## (EditorInterface.set_plugin_enabled runs its `_enable_plugin`, which registers the AsyncHub
## autoload and saves project.godot), disables it once (its `_disable_plugin` must remove the
## autoload again, from the settings and from project.godot), enables it again, waits until the
## editor has saved the plugin list too (it does so on a timer), prints the results and quits.

const ASYNC_NET := "res://addons/async_net/plugin.cfg"
const AUTOLOAD := "autoload/AsyncHub"
const AUTOLOAD_LINE := "AsyncHub=\"*res://addons/async_net/async_hub.tscn\""


func _enter_tree() -> void:
	_enable.call_deferred()


func _enable() -> void:
	EditorInterface.set_plugin_enabled(ASYNC_NET, true)
	if not EditorInterface.is_plugin_enabled(ASYNC_NET):
		print("async_net plugin enabled: false (see the errors above)")
		get_tree().quit(1)
		return
	await _until(func(): return _saved().contains(AUTOLOAD_LINE))

	EditorInterface.set_plugin_enabled(ASYNC_NET, false)
	await _until(func(): return not _saved().contains(AUTOLOAD_LINE))
	var removed := not ProjectSettings.has_setting(AUTOLOAD) and not _saved().contains(AUTOLOAD_LINE)
	print("async_net plugin disabled: autoload removed: %s" % removed)

	EditorInterface.set_plugin_enabled(ASYNC_NET, true)
	await _until(func(): return _saved().contains(ASYNC_NET) and _saved().contains(AUTOLOAD_LINE))
	var enabled := EditorInterface.is_plugin_enabled(ASYNC_NET)
	var autoload: String = ProjectSettings.get_setting(AUTOLOAD, "")
	print("async_net plugin enabled: %s; autoload/AsyncHub = %s" % [enabled, autoload])
	get_tree().quit(0 if enabled and removed and not autoload.is_empty() else 1)


## What project.godot holds on disk now.
func _saved() -> String:
	return FileAccess.get_file_as_string("res://project.godot")


## Waits (at most 30 s) until `condition` holds.
func _until(condition: Callable) -> void:
	var deadline := Time.get_ticks_msec() + 30000
	while not condition.call() and Time.get_ticks_msec() < deadline:
		await get_tree().create_timer(0.1).timeout
