//! The trusted-proxy rule for client certificates (DESIGN: "behind a TLS-terminating proxy,
//! the client certificate arrives in a header from a configured trusted proxy address; never
//! trusted from anyone else"), black-box: both sides of the rule.

use serde_json::json;
use strongroom_tests::kit::*;
use strongroom_tests::*;

/// A server that believes `Client-Cert` only from the proxy at `trusted`.
async fn behind_proxy(trusted: &str) -> TestServer {
    TestServer::start_with(|c| {
        c.proxy.trusted = vec![trusted.into()];
        c.proxy.client_cert_header = Some("client-cert".into());
    })
    .await
}

/// R8705-2, R8705-3 (behind a proxy), RFC 9440: with 127.0.0.1 configured as a trusted
/// proxy and `Client-Cert` as the header, a `tls_client_auth` client authenticates with no
/// TLS client certificate at all — the certificate arrives as `Client-Cert: :<base64 DER>:`
/// — and its token is bound to that certificate. A forwarded certificate that does not
/// match is still `invalid_client`, and with a trusted proxy a certificate on the proxy's
/// own TLS connection is not taken as the client's.
#[tokio::test]
async fn trusted_proxy_header_carries_the_client_certificate() {
    let ts = behind_proxy("127.0.0.1").await;
    let id = register_tls(&ts, "behind-proxy", json!({})).await;
    let (cert, key) = ts.trusted_cert("behind-proxy");
    for url in [ts.mtls_url("/token"), ts.url("/token")] {
        let r =
            send(ts.client().post(&url).header("Client-Cert", rfc9440_client_cert(&cert)).form(&mtls_form(&id))).await;
        assert_token(&r);
        assert_eq!(jwt_claims(&r.access_token())["cnf"]["x5t#S256"], json!(cert_x5t_s256(&cert)), "{url}");
    }

    // A forwarded certificate with another subject is refused.
    let (other, _) = ts.trusted_cert("someone-else");
    let r = send(
        ts.client()
            .post(ts.mtls_url("/token"))
            .header("Client-Cert", rfc9440_client_cert(&other))
            .form(&mtls_form(&id)),
    )
    .await;
    assert_error(&r, 401, "invalid_client");

    // The trusted proxy's own TLS certificate is not the client's: no header, no client.
    let r = post_form(&ts.mtls_client(&cert, &key), &ts.mtls_url("/token"), &mtls_form(&id), None).await;
    assert_error(&r, 401, "invalid_client");
}

/// Issue 12 point 9, RFC 9440 §2.2: a trusted proxy must overwrite `Client-Cert`, so a request
/// on which it appears twice (the proxy appended the client's own value) is refused with
/// `400 invalid_request` — never "the first value wins" — and so is a value that is not a
/// certificate. The same client with one correct header gets its token.
#[tokio::test]
async fn repeated_or_malformed_forwarded_certificate_is_refused() {
    let ts = behind_proxy("127.0.0.1").await;
    let id = register_tls(&ts, "behind-proxy-twice", json!({})).await;
    let (cert, _) = ts.trusted_cert("behind-proxy-twice");
    let (attacker, _) = ts.trusted_cert("attacker");
    let url = ts.mtls_url("/token");

    let twice = ts
        .client()
        .post(&url)
        .header("Client-Cert", rfc9440_client_cert(&cert))
        .header("Client-Cert", rfc9440_client_cert(&attacker))
        .form(&mtls_form(&id));
    assert_error(&send(twice).await, 400, "invalid_request");

    let malformed = ts.client().post(&url).header("Client-Cert", ":bm90IGEgY2VydGlmaWNhdGU=:").form(&mtls_form(&id));
    assert_error(&send(malformed).await, 400, "invalid_request");

    let once = ts.client().post(&url).header("Client-Cert", rfc9440_client_cert(&cert)).form(&mtls_form(&id));
    assert_token(&send(once).await);
}

/// R8705-2 (the other side): when the peer (127.0.0.1) is not a configured proxy, the same
/// `Client-Cert` header is ignored — the client is 401 `invalid_client` — while a
/// certificate on its own TLS connection still authenticates it.
#[tokio::test]
async fn untrusted_peer_cannot_inject_a_certificate_header() {
    let ts = behind_proxy("10.9.9.9").await;
    let id = register_tls(&ts, "direct", json!({})).await;
    let (cert, key) = ts.trusted_cert("direct");
    for url in [ts.mtls_url("/token"), ts.url("/token")] {
        let r =
            send(ts.client().post(&url).header("Client-Cert", rfc9440_client_cert(&cert)).form(&mtls_form(&id))).await;
        assert_error(&r, 401, "invalid_client");
    }
    let r = post_form(&ts.mtls_client(&cert, &key), &ts.mtls_url("/token"), &mtls_form(&id), None).await;
    assert_token(&r);
    assert_eq!(jwt_claims(&r.access_token())["cnf"]["x5t#S256"], json!(cert_x5t_s256(&cert)));
}

/// R8705-2: with no proxy configured at all, a `Client-Cert` header is ignored.
#[tokio::test]
async fn without_proxy_configuration_the_header_is_ignored() {
    let ts = TestServer::start().await;
    let id = register_tls(&ts, "no-proxy", json!({})).await;
    let (cert, _) = ts.trusted_cert("no-proxy");
    let r = send(
        ts.client().post(ts.mtls_url("/token")).header("Client-Cert", rfc9440_client_cert(&cert)).form(&mtls_form(&id)),
    )
    .await;
    assert_error(&r, 401, "invalid_client");
}
