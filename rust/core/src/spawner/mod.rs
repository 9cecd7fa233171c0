//! TcpSpawnerServer protocol (placeholder).
