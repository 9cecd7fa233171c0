@tool
extends EditorPlugin
## Enables the Async Net plugin the way the Plugins tab of the Project Settings does
## (EditorInterface.set_plugin_enabled runs its `_enable_plugin`, which registers the AsyncHub
## autoload and saves project.godot), waits until the editor has saved the plugin list too (it
## does so on a timer), prints the result and quits.

const ASYNC_NET := "res://addons/async_net/plugin.cfg"


func _enter_tree() -> void:
	_enable.call_deferred()


func _enable() -> void:
	EditorInterface.set_plugin_enabled(ASYNC_NET, true)
	if not EditorInterface.is_plugin_enabled(ASYNC_NET):
		print("async_net plugin enabled: false (see the errors above)")
		get_tree().quit(1)
		return
	var deadline := Time.get_ticks_msec() + 30000
	while not FileAccess.get_file_as_string("res://project.godot").contains(ASYNC_NET):
		if Time.get_ticks_msec() > deadline:
			break
		await get_tree().create_timer(0.1).timeout
	var enabled := EditorInterface.is_plugin_enabled(ASYNC_NET)
	var autoload: String = ProjectSettings.get_setting("autoload/AsyncHub", "")
	print("async_net plugin enabled: %s; autoload/AsyncHub = %s" % [enabled, autoload])
	get_tree().quit(0 if enabled and not autoload.is_empty() else 1)
