extends DemoScreen
## Internet radio on a 3D object: the RadioStream plays through the radio's
## AudioStreamPlayer3D, so the sound comes from where the radio is (the camera
## circles it: listen to it pan). The overlay shows the station, the current
## title from the stream's ICY metadata, and how much audio is buffered.
##
## `cargo xtask demo` starts the project's own local station (a generated MP3
## paced in real time, with changing titles) and passes its URL in
## ASYNC_NET_DEMO_RADIO_URL, so this works without internet; any icecast or
## SHOUTcast URL, or a .pls / .m3u playlist, works too. Headless, the demo
## plays for a few seconds and prints what happens.

const DemoEnv := preload("res://common/demo_env.gd")

const INFO := {
	"order": 4,
	"title": "Internet radio",
	"summary": "An icecast / SHOUTcast stream decoded off the main thread, playing from a 3D object.",
	"classes": "RadioStream",
	"tag": "radio",
}

## Seconds of buffered audio that count as "playing" for the screenshot tour.
const LIVE_BUFFER_SEC := 1.0

@onready var _radio: RadioStream = %RadioStream
@onready var _url: LineEdit = %Url
@onready var _station: Label = %Station
@onready var _title: Label = %NowPlaying
@onready var _gauge: ProgressBar = %Buffer
@onready var _buffered: Label = %Buffered
@onready var _camera_pivot: Node3D = %CameraPivot


func _ready() -> void:
	super()
	status.watch(_radio, ["buffered_sec", "underruns", "reconnects", "decode_errors"])
	var url := DemoEnv.value(DemoEnv.RADIO_URL)
	_url.text = url if not url.is_empty() else _radio.url
	_radio.started.connect(_on_started)
	_radio.title_changed.connect(func(title: String) -> void:
		_title.text = title
		say("now playing: %s" % title, RECEIVED_COLOR))
	_radio.underrun.connect(func() -> void: say("buffer ran dry (network slower than playback)", ERROR_COLOR))
	_radio.stopped.connect(func() -> void: say("stopped"))
	_radio.error.connect(func(message: String) -> void: say("error: %s" % message, ERROR_COLOR))
	%Play.pressed.connect(_play)
	%Stop.pressed.connect(_radio.stop)
	_url.text_submitted.connect(func(_text: String) -> void: _play())
	_gauge.max_value = _radio.buffer_sec
	if not _url.text.is_empty():
		_play()


func has_live_data() -> bool:
	return not _title.text.is_empty() and _radio.get_stats().get("buffered_sec", 0.0) >= LIVE_BUFFER_SEC


func _play() -> void:
	_station.text = "Connecting…"
	_title.text = ""
	_radio.play(_url.text.strip_edges())


func _on_started(info: Dictionary) -> void:
	var name: String = info.get("name", "")
	_station.text = "%s  ·  %s %d Hz, %d ch, %d kbit/s" % [
		name if not name.is_empty() else info.get("url", ""), String(info.codec).to_upper(), info.sample_rate,
		info.channels, info.get("bitrate", 0)]
	say("started: %s" % _station.text)


func _process(delta: float) -> void:
	_camera_pivot.rotate_y(delta * 0.4)
	var buffered: float = _radio.get_stats().get("buffered_sec", 0.0)
	_gauge.value = buffered
	_buffered.text = "%.1f s" % buffered
