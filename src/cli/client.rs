//! A small Platform API client over TCP or the daemon's Unix socket.
//!
//! One HTTP/1.1 connection per request keeps it simple and is plenty for a
//! command-line tool; lists follow `Next-Range` until the last page.

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http::header::{ACCEPT, AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST, UPGRADE};
use http::{Method, Request, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::{TcpStream, UnixStream};

use super::CliError;
use crate::api::types::{ErrorBody, HEROKU_ACCEPT};

/// Where the API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `http://host:port`.
    Tcp {
        /// `host:port` to connect to and send as `Host`.
        authority: String,
    },
    /// `unix:///path/to/api.sock`.
    Unix {
        /// The socket path.
        path: PathBuf,
    },
}

impl Endpoint {
    /// Parses `http://host[:port]` or `unix:///path`.
    pub(crate) fn parse(url: &str) -> Result<Self, CliError> {
        if let Some(path) = url.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(CliError::Config(format!(
                    "The API URL {url:?} must name an absolute socket path, like unix:///var/lib/corral/api.sock."
                )));
            }
            return Ok(Self::Unix { path: path.into() });
        }
        if let Some(rest) = url.strip_prefix("http://") {
            let authority = rest.trim_end_matches('/');
            if authority.is_empty() || authority.contains('/') {
                return Err(CliError::Config(format!(
                    "The API URL {url:?} must be just scheme, host and port, like http://127.0.0.1:5000."
                )));
            }
            let authority = if authority.contains(':') {
                authority.to_owned()
            } else {
                format!("{authority}:80")
            };
            return Ok(Self::Tcp { authority });
        }
        Err(CliError::Config(format!(
            "The API URL {url:?} is not supported; use http://HOST:PORT or unix:///PATH (TLS for the API is not offered yet)."
        )))
    }

    fn describe(&self) -> String {
        match self {
            Self::Tcp { authority } => format!("http://{authority}"),
            Self::Unix { path } => format!("unix://{}", path.display()),
        }
    }
}

/// An authenticated API client.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    endpoint: Endpoint,
    token: String,
}

/// A raw response: status, `Next-Range`, body.
struct Raw {
    status: StatusCode,
    next_range: Option<String>,
    body: Bytes,
}

impl Client {
    /// A client for `endpoint` using `token`.
    pub(crate) fn new(endpoint: Endpoint, token: String) -> Self {
        Self { endpoint, token }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        range: Option<&str>,
    ) -> Result<Raw, CliError> {
        let has_body = body.is_some();
        let body = Full::new(Bytes::from(body.unwrap_or_default()))
            .map_err(|never| match never {})
            .boxed();
        self.send_body(
            method,
            path,
            body,
            has_body.then_some("application/json"),
            range,
        )
        .await
    }

