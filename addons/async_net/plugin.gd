@tool
extends EditorPlugin
## Async Net: registers the AsyncHub autoload that steps the shared network runtime.

const AUTOLOAD_NAME := "AsyncHub"
const AUTOLOAD_PATH := "res://addons/async_net/async_hub.tscn"
const AUTOLOAD_SETTING := "autoload/" + AUTOLOAD_NAME


func _enable_plugin() -> void:
	# The autoload shares its name with the AsyncHub class on purpose: GDScript
	# resolves `AsyncHub` through the extension's engine singleton of that name,
	# and at run time the autoload takes that global's place. The Autoload
	# dialog refuses names that match a class, so the setting is written here.
	ProjectSettings.set_setting(AUTOLOAD_SETTING, "*" + AUTOLOAD_PATH)
	ProjectSettings.save()


func _disable_plugin() -> void:
	if ProjectSettings.has_setting(AUTOLOAD_SETTING):
		ProjectSettings.set_setting(AUTOLOAD_SETTING, null)
		ProjectSettings.save()
