//! GraphQL over HTTP and graphql-transport-ws, as an app speaks them.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A GraphQL client over HTTP.
#[derive(Clone)]
pub struct Gql {
    http: reqwest::Client,
    url: String,
}

impl Gql {
    pub fn new(url: &str) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        Gql {
            http,
            url: url.to_owned(),
        }
    }

    /// Runs an operation; GraphQL errors are errors.
    pub async fn run(&self, token: Option<&str>, query: &str, variables: Value) -> Result<Value> {
        let mut request = self
            .http
            .post(&self.url)
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let body: Value = request.send().await?.json().await?;
        if let Some(errors) = body.get("errors") {
            bail!("{errors}");
        }
        Ok(body["data"].clone())
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How many loopback source addresses [`subscribe_from`] spreads connections over.
pub const LOOPBACK_SOURCES: usize = 4;

/// Connects, completes connection_init with `token`, and subscribes to `query`; returns the
/// socket once the server has processed the subscription.
pub async fn subscribe(url: &str, token: &str, query: &str, variables: Value) -> Result<Socket> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    start(socket, token, query, variables).await
}

/// [`subscribe`], from loopback source address `n` of [`LOOPBACK_SOURCES`] when the server
/// is on 127.0.0.1. Linux hands out the even half of the ephemeral ports first and looks for
/// a free odd one slowly: from one source address, connections past about 14,000 to the same
/// server took 5 ms each here (a connect loop in Python showed the same), which the connect
/// time measured the kernel, not the server. Each of 127.0.0.1–4 has its own ports.
pub async fn subscribe_from(
    url: &str,
    n: usize,
    token: &str,
    query: &str,
    variables: Value,
) -> Result<Socket> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
    let host = request
        .uri()
        .host()
        .context("a host in the URL")?
        .to_owned();
    let port = request.uri().port_u16().unwrap_or(80);
    let server = tokio::net::lookup_host((host.as_str(), port))
        .await?
        .next()
        .context("the server's address")?;
    let tcp = if server.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if server.ip() == std::net::IpAddr::from([127, 0, 0, 1]) {
        let source = [127, 0, 0, 1 + (n % LOOPBACK_SOURCES) as u8];
        tcp.bind((source, 0).into())?;
    }
    let stream = tcp.connect(server).await?;
    stream.set_nodelay(true)?;
    let (socket, _) =
        tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await?;
    start(socket, token, query, variables).await
}

/// Completes connection_init with `token` and subscribes to `query` on a connected socket.
async fn start(mut socket: Socket, token: &str, query: &str, variables: Value) -> Result<Socket> {
    let init =
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}});
    socket.send(Message::text(init.to_string())).await?;
    expect(&mut socket, "connection_ack").await?;
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}});
    socket.send(Message::text(subscribe.to_string())).await?;
    // Messages are handled in order: the pong means the subscription is in place.
    socket
        .send(Message::text(json!({"type": "ping"}).to_string()))
        .await?;
    expect(&mut socket, "pong").await?;
    Ok(socket)
}

async fn expect(socket: &mut Socket, kind: &str) -> Result<()> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .with_context(|| format!("no {kind} within 30 s"))?
            .context("the socket closed")??;
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text)?;
            if value["type"] == kind {
                return Ok(());
            }
            if value["type"] == "error" {
                bail!("subscription refused: {value}");
            }
        }
    }
}

/// An event's arrival: when, on which side's socket, and its data.
pub type Arrival = (Instant, &'static str, Value);

/// Reads a socket until it closes, forwarding each event's data with its arrival time and
/// `side`.
pub fn forward(mut socket: Socket, side: &'static str, events: mpsc::UnboundedSender<Arrival>) {
    tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message
                && let Ok(value) = serde_json::from_str::<Value>(&text)
                && value["type"] == "next"
            {
                let data = value["payload"]["data"]
                    .as_object()
                    .and_then(|d| d.values().next().cloned());
                if let Some(data) = data
                    && events.send((Instant::now(), side, data)).is_err()
                {
                    break;
                }
            }
        }
    });
}