    /// A request to the API with the headers every call carries.
    fn request(&self, method: Method, path: &str) -> http::request::Builder {
        let host = match &self.endpoint {
            Endpoint::Tcp { authority } => authority.clone(),
            Endpoint::Unix { .. } => "localhost".to_owned(),
        };
        Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, host)
            .header(ACCEPT, HEROKU_ACCEPT)
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
            .header(
                "user-agent",
                concat!("corral-cli/", env!("CARGO_PKG_VERSION")),
            )
    }

    async fn send_body(
        &self,
        method: Method,
        path: &str,
        body: BoxBody<Bytes, std::io::Error>,
        content_type: Option<&str>,
        range: Option<&str>,
    ) -> Result<Raw, CliError> {
        let connect_err = |source: std::io::Error| CliError::Connect {
            endpoint: self.endpoint.describe(),
            source,
        };
        let mut builder = self.request(method, path);
        if let Some(range) = range {
            builder = builder.header("range", range);
        }
        if let Some(content_type) = content_type {
            builder = builder.header(CONTENT_TYPE, content_type);
        }
        let request = builder
            .body(body)
            .map_err(|e| CliError::Usage(format!("cannot build the request: {e}")))?;
        let response = match &self.endpoint {
            Endpoint::Tcp { authority } => {
                let stream = TcpStream::connect(authority).await.map_err(connect_err)?;
                exchange(stream, request).await
            }
            Endpoint::Unix { path } => {
                let stream = UnixStream::connect(path).await.map_err(connect_err)?;
                exchange(stream, request).await
            }
        }
        .map_err(|e| CliError::Protocol(e.to_string()))?;
        let (parts, body) = response;
        let status = parts.status;
        let next_range = parts
            .headers
            .get("next-range")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if !status.is_success() {
            let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
            let (id, message) = parsed.map_or_else(
                || {
                    (
                        "unknown".to_owned(),
                        String::from_utf8_lossy(&body).into_owned(),
                    )
                },
                |e| (e.id, e.message),
            );
            return Err(CliError::Api {
                status: status.as_u16(),
                id,
                message,
            });
        }
        Ok(Raw {
            status,
            next_range,
            body,
        })
    }

    fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, CliError> {
        serde_json::from_slice(body)
            .map_err(|e| CliError::Protocol(format!("unexpected response from the API: {e}")))
    }

    /// `GET path` as bytes, whole (a build's output, once it has ended).
    pub(crate) async fn get_bytes(&self, path: &str) -> Result<Bytes, CliError> {
        Ok(self.send(Method::GET, path, None, None).await?.body)
    }

    /// `GET path`, handing each chunk of the body to `chunk` as it
    /// arrives (a log session's stream, which may never end), until it
    /// returns false.
    pub(crate) async fn get_streaming(
        &self,
        path: &str,
        mut chunk: impl FnMut(&[u8]) -> bool + Send,
    ) -> Result<(), CliError> {
        let connect_err = |source: std::io::Error| CliError::Connect {
            endpoint: self.endpoint.describe(),
            source,
        };
        let request = self
            .request(Method::GET, path)
            .body::<BoxBody<Bytes, std::io::Error>>(
                Full::new(Bytes::new())
                    .map_err(|never| match never {})
                    .boxed(),
            )
            .map_err(|e| CliError::Usage(format!("cannot build the request: {e}")))?;
        let protocol = |e: hyper::Error| CliError::Protocol(e.to_string());
        macro_rules! stream_over {
            ($stream:expr) => {{
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new($stream))
                        .await
                        .map_err(protocol)?;
                let exchange = async move {
                    let response = sender.send_request(request).await.map_err(protocol)?;
                    let status = response.status();
                    let mut body = response.into_body();
                    if !status.is_success() {
                        let text = body.collect().await.map_err(protocol)?.to_bytes();
                        return Err(CliError::Api {
                            status: status.as_u16(),
                            id: "not_found".to_owned(),
                            message: String::from_utf8_lossy(&text).trim().to_owned(),
                        });
                    }
                    while let Some(frame) = body.frame().await {
                        if let Ok(data) = frame.map_err(protocol)?.into_data() {
                            if !chunk(&data) {
                                break;
                            }
                        }
                    }
                    Ok(())
                };
                // The connection ends once the exchange drops the sender.
                let (result, _) = tokio::join!(exchange, conn);
                result
            }};
        }
        match &self.endpoint {
            Endpoint::Tcp { authority } => {
                stream_over!(TcpStream::connect(authority).await.map_err(connect_err)?)
            }
            Endpoint::Unix { path } => {
                stream_over!(UnixStream::connect(path).await.map_err(connect_err)?)
            }
        }
    }

    /// `GET path` decoded as `T`.
    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let raw = self.send(Method::GET, path, None, None).await?;
        Self::decode(&raw.body)
    }

    /// `GET path` of a list, following `Next-Range` across pages.
    pub(crate) async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        range: Option<&str>,
    ) -> Result<Vec<T>, CliError> {
        let mut items = Vec::new();
        let mut range = range.map(str::to_owned);
        loop {
            let raw = self.send(Method::GET, path, None, range.as_deref()).await?;
            let page: Vec<T> = Self::decode(&raw.body)?;
            items.extend(page);
            match raw.next_range {
                Some(next) if raw.status == StatusCode::PARTIAL_CONTENT => range = Some(next),
                _ => return Ok(items),
            }
        }
    }

    /// `method path` with a JSON body, decoded as `T`.
    pub(crate) async fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, CliError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| CliError::Usage(format!("cannot encode the request: {e}")))?;
        let raw = self.send(method, path, Some(body), None).await?;
        Self::decode(&raw.body)
    }

    /// `PUT` of a file's bytes to `url` (an upload target the API gave, whose
    /// path and query are sent to this client's endpoint), streamed.
    pub(crate) async fn put_file<T: DeserializeOwned>(
        &self,
        url: &str,
        file: &std::path::Path,
    ) -> Result<T, CliError> {
        let path = path_of(url)?;
        let opened = tokio::fs::File::open(file)
            .await
            .map_err(|source| CliError::Io {
                context: format!("cannot open {}", file.display()),
                source,
            })?;
        let stream = tokio_util::io::ReaderStream::new(opened).map_ok(Frame::data);
        let body = BodyExt::boxed(StreamBody::new(stream));
        let raw = self
            .send_body(
                Method::PUT,
                path,
                body,
                Some("application/octet-stream"),
                None,
            )
            .await?;
        Self::decode(&raw.body)
    }

    /// `GET url` (a URL the API gave, whose path and query are sent to
    /// this client's endpoint) with `Connection: Upgrade` and `Upgrade:
    /// protocol`: the connection, once the API has switched it over.
    pub(crate) async fn upgrade(
        &self,
        url: &str,
        protocol: &str,
    ) -> Result<hyper::upgrade::Upgraded, CliError> {
        let path = path_of(url)?;
        let host = match &self.endpoint {
            Endpoint::Tcp { authority } => authority.clone(),
            Endpoint::Unix { .. } => "localhost".to_owned(),
        };
        let request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(HOST, host)
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, protocol)
            .header(
                "user-agent",
                concat!("corral-cli/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::new()))
            .map_err(|e| CliError::Usage(format!("cannot build the request: {e}")))?;
        let connect_err = |source: std::io::Error| CliError::Connect {
            endpoint: self.endpoint.describe(),
            source,
        };
        match &self.endpoint {
            Endpoint::Tcp { authority } => {
                let stream = TcpStream::connect(authority).await.map_err(connect_err)?;
                // Keystrokes are small: send them at once.
                let _ = stream.set_nodelay(true);
                switch(stream, request).await
            }
            Endpoint::Unix { path } => {
                let stream = UnixStream::connect(path).await.map_err(connect_err)?;
                switch(stream, request).await
            }
        }
    }

    /// `DELETE path`, decoded as `T`.
    pub(crate) async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let raw = self.send(Method::DELETE, path, None, None).await?;
        Self::decode(&raw.body)
    }
}

