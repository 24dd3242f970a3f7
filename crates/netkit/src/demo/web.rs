use std::net::SocketAddr;

use anyhow::{Context, ensure};
use tokio_util::sync::CancellationToken;
use web::{Client, ClientConfig, ClientRequest, Server, ServerConfig};

pub async fn check() -> anyhow::Result<String> {
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    let server = Server::bind(ServerConfig::new(loopback)).await?;
    let url = Client::parse_url(&server.url())?;
    let token = CancellationToken::new();
    let running = tokio::spawn(server.run(token.clone()));
    let stop = token.drop_guard();

    let client = Client::new(ClientConfig::default())?;
    let response = client
        .send(ClientRequest::get(url.clone()), &mut |_| {})
        .await?;
    ensure!(response.status == 200, "GET / answered {}", response.status);
    let length: usize = response
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .context("no Content-Length")?;
    let etag = response
        .headers
        .get(http::header::ETAG)
        .cloned()
        .context("no ETag")?;
    let body = response.bytes().await?;
    ensure!(
        body.len() == length,
        "body of {} bytes, Content-Length {length}",
        body.len()
    );
    ensure!(
        String::from_utf8_lossy(&body).contains("netkit"),
        "the page does not mention netkit"
    );

    let mut conditional = ClientRequest::get(url.clone());
    conditional
        .headers
        .insert(http::header::IF_NONE_MATCH, etag);
    let response = client.send(conditional, &mut |_| {}).await?;
    ensure!(
        response.status == 304,
        "If-None-Match answered {}",
        response.status
    );

    drop(stop);
    running.await?;
    Ok(format!(
        "served and fetched {url} (200, {length} bytes, then 304 Not Modified)"
    ))
}
