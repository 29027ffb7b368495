//! Issue 12 point 4: proxy environment variables never route outbound fetches (they would
//! take the connection past the address check); only `outbound.proxy` does, and targets
//! are still vetted then. A test binary of its own: it sets process-wide variables.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use strongroom_server::config::OutboundConfig;
use strongroom_server::jwks_fetch::{FetchError, JwksFetcher};

/// A listener standing in for a proxy; nothing connects to it unless the fetcher uses it.
fn proxy_listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    (l, url)
}

fn was_used(proxy: &TcpListener) -> bool {
    proxy.accept().is_ok()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

#[test]
fn proxy_environment_variables_are_ignored_and_only_a_configured_proxy_is_used() {
    let (env_proxy, env_url) = proxy_listener();
    for var in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        // SAFETY: this binary has one test, and no other thread runs yet.
        unsafe { std::env::set_var(var, &env_url) };
    }
    for var in ["NO_PROXY", "no_proxy"] {
        // SAFETY: as above.
        unsafe { std::env::remove_var(var) };
    }
    let rt = runtime();

    // Guard on: an internal target is refused although a proxy is in the environment.
    let guarded = JwksFetcher::new(&OutboundConfig::default(), Vec::new()).expect("fetcher");
    let r = rt.block_on(guarded.get("https://localhost:9/jwks", false, 0));
    assert!(matches!(r, Err(FetchError::Forbidden(_))), "{r:?}");
    // Guard off: the fetch goes straight to the (closed) port, not to the environment's proxy.
    let open = OutboundConfig { allow_private_addresses: true, proxy: None };
    let open = JwksFetcher::new(&open, Vec::new()).expect("fetcher");
    for uri in ["https://localhost:9/jwks", "https://127.0.0.1:9/jwks"] {
        let r = rt.block_on(open.get(uri, false, 0));
        assert!(matches!(r, Err(FetchError::Unreachable)), "{uri}: {r:?}");
    }
    assert!(!was_used(&env_proxy), "a proxy from the environment was used");

    // A configured proxy is used, for vetted targets only.
    let (configured, configured_url) = proxy_listener();
    let via = OutboundConfig { allow_private_addresses: false, proxy: Some(configured_url) };
    let via = JwksFetcher::new(&via, Vec::new()).expect("fetcher");
    for uri in ["https://localhost:9/jwks", "https://[::1]/jwks", "https://10.0.0.1/jwks"] {
        let r = rt.block_on(via.get(uri, false, 0));
        assert!(matches!(r, Err(FetchError::Forbidden(_))), "{uri}: {r:?}");
    }
    assert!(!was_used(&configured), "an internal target reached the proxy");
    configured.set_nonblocking(false).expect("blocking");
    let proxy = std::thread::spawn(move || {
        let (stream, _) = configured.accept().expect("the configured proxy is used");
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).expect("request line");
        let _ = (&stream).write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n");
        line
    });
    let r = rt.block_on(via.get("https://93.184.215.14/jwks", false, 0));
    assert!(matches!(r, Err(FetchError::Unreachable)), "{r:?}");
    let line = proxy.join().expect("proxy thread");
    assert!(line.starts_with("CONNECT 93.184.215.14:443 "), "{line}");
    assert!(!was_used(&env_proxy), "a proxy from the environment was used");
}