/// The path and query of a URL the API gave, to send to our endpoint.
fn path_of(url: &str) -> Result<&str, CliError> {
    url.strip_prefix("http://")
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .ok_or_else(|| CliError::Protocol(format!("unexpected URL from the API: {url:?}")))
}

/// Sends an upgrade request and returns the switched connection, or the
/// API's error.
async fn switch<S>(
    stream: S,
    request: Request<Full<Bytes>>,
) -> Result<hyper::upgrade::Upgraded, CliError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let protocol = |e: hyper::Error| CliError::Protocol(e.to_string());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(protocol)?;
    // The connection future must run while the request is answered, and
    // after a 101 until it has handed the connection over.
    let conn = conn.with_upgrades();
    tokio::pin!(conn);
    let answer = sender.send_request(request);
    tokio::pin!(answer);
    // On a 101 the connection future may finish first: it has handed the
    // answer over, and the connection with it.
    let mut conn_done = false;
    let mut response = tokio::select! {
        response = &mut answer => response.map_err(protocol)?,
        ended = &mut conn => {
            ended.map_err(protocol)?;
            conn_done = true;
            answer.await.map_err(protocol)?
        }
    };
    // No second request: without the sender the connection ends once the
    // answer is read (or handed over).
    drop(sender);
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = response.status();
        let (body, _) = tokio::join!(response.into_body().collect(), async {
            if !conn_done {
                let _ = (&mut conn).await;
            }
        });
        let body = body.map(|b| b.to_bytes()).unwrap_or_default();
        let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
        let (id, message) = parsed.map_or_else(
            || {
                (
                    "unknown".to_owned(),
                    format!("the API answered {status} instead of switching protocols"),
                )
            },
            |e| (e.id, e.message),
        );
        return Err(CliError::Api {
            status: status.as_u16(),
            id,
            message,
        });
    }
    let (ended, upgraded) = tokio::join!(
        async {
            if conn_done {
                Ok(())
            } else {
                (&mut conn).await
            }
        },
        hyper::upgrade::on(&mut response)
    );
    ended.map_err(protocol)?;
    upgraded.map_err(protocol)
}

/// Sends one request and reads the whole response on a fresh connection.
async fn exchange<S>(
    stream: S,
    request: Request<BoxBody<Bytes, std::io::Error>>,
) -> Result<(http::response::Parts, Bytes), hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection future must be polled while the exchange runs; it ends
    // once the sender (owned by the exchange) is dropped, so joining both
    // needs no spawned task.
    let exchange = async move {
        let response = sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok::<_, hyper::Error>((parts, body))
    };
    let (result, conn_result) = tokio::join!(exchange, conn);
    let response = result?;
    conn_result?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:5000/").expect("tcp"),
            Endpoint::Tcp {
                authority: "127.0.0.1:5000".to_owned()
            }
        );
        assert_eq!(
            Endpoint::parse("http://example.com").expect("tcp"),
            Endpoint::Tcp {
                authority: "example.com:80".to_owned()
            }
        );
        assert_eq!(
            Endpoint::parse("unix:///var/lib/corral/api.sock").expect("unix"),
            Endpoint::Unix {
                path: "/var/lib/corral/api.sock".into()
            }
        );
        assert!(Endpoint::parse("https://x").is_err());
        assert!(Endpoint::parse("unix://relative").is_err());
        assert!(Endpoint::parse("http://h:1/prefix").is_err());
    }
}
