## The environment variables through which `cargo xtask` tells this project where its services
## are (`test`: the tests and the packaged addon's smoke run; `soak`: the soak scene), one
## constant each. rust/xtask/src/env_contract.rs names the same variables, and a Rust test keeps
## the two lists equal. Read them as
##
##     const Env := preload("res://runner/env.gd")
##     var port := Env.port(Env.REDIS_PORT)
extends RefCounted

# --- `cargo xtask test` ---

## Port of the plain redis-server on 127.0.0.1.
const REDIS_PORT := "ASYNC_NET_TEST_REDIS_PORT"
## Port of the redis-server that requires REDIS_PASSWORD.
const REDIS_AUTH_PORT := "ASYNC_NET_TEST_REDIS_AUTH_PORT"
## The password of that server.
const REDIS_PASSWORD := "ASYNC_NET_TEST_REDIS_PASSWORD"
## Path of redis-server, for a test that runs (and kills, and restarts) one of its own.
const REDIS_SERVER := "ASYNC_NET_TEST_REDIS_SERVER"
## Path of redis-cli.
const REDIS_CLI := "ASYNC_NET_TEST_REDIS_CLI"
## Port of the Python WebSocket echo server (helpers/ws_server.py), ws://.
const WS_PORT := "ASYNC_NET_TEST_WS_PORT"
## Port of the same server's wss://.
const WSS_PORT := "ASYNC_NET_TEST_WSS_PORT"
## Path of the CA (PEM) that signed the wss:// certificate.
const WS_CA := "ASYNC_NET_TEST_WS_CA"
## Path of a CA (PEM) that did not sign it.
const WS_WRONG_CA := "ASYNC_NET_TEST_WS_WRONG_CA"
## Path of the test venv's Python, which runs helpers/*.py.
const PYTHON := "ASYNC_NET_TEST_PYTHON"
## Port of icecast2 (the tone loops on /test.mp3).
const ICECAST_PORT := "ASYNC_NET_TEST_ICECAST_PORT"
## icecast2's source password (user `source`).
const ICECAST_SOURCE_PASSWORD := "ASYNC_NET_TEST_ICECAST_SOURCE_PASSWORD"
## icecast2's admin user.
const ICECAST_ADMIN_USER := "ASYNC_NET_TEST_ICECAST_ADMIN_USER"
## icecast2's admin password.
const ICECAST_ADMIN_PASSWORD := "ASYNC_NET_TEST_ICECAST_ADMIN_PASSWORD"
## Path of ffmpeg.
const FFMPEG := "ASYNC_NET_TEST_FFMPEG"
## Path of the generated tone that icecast and the station play.
const RADIO_TONE := "ASYNC_NET_TEST_RADIO_TONE"
## Port of the project's own radio station (the testbed's), playing the tone.
const STATION_PORT := "ASYNC_NET_TEST_STATION_PORT"
## Port of nginx's plain http (static files, gzip, Range, redirects).
const NGINX_PORT := "ASYNC_NET_TEST_NGINX_PORT"
## Port of nginx's https (HTTP/2 and HTTP/1.1 through ALPN), certified by HTTP_CA.
const NGINX_TLS_PORT := "ASYNC_NET_TEST_NGINX_TLS_PORT"
## The folder nginx serves (big.bin, small.json, text.txt).
const NGINX_ROOT := "ASYNC_NET_TEST_NGINX_ROOT"
## Path of the CA (PEM) that signed nginx's certificate.
const HTTP_CA := "ASYNC_NET_TEST_HTTP_CA"
## Path of a server certificate (PEM) for 127.0.0.1 and localhost, signed by HTTP_CA.
const HTTP_CERT := "ASYNC_NET_TEST_HTTP_CERT"
## Path of its private key (PEM).
const HTTP_KEY := "ASYNC_NET_TEST_HTTP_KEY"
## Port of the aiohttp server (helpers/http_server.py).
const AIOHTTP_PORT := "ASYNC_NET_TEST_AIOHTTP_PORT"
## Port of tinyproxy (Basic auth: PROXY_USER, PROXY_PASSWORD).
const PROXY_PORT := "ASYNC_NET_TEST_PROXY_PORT"
## The proxy's user.
const PROXY_USER := "ASYNC_NET_TEST_PROXY_USER"
## The proxy's password.
const PROXY_PASSWORD := "ASYNC_NET_TEST_PROXY_PASSWORD"
## Path of the Godot that runs the tests.
const GODOT := "ASYNC_NET_TEST_GODOT"

# --- `cargo xtask soak` ---

## The folder where the soak scene and the harness exchange files.
const SOAK_DIR := "ASYNC_NET_SOAK_DIR"
## Port of the soak's redis-server.
const SOAK_REDIS_PORT := "ASYNC_NET_SOAK_REDIS_PORT"
## The channel the soak load publishes to.
const SOAK_CHANNEL := "ASYNC_NET_SOAK_CHANNEL"
## URL of the soak's WebSocket echo server.
const SOAK_WS_URL := "ASYNC_NET_SOAK_WS_URL"
## URL of the soak's icecast mount.
const SOAK_RADIO_URL := "ASYNC_NET_SOAK_RADIO_URL"
## Port the soak's TcpSpawnerServer listens on.
const SOAK_TCP_PORT := "ASYNC_NET_SOAK_TCP_PORT"
## Mean seconds between the stalls the soak scene puts on its own main thread.
const SOAK_STALL_EVERY_SEC := "ASYNC_NET_SOAK_STALL_EVERY_SEC"


## The value of `variable`; "" when it is not set.
static func value(variable: String) -> String:
	return OS.get_environment(variable)


## The value of `variable` as a number (a port); 0 when it is not set.
static func port(variable: String) -> int:
	return OS.get_environment(variable).to_int()
