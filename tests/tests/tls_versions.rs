//! F2SP-5.2.1-2 / F1B-7.1-1: TLS 1.0 and 1.1 are refused on both listeners. rustls clients
//! cannot speak those versions, so the ClientHello is written by hand.

use strongroom_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A minimal ClientHello offering only `version` (no supported_versions extension), with
/// CBC and GCM RSA suites of that era.
fn client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&version);
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // no session id
    let suites: [u8; 6] = [0x00, 0x2f, 0xc0, 0x13, 0xc0, 0x14];
    body.extend_from_slice(&(suites.len() as u16).to_be_bytes());
    body.extend_from_slice(&suites);
    body.extend_from_slice(&[1, 0]); // compression: null
    let mut handshake = vec![1];
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// The server answers an old-version ClientHello with an alert (content type 21) or by
/// closing, never with a ServerHello (content type 22).
#[tokio::test]
async fn tls_1_0_and_1_1_are_refused() {
    let ts = TestServer::start().await;
    for addr in [ts.server.public_addr, ts.server.mtls_addr] {
        for version in [[0x03, 0x01], [0x03, 0x02]] {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(&client_hello(version)).await.unwrap();
            let mut first = [0u8; 1];
            let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut first))
                .await
                .unwrap()
                .unwrap_or(0);
            assert!(n == 0 || first[0] == 0x15, "{addr} answered version {version:?} with record type {}", first[0]);
        }
    }
}
