extends Node3D
## A spawned character: a capsule with its name floating above it. The TCP
## spawner and the dashboard demos place theirs with `spiral_spot()`.

@onready var _label: Label3D = $NameLabel
@onready var _body: MeshInstance3D = $Body


func _ready() -> void:
	_label.text = name
	var material := StandardMaterial3D.new()
	# The same name always gets the same colour.
	material.albedo_color = Color.from_hsv(float(hash(String(name)) % 360) / 360.0, 0.55, 0.9)
	_body.material_override = material


## The `index`-th spot of a square spiral around the centre (0, 0), so that characters placed
## one after the other never overlap.
static func spiral_spot(index: int) -> Vector2i:
	var spot := Vector2i.ZERO
	var direction := Vector2i.RIGHT
	var run := 1
	var i := 0
	while i < index:
		for _side in 2:
			for _step in run:
				if i == index:
					return spot
				spot += direction
				i += 1
			direction = Vector2i(-direction.y, direction.x)
		run += 1
	return spot
