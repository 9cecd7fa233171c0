## PLACEHOLDER benchmark scene: prints one FAKE row so `cargo xtask bench` can be tried end to
## end. Replace it with the real benchmarks.
##
## Protocol: print one line `BENCH {json}` per metric, json = {"metric": String, "unit": String,
## "ours": float, "baseline": float, "baseline_name": String, "lower_is_better": bool}, then quit
## with exit code 0. User arguments (after `--`) are the ones given to `cargo xtask bench -- ...`.
extends Node


func _ready() -> void:
	var row := {
		"metric": "placeholder (FAKE numbers, replace bench_main.gd)",
		"unit": "us/frame",
		"ours": 1.0,
		"baseline": 2.0,
		"baseline_name": "nothing",
		"lower_is_better": true,
	}
	print("BENCH " + JSON.stringify(row))
	get_tree().quit(0)
