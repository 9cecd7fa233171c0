extends Node3D
## A spawned character: a capsule with its name floating above it.

@onready var _label: Label3D = $NameLabel
@onready var _body: MeshInstance3D = $Body


func _ready() -> void:
	_label.text = name
	var material := StandardMaterial3D.new()
	# The same name always gets the same colour.
	material.albedo_color = Color.from_hsv(float(hash(String(name)) % 360) / 360.0, 0.55, 0.9)
	_body.material_override = material
