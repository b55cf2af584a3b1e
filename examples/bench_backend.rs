//! Benchmark backend: a tiny hyper HTTP/1.1 server answering a small fixed body (used by `bench/router/run.sh`).
//!
//! Usage: `cargo run --release --example bench_backend -- PORT [THREADS]`
//! (THREADS defaults to 2). It listens on `127.0.0.1:PORT` with keep-alive
//! and answers every request with `200` and a 13-byte body, so that what
//! the benchmark measures is the proxy in front of it, not the backend.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const BODY: &[u8] = b"Hello, bench\n";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let port: Option<u16> = args.next().and_then(|a| a.parse().ok());
    let threads: Option<usize> = match args.next() {
        None => Some(2),
        Some(a) => a.parse().ok().filter(|&n| n > 0),
    };
    let (Some(port), Some(threads)) = (port, threads) else {
        eprintln!("usage: bench_backend PORT [THREADS]");
        return ExitCode::FAILURE;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(serve(SocketAddr::from(([127, 0, 0, 1], port)))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_backend: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of descriptors or a reset before accept: keep serving
            // the connections that did open.
            Err(e) => {
                eprintln!("bench_backend: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // The process lives only as long as the benchmark, and every
        // connection ends when its client closes it: no tracker needed.
        tokio::spawn(async move {
            let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY))))
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
