## The environment variables through which `cargo xtask demo` (and `screenshots`) tells the demos
## where its local services are, one constant each; a demo without one uses its default URL.
## rust/xtask/src/env_contract.rs names the same variables, and a Rust test keeps the two lists
## equal.
extends RefCounted

## URL of the local redis-server of the Redis feed demo.
const REDIS_URL := "ASYNC_NET_DEMO_REDIS_URL"
## redis:// URLs of the local Redis Cluster of the Leaderboard demo, joined with commas.
const REDIS_CLUSTER_URLS := "ASYNC_NET_DEMO_REDIS_CLUSTER_URLS"
## URL of the local WebSocket echo server of the WsEcho demo.
const WS_URL := "ASYNC_NET_DEMO_WS_URL"
## URL of the local radio station's stream for the RadioStream demo.
const RADIO_URL := "ASYNC_NET_DEMO_RADIO_URL"
## Base URL (ending in /) of the local aiohttp server of the Fetch demo: its JSON feed and ticker.
const HTTP_URL := "ASYNC_NET_DEMO_HTTP_URL"
## The port the Dashboard demo's HttpServer listens on.
const DASHBOARD_PORT := "ASYNC_NET_DEMO_DASHBOARD_PORT"


## The value of `variable`; "" when it is not set.
static func value(variable: String) -> String:
	return OS.get_environment(variable)
