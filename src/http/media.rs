//! Content negotiation for GraphQL over HTTP: which response type the client accepts, and
//! whether the request body is JSON.
use axum::http::{HeaderMap, HeaderValue, header};

pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json; charset=utf-8";
pub const JSON: &str = "application/json; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    /// `application/graphql-response+json`: request errors get a 4xx status.
    GraphqlResponseJson,
    /// `application/json` (legacy): every GraphQL response is 200.
    Json,
}

impl ResponseType {
    pub fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::GraphqlResponseJson => GRAPHQL_RESPONSE_JSON,
            Self::Json => JSON,
        })
    }
}

/// The response type to answer with, or `None` if the client accepts neither (406).
///
/// A client that names `application/graphql-response+json` gets it (on equal preference
/// too). One that names neither type, with `*/*` or no `Accept` at all (curl, older
/// clients), gets `application/json`, as the `graphql-http` audit asks: such a client may not
/// know the newer type, and under `application/json` every GraphQL response is a 200 it can
/// read as before.
pub fn negotiate(headers: &HeaderMap) -> Option<ResponseType> {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Some(ResponseType::Json);
    };
    let accept = accept.to_str().ok()?;
    // The quality of each type named outright, and of the wildcards that cover both.
    let (mut graphql, mut json, mut any) = (None, None, None);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let slot = match media.as_str() {
            "application/graphql-response+json" => &mut graphql,
            "application/json" => &mut json,
            "*/*" | "application/*" => &mut any,
            _ => continue,
        };
        *slot = Some(slot.map_or(q, |old: f32| old.max(q)));
    }
    // A type named outright takes its own quality, not a wildcard's (RFC 9110, 12.5.1).
    let named = graphql.is_some();
    let graphql = graphql.or(any).unwrap_or(0.0);
    let json = json.or(any).unwrap_or(0.0);
    match (graphql, json) {
        (g, j) if g <= 0.0 && j <= 0.0 => None,
        // On equal preference, the newer type only when the client named it.
        (g, j) if g > j || (g == j && named) => Some(ResponseType::GraphqlResponseJson),
        _ => Some(ResponseType::Json),
    }
}

/// Whether a browser is asking for a page (the playground) rather than for data.
pub fn prefers_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// A POST body must be `application/json` in UTF-8. Anything else is 415, which also turns
/// away cross-site HTML form posts (they cannot send JSON without a CORS preflight).
pub fn is_json_body(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("application/json")
        && parts.all(|param| match param.split_once('=') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
                value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            }
            _ => true,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> Option<ResponseType> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        negotiate(&h)
    }

    #[test]
    fn negotiation() {
        use ResponseType::*;
        assert_eq!(negotiate(&HeaderMap::new()), Some(Json));
        assert_eq!(accept("application/json"), Some(Json));
        assert_eq!(
            accept("application/graphql-response+json"),
            Some(GraphqlResponseJson)
        );
        assert_eq!(accept("*/*"), Some(Json));
        assert_eq!(accept("application/*"), Some(Json));
        assert_eq!(
            accept("application/graphql-response+json, application/json"),
            Some(GraphqlResponseJson)
        );
        assert_eq!(
            accept("application/graphql-response+json, */*;q=0.1"),
            Some(GraphqlResponseJson)
        );
        assert_eq!(accept("application/json, */*"), Some(Json));
        // A wildcard does not raise a type the client ruled out.
        assert_eq!(
            accept("application/json;q=0, */*"),
            Some(GraphqlResponseJson)
        );
        assert_eq!(
            accept("application/graphql-response+json;q=0.5, application/json"),
            Some(Json)
        );
        assert_eq!(accept("application/json;charset=utf-8"), Some(Json));
        assert_eq!(accept("text/html"), None);
        assert_eq!(accept("application/json;q=0"), None);
    }

    #[test]
    fn json_bodies() {
        let ct = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            is_json_body(&h)
        };
        assert!(ct("application/json"));
        assert!(ct("Application/JSON; charset=UTF-8"));
        assert!(!ct("application/json; charset=latin1"));
        assert!(!ct("application/x-www-form-urlencoded"));
        assert!(!ct("text/plain"));
        assert!(!is_json_body(&HeaderMap::new()));
    }
}
