//! GraphQL over HTTP, per the GraphQL-over-HTTP spec and its `graphql-http` audit:
//! POST with a JSON body, GET for queries only, `application/graphql-response+json` with 4xx
//! for request errors (or `application/json` with 200), and the playground for browsers.
use async_graphql::parser::types::OperationType;
use axum::{
    body::{Body, Bytes},
    extract::{
        Query, State,
        rejection::BytesRejection,
        ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{
    HttpState, cookie,
    media::{self, ResponseType},
    playground,
    wire::{RequestFields, RequestParams, WireResponse, is_request_error},
    ws,
};
use crate::{
    error::ErrorCode,
    graphql::{
        guard::Caller,
        pipeline::{is_persisted_miss, selected_operation},
    },
};

pub async fn post(
    State(http): State<HttpState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(media) = media::negotiate(&headers) else {
        return not_acceptable();
    };
    if !media::is_json_body(&headers) {
        return request_failure(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the request body must be application/json",
        );
    }
    // Over the size limit (413), or a broken upload.
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            return request_failure(media, rejection.status(), &rejection.body_text());
        }
    };
    // A batch is a JSON array of requests; telling them apart by the first byte avoids
    // parsing every body twice.
    let batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if batch {
        let requests: Vec<RequestParams> = match serde_json::from_slice(&body) {
            Ok(requests) => requests,
            Err(err) => return invalid_body(media, err),
        };
        let max = http.state.config.graphql.max_batch;
        if requests.is_empty() || requests.len() > max {
            return request_failure(
                media,
                StatusCode::BAD_REQUEST,
                &format!("a batch must hold 1 to {max} operations"),
            );
        }
        let responses = futures_util::future::join_all(requests.into_iter().map(|params| {
            let request = params.into_request(caller.clone(), &http.documents);
            async {
                match request {
                    Ok(request) => http.schema.execute(request).await,
                    Err(refused) => *refused,
                }
            }
        }))
        .await;
        let wire: Vec<WireResponse> = responses.iter().map(WireResponse::new).collect();
        let mut http_response = json_response(media, StatusCode::OK, &wire);
        // Each operation's headers (a `Set-Cookie`), in order: a later one wins in the browser.
        for response in responses {
            append_headers(&mut http_response, response.http_headers);
        }
        return http_response;
    }
    let params: RequestParams = match serde_json::from_slice(&body) {
        Ok(params) => params,
        Err(err) => return invalid_body(media, err),
    };
    let response = match params.into_request(caller, &http.documents) {
        Ok(request) => http.schema.execute(request).await,
        Err(refused) => *refused,
    };
    graphql_response(media, response)
}

/// GET parameters arrive as strings; `variables` and `extensions` hold JSON.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    document_id: Option<String>,
    extensions: Option<String>,
}

