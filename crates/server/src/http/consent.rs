//! The consent page and `POST /consent`.

use super::authorize::{
    Decision, Step, decide, load_pushed, resume_url, see_other, signed_in_for, store_page, unusable_request_uri,
};
use super::cookies::{csrf_ok, csrf_refused, csrf_token};
use super::{AppRef, parse_form};
use crate::pages::{CONSENT_PATH, client_name, error_page, page, scope_views};
use crate::state::{AppState, now};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use strongroom_protocol::OAuthError;
use strongroom_protocol::authz::{AuthorizationRequest, refused_by_user};
use strongroom_protocol::client::Client;
use strongroom_store::SessionRecord;

/// The consent page: names the client and lists each requested scope in words
/// (F2SP-5.3.2.2-13, F1B-5.2.2-17), with Approve and Deny.
pub(super) async fn consent_page(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
    request_uri: &str,
    request: &AuthorizationRequest,
    session: &SessionRecord,
) -> Step<Response> {
    let user = state.store.get_user_by_subject(&session.subject).await.map_err(|e| store_page(state, e))?;
    let user_name =
        user.map(|u| u.claims.get("name").and_then(|n| n.as_str()).map(str::to_string).unwrap_or(u.username));
    let (csrf, set_cookie) = csrf_token(headers);
    let ctx = minijinja::context! {
        client_name => client_name(client),
        client_id => client.client_id.as_str(),
        user_name,
        scopes => scope_views(&request.scope),
        request_uri,
        csrf,
        action => state.endpoints.public(CONSENT_PATH),
    };
    Ok(page(state, StatusCode::OK, "consent.html", ctx, &[set_cookie]))
}

/// `POST /consent` (csrf, request_uri, decision): with a signed-in session, decides the
/// request — Approve issues a code, Deny answers `access_denied` (F2SP-5.3.2.2-7).
pub async fn consent(State(state): State<AppRef>, headers: HeaderMap, body: Bytes) -> Response {
    consent_inner(&state, &headers, &body).await.unwrap_or_else(|r| r)
}

async fn consent_inner(state: &AppRef, headers: &HeaderMap, body: &Bytes) -> Step<Response> {
    let form = parse_form(headers, body).map_err(|e| error_page(state, &e.error))?;
    if !csrf_ok(headers, &form) {
        return Err(csrf_refused(state));
    }
    let now = now();
    let request_uri = form.get("request_uri").map(String::as_str).unwrap_or("");
    let (record, request) = load_pushed(state, request_uri, now).await?;
    let client = state
        .client(&record.client_id)
        .await
        .map_err(|e| store_page(state, e))?
        .ok_or_else(|| unusable_request_uri(state))?;
    let decision = form.get("decision").map(String::as_str);
    if !matches!(decision, Some("approve" | "deny")) {
        return Err(error_page(state, &OAuthError::invalid_request("choose Approve or Deny")));
    }
    // Signed out, or the sign-in is too old for this request: back through the endpoint,
    // which shows the login page again.
    let Some(session) = signed_in_for(state, headers, request_uri, &request, now).await? else {
        return Ok(see_other(&resume_url(state, &client.client_id, request_uri), &[]));
    };
    let d = match decision {
        Some("approve") => Decision::Approve { session, remember: true },
        _ => Decision::Refuse(refused_by_user()),
    };
    Ok(decide(state, &client, request_uri, d, now).await)
}
