//! A GraphQL response as it goes on the wire, over HTTP and WebSocket alike.
use std::collections::BTreeMap;

use async_graphql::{Request, Response, ServerError, Value, Variables};
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    graphql::{
        guard::Caller,
        pipeline::{Documents, refused},
    },
};

/// The longest `operationName` accepted, in bytes. Names are identifiers a client picks; an
/// unknown one is repeated in the error, so its length must not be the client's to choose.
pub const MAX_OPERATION_NAME: usize = 128;

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
    /// The request to execute, its document parsed by `documents`; or the answer refusing it
    /// (a request error) when the document or a field is over a limit. This is the only way
    /// the server builds a request, so the schema only ever sees documents that passed.
    pub fn into_request(
        self,
        caller: Caller,
        documents: &Documents,
    ) -> Result<Request, Box<Response>> {
        if self
            .operation_name
            .as_ref()
            .is_some_and(|name| name.len() > MAX_OPERATION_NAME)
        {
            let error = AppError::bad_input(
                "operationName",
                format!("operationName must be at most {MAX_OPERATION_NAME} bytes"),
            );
            return Err(Box::new(refused(error.to_server_error())));
        }
        let doc = documents
            .parse(&self.query)
            .map_err(|error| Box::new(refused(error)))?;
        let mut request = Request::new(self.query).data(caller);
        request.set_parsed_query(doc);
        request.operation_name = self.operation_name;
        if let Some(variables) = self.variables {
            request.variables = Variables::from_json(serde_json::Value::Object(variables));
        }
        Ok(request)
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
