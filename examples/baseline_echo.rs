//! The point of comparison for `make bench`: a minimal framed echo server, as one would
//! write it with tokio and tokio-util's LengthDelimitedCodec. No greeting, no limits
//! beyond the codec's, no logging. Not part of netlab.
//!
//!     cargo run --release --example baseline_echo -- [PORT]

use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).unwrap_or_else(|| "0".into());
    let listener = TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        tokio::spawn(async move {
            let codec = LengthDelimitedCodec::builder()
                .max_frame_length(64 * 1024)
                .new_codec();
            let mut framed = Framed::new(socket, codec);
            while let Some(Ok(frame)) = framed.next().await {
                if framed.send(frame.freeze()).await.is_err() {
                    break;
                }
            }
        });
    }
}