pub async fn get(
    State(http): State<HttpState>,
    caller: Caller,
    headers: HeaderMap,
    params: Result<Query<GetParams>, axum::extract::rejection::QueryRejection>,
    websocket: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // The token of a socket comes in `connection_init`, not in the upgrade request; the
    // refresh cookie of a browser session may stand in for it, from a page of this site.
    if let Ok(websocket) = websocket {
        let allowed = http.state.config.http.cors_origins.as_deref();
        let cookie = caller
            .refresh_cookie
            .filter(|_| cookie::same_site(&headers, allowed))
            .map(|cookie| cookie.token);
        return ws::upgrade(websocket, http, caller.ip, cookie);
    }
    let params = params.ok().map(|Query(p)| p);
    // A document, whole or named by its hash (a persisted query): else a browser gets the
    // playground. Whether it really names one is known once `extensions` is parsed.
    let asks = params
        .as_ref()
        .is_some_and(|p| p.query.is_some() || p.document_id.is_some() || p.extensions.is_some());
    if !asks && http.state.config.http.playground && media::prefers_html(&headers) {
        return playground::page();
    }
    let Some(media) = media::negotiate(&headers) else {
        return not_acceptable();
    };
    let Some(params) = params else {
        return request_failure(
            media,
            StatusCode::BAD_REQUEST,
            "the query parameter is required",
        );
    };
    let variables = match params.variables.as_deref().map(serde_json::from_str) {
        None => None,
        Some(Ok(serde_json::Value::Object(map))) => Some(map),
        Some(Ok(serde_json::Value::Null)) => None,
        Some(_) => {
            return request_failure(
                media,
                StatusCode::BAD_REQUEST,
                "the variables parameter must be a JSON object",
            );
        }
    };
    let extensions = match params.extensions.as_deref().map(serde_json::from_str) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(extensions))) => Some(extensions),
        Some(Err(_)) => {
            return request_failure(
                media,
                StatusCode::BAD_REQUEST,
                "the extensions parameter must be a JSON object",
            );
        }
    };
    let fields = RequestFields {
        query: params.query,
        operation_name: params.operation_name,
        variables,
        document_id: params.document_id,
        extensions,
    };
    // `extensions` without a persisted query names no document either.
    let Ok(params) = RequestParams::try_from(fields) else {
        return request_failure(
            media,
            StatusCode::BAD_REQUEST,
            "the query parameter is required",
        );
    };
    let request = params.into_request(caller, &http.documents);
    let mut request = match request {
        Ok(request) => request,
        Err(refused) => return graphql_response(media, *refused),
    };
    // GET is for reads: it can be cached, prefetched and sent by an <img> tag.
    let operation_type = selected_operation(&mut request).map(|op| op.ty);
    if matches!(
        operation_type,
        Some(OperationType::Mutation | OperationType::Subscription)
    ) {
        let mut response = request_failure(
            media,
            StatusCode::METHOD_NOT_ALLOWED,
            "only queries may be sent with GET; use POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    graphql_response(media, http.schema.execute(request).await)
}

fn graphql_response(media: ResponseType, response: async_graphql::Response) -> Response {
    // A hash the server does not hold is a step of the APQ protocol, not a failed request:
    // 200 under either media type, as Apollo Server 4 answers it, although the
    // GraphQL-over-HTTP spec wants a 4xx for a `graphql-response+json` answer without data.
    // Apollo Client up to version 3 turns persisted queries off for good on a 400 (its
    // default `disable`), and older links read errors only from a 2xx body: a 4xx here would
    // cost APQ clients their retry with the text. An allow-list's refusal has the same code,
    // so the same answer (such a client retries once with the text, refused again). Never
    // cached: the next request for that hash may well succeed.
    let miss = is_persisted_miss(&response);
    let status =
        if media == ResponseType::GraphqlResponseJson && is_request_error(&response) && !miss {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
    let mut http_response = json_response(media, status, &WireResponse::new(&response));
    if miss {
        http_response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache, must-revalidate"),
        );
    }
    append_headers(&mut http_response, response.http_headers);
    http_response
}

/// Adds what resolvers set (`Context::append_http_header`), keeping every value of a name.
fn append_headers(response: &mut Response, headers: HeaderMap) {
    let mut name = None;
    for (next, value) in headers {
        name = next.or(name);
        if let Some(name) = &name {
            response.headers_mut().append(name.clone(), value);
        }
    }
}

fn json_response(media: ResponseType, status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(header::CONTENT_TYPE, media.content_type())],
            Body::from(bytes),
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "serialize GraphQL response");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// An HTTP-level failure (bad body, wrong method...), answered in GraphQL's error shape.
pub fn request_failure(media: ResponseType, status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{
            "message": message,
            "extensions": { "code": ErrorCode::BadUserInput.as_str() },
        }]
    });
    json_response(media, status, &body)
}

fn invalid_body(media: ResponseType, err: serde_json::Error) -> Response {
    request_failure(
        media,
        StatusCode::BAD_REQUEST,
        &format!("invalid request body: {err}"),
    )
}

fn not_acceptable() -> Response {
    request_failure(
        ResponseType::Json,
        StatusCode::NOT_ACCEPTABLE,
        "acceptable response types: application/graphql-response+json, application/json",
    )
}
