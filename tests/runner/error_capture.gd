## Collects the engine's error reports (script errors, push_error, Rust panics) so the runner
## can attribute them to the test that was running. Called from any thread.
extends Logger

var _mutex := Mutex.new()
var _entries: Array[Dictionary] = []
# Errors logged so far: the sequence number the next one gets.
var _logged := 0


func _log_error(function: String, file: String, line: int, code: String, rationale: String,
		_editor_notify: bool, error_type: int, _script_backtraces: Array[ScriptBacktrace]) -> void:
	var entry := {
		"type": error_type,
		"message": rationale if not rationale.is_empty() else code,
		"where": "%s:%d (%s)" % [file, line, function],
	}
	_mutex.lock()
	entry.seq = _logged
	_logged += 1
	_entries.append(entry)
	_mutex.unlock()


## The sequence number the next error will get: an expectation made now covers errors from it on.
func next_seq() -> int:
	_mutex.lock()
	var seq := _logged
	_mutex.unlock()
	return seq


## Copy of the entries collected since the last take(): {type: Logger.ErrorType, message, where,
## seq (0, 1, 2, ... in the order they were logged)}.
func snapshot() -> Array[Dictionary]:
	_mutex.lock()
	var copy := _entries.duplicate(true)
	_mutex.unlock()
	return copy


## Returns the entries collected so far and forgets them.
func take() -> Array[Dictionary]:
	_mutex.lock()
	var taken := _entries
	_entries = []
	_mutex.unlock()
	return taken


## Returns the entries numbered `first` and later and forgets them; earlier ones stay.
func take_since(first: int) -> Array[Dictionary]:
	_mutex.lock()
	var taken: Array[Dictionary] = []
	var kept: Array[Dictionary] = []
	for entry in _entries:
		if entry.seq >= first:
			taken.append(entry)
		else:
			kept.append(entry)
	_entries = kept
	_mutex.unlock()
	return taken


## Whether an entry is a Rust panic report (gdext prints `[panic file:line]`).
static func is_panic(entry: Dictionary) -> bool:
	var message: String = entry.message
	return message.contains("[panic") or message.contains("panicked at")
