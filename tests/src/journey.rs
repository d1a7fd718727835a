//! Small helpers the black-box journeys share: a real PNG, WebSocket reads, codes in texts.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// A real 1×1 PNG.
pub const PNG: [u8; 67] = [
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

/// A client WebSocket.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text message as JSON (other frames skipped), within `secs`.
pub async fn next_json_within(ws: &mut Ws, secs: u64) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(secs), ws.next())
            .await
            .unwrap_or_else(|_| panic!("a websocket message within {secs} s"))
            .expect("stream open")
            .expect("message");
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).expect("json message");
        }
    }
}

/// The first 6-digit code in a text (an OTP in an SMS or mail).
pub fn six_digits(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("6-digit code")
        .to_owned()
}

/// Uploads [`PNG`] as the `profile_img` part of `POST {url}` (multipart built by hand, the part
/// named `filename` with `part_type`: the content decides, not the name) with `authorization`;
/// asserts 200 and returns the `profile_img` URL answered.
pub async fn upload_profile_png(
    http: &reqwest::Client,
    url: &str,
    authorization: &str,
    filename: &str,
    part_type: &str,
) -> String {
    let boundary = "journeyboundary";
    let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"profile_img\"; filename=\"{filename}\"\r\nContent-Type: {part_type}\r\n\r\n").into_bytes();
    body.extend_from_slice(&PNG);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let res = http
        .post(url)
        .header("authorization", authorization)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    res.json::<Value>().await.expect("json")["profile_img"]
        .as_str()
        .expect("url")
        .to_owned()
}
