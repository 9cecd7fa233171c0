class_name Sparkline
extends Control
## A small line chart of the last `capacity` samples, scaled to the largest one.

@export var capacity := 120
@export var color := Color(0.239, 0.839, 0.776)

var _samples: PackedFloat32Array = []


func push(value: float) -> void:
	_samples.append(value)
	if _samples.size() > capacity:
		_samples = _samples.slice(_samples.size() - capacity)
	queue_redraw()


func _draw() -> void:
	var rect := Rect2(Vector2.ZERO, size)
	draw_rect(rect, Color(0.071, 0.086, 0.114), true)
	if _samples.size() < 2:
		return
	var top := 1.0
	for value in _samples:
		top = maxf(top, value)
	var step := size.x / float(capacity - 1)
	var start := capacity - _samples.size()
	var points := PackedVector2Array()
	for i in _samples.size():
		var y := size.y - 3.0 - (size.y - 6.0) * _samples[i] / top
		points.append(Vector2((start + i) * step, y))
	var fill := points.duplicate()
	fill.append(Vector2(points[-1].x, size.y))
	fill.append(Vector2(points[0].x, size.y))
	draw_colored_polygon(fill, Color(color, 0.15))
	draw_polyline(points, color, 1.5, true)
