//! Benchmark reference: the same HTTP stack as `rvm serve` (hyper, tokio) and the
//! same answer as the hello guest, with no wasm at all. `bench/serve.sh` prints
//! rvm's throughput as a ratio of this one, measured in the same run.

use std::convert::Infallible;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const BODY: &[u8] = b"Hello from rvm\n";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8001".to_string());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("native hello on http://{addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_request| async {
                let response = http::Response::builder()
                    .header("content-type", "text/plain")
                    .body(http_body_util::Full::new(bytes::Bytes::from_static(BODY)));
                Ok::<_, Infallible>(response.expect("a valid static response"))
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
