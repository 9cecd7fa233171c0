//! One connection of the consumer, to a single Redis server (whose driver
//! future the consumer owns, so stopping closes the socket at once) or to a
//! Redis Cluster (the crate's cluster client, which follows slot moves and
//! failovers by itself). The consumer's code is the same for both.

use std::time::Duration;

use redis::{
    Cmd, Pipeline, ProtocolVersion, RedisFuture, Value,
    aio::{ConnectionLike, MultiplexedConnection},
    cluster::ClusterClientBuilder,
    cluster_async::ClusterConnection,
    cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr},
};

use super::ConsumerConfig;
use crate::pubsub::{
    ConnectError,
    connect::{Driver, connect_commands, describe},
};

/// A connection that sends commands and reads their replies.
#[derive(Clone)]
pub enum Link {
    /// A single server.
    Single(MultiplexedConnection),
    /// A cluster: each command goes to the master of its key's slot.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::Single(connection) => connection.req_packed_command(cmd),
            Link::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Link::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Single(connection) => connection.get_db(),
            Link::Cluster(connection) => connection.get_db(),
        }
    }
}

impl Link {
    /// Sends `pipeline` to the server that holds `key`, on one connection and in
    /// order: what WAIT needs (it counts the replicas that hold this
    /// connection's earlier writes). A cluster would otherwise send WAIT to
    /// every master. Error replies come back as [`Value::ServerError`].
    pub async fn query_on_node_of(&mut self, key: &str, pipeline: &Pipeline) -> redis::RedisResult<Vec<Value>> {
        match self {
            Link::Single(connection) => connection.req_packed_commands(pipeline, 0, pipeline.len()).await,
            Link::Cluster(connection) => {
                let route = SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
                connection.route_pipeline(pipeline.clone(), 0, pipeline.len(), route).await
            }
        }
    }
}

/// Opens a connection whose replies may take up to `response_timeout`
/// (`None`: no limit), and the future that drives it (it ends when the
/// connection to a single server is lost; a cluster's never ends: the crate
/// reconnects to its nodes, and a command that still fails ends the attempt).
pub async fn open(config: &ConsumerConfig, response_timeout: Option<Duration>) -> Result<(Link, Driver), ConnectError> {
    if !config.cluster {
        let (connection, driver) = connect_commands(&config.address, config.connect_timeout, response_timeout).await?;
        return Ok((Link::Single(connection), driver));
    }
    let seeds = std::iter::once(&config.address).chain(&config.seeds);
    let mut builder = ClusterClientBuilder::new(seeds.map(|address| address.info().clone()))
        .use_protocol(ProtocolVersion::RESP3)
        .connection_timeout(config.connect_timeout);
    if let Some(limit) = response_timeout {
        builder = builder.response_timeout(limit);
    }
    let client = builder.build().map_err(|e| describe(&config.address, &e))?;
    let connecting = tokio::time::timeout(config.connect_timeout, client.get_async_connection());
    let connection = match connecting.await {
        Ok(connection) => connection.map_err(|e| describe(&config.address, &e))?,
        Err(_) => {
            return Err(ConnectError {
                message: format!(
                    "{}: no cluster node answered within {:.1} s",
                    config.address.shown(),
                    config.connect_timeout.as_secs_f64()
                ),
                fatal: false,
            });
        }
    };
    Ok((Link::Cluster(connection), Box::pin(std::future::pending())))
}
