//! A GraphQL response as it goes on the wire, over HTTP and WebSocket alike.
use std::collections::BTreeMap;

use async_graphql::{Request, Response, ServerError, Value, Variables};
use serde::{Deserialize, Serialize};

use crate::graphql::{document::DocumentCache, guard::Caller};

/// The fields of a GraphQL request: a POST body, GET parameters (as strings, decoded first),
/// or a WebSocket `subscribe` payload.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestParams {
    pub query: String,
    pub operation_name: Option<String>,
    pub variables: Option<serde_json::Map<String, serde_json::Value>>,
}

impl RequestParams {
    /// The request to execute, with its document from `documents` when it parses.
    pub fn into_request(self, caller: Caller, documents: &DocumentCache) -> Request {
        let parsed = documents.parse(&self.query);
        let mut request = Request::new(self.query).data(caller);
        if let Some(doc) = parsed {
            request.set_parsed_query(doc);
        }
        request.operation_name = self.operation_name;
        if let Some(variables) = self.variables {
            request.variables = Variables::from_json(serde_json::Value::Object(variables));
        }
        request
    }
}

/// No `data` entry at all when the request failed before execution: the spec tells that
/// apart from `"data": null`.
#[derive(Serialize)]
pub struct WireResponse<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extensions: &'a BTreeMap<String, Value>,
}

impl<'a> WireResponse<'a> {
    pub fn new(response: &'a Response) -> Self {
        Self {
            data: (!is_request_error(response)).then_some(&response.data),
            errors: &response.errors,
            extensions: &response.extensions,
        }
    }
}

/// A request error stops a request before execution (parse, validation, variables): there
/// is no data, and no error has a path, since no field ran.
pub fn is_request_error(response: &Response) -> bool {
    response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}
