//! A GraphQL response as it goes on the wire, over HTTP and WebSocket alike.
use std::collections::BTreeMap;

use async_graphql::{Request, Response, ServerError, Value, Variables};
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    graphql::{
        guard::Caller,
        pipeline::{Asked, DocumentHash, Documents, refused},
    },
};

/// The longest `operationName` accepted, in bytes. Names are identifiers a client picks; an
/// unknown one is repeated in the error, so its length must not be the client's to choose.
pub const MAX_OPERATION_NAME: usize = 128;

/// A GraphQL request as it arrives: a POST body, GET parameters (as strings, decoded first),
/// or a WebSocket `subscribe` payload. The document comes as `query`, or is named by its
/// sha256 (a persisted document: see `graphql::pipeline::persisted`), or both.
///
/// One with neither does not deserialize: it is not a GraphQL request (400 over HTTP
/// whatever the response type, 4400 on a socket), as before documents had hashes.
#[derive(Deserialize)]
#[serde(try_from = "RequestFields")]
pub struct RequestParams {
    document: Document,
    operation_name: Option<String>,
    variables: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The fields of a request, any of them missing.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestFields {
    pub query: Option<String>,
    pub operation_name: Option<String>,
    pub variables: Option<serde_json::Map<String, serde_json::Value>>,
    /// The GraphQL-over-HTTP persisted-documents field: `sha256:<hex>`, or the bare hex that
    /// graphql-codegen's client preset sends.
    pub document_id: Option<String>,
    pub extensions: Option<RequestExtensions>,
}

/// How a request gives its document.
enum Document {
    Text(String),
    /// By a hash, with the text or without (an automatic persisted query sends the hash
    /// first, then both when the server did not know it).
    Named {
        text: Option<String>,
        name: Name,
    },
}

/// Where the hash is, as sent: checked only when the request is run, so that a bad one is a
/// coded error rather than a request that does not deserialize.
enum Name {
    DocumentId(String),
    Persisted(PersistedQuery),
    Both,
}

impl TryFrom<RequestFields> for RequestParams {
    type Error = &'static str;

    fn try_from(f: RequestFields) -> Result<Self, Self::Error> {
        let persisted = f.extensions.and_then(|e| e.persisted_query);
        let name = match (f.document_id, persisted) {
            (None, None) => None,
            (Some(id), None) => Some(Name::DocumentId(id)),
            (None, Some(persisted)) => Some(Name::Persisted(persisted)),
            (Some(_), Some(_)) => Some(Name::Both),
        };
        let document = match (f.query, name) {
            (Some(text), None) => Document::Text(text),
            // graphql-ws (6) sends no subscribe without a `query` string: beside a hash, an
            // empty one is no text at all (an empty document is never GraphQL anyway).
            (text, Some(name)) => Document::Named {
                text: text.filter(|text| !text.is_empty()),
                name,
            },
            (None, None) => {
                return Err(
                    "missing field `query` (or `documentId`, or `extensions.persistedQuery`)",
                );
            }
        };
        Ok(RequestParams {
            document,
            operation_name: f.operation_name,
            variables: f.variables,
        })
    }
}

/// What of a request's `extensions` the server reads; the rest is ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestExtensions {
    persisted_query: Option<PersistedQuery>,
}

/// Apollo's automatic persisted query. Both fields are optional here so that a missing one
/// is a coded error that says which, rather than a body that does not deserialize.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersistedQuery {
    version: Option<serde_json::Value>,
    sha256_hash: Option<String>,
}

impl RequestParams {
    /// The request to execute, its document found or parsed by `documents`; or the answer
    /// refusing it (a request error) when the document or a field is over a limit, or the
    /// document is not to be had. This is the only way the server builds a request, so the
    /// schema only ever sees documents that passed, and an allow-list holds on every transport.
    pub fn into_request(
        self,
        caller: Caller,
        documents: &Documents,
    ) -> Result<Request, Box<Response>> {
        let refuse = |error: AppError| Box::new(refused(error.to_server_error()));
        if self
            .operation_name
            .as_ref()
            .is_some_and(|name| name.len() > MAX_OPERATION_NAME)
        {
            return Err(refuse(AppError::bad_input(
                "operationName",
                format!("operationName must be at most {MAX_OPERATION_NAME} bytes"),
            )));
        }
        let asked = match self.document {
            Document::Text(text) => Asked::Text(text),
            Document::Named { text, name } => match (text, name.hash().map_err(refuse)?) {
                (Some(text), hash) => Asked::Both(text, hash),
                (None, hash) => Asked::Hash(hash),
            },
        };
        let (query, doc) = documents
            .resolve(asked)
            .map_err(|error| Box::new(refused(error)))?;
        let mut request = Request::new(query).data(caller);
        request.set_parsed_query(doc);
        request.operation_name = self.operation_name;
        if let Some(variables) = self.variables {
            request.variables = Variables::from_json(serde_json::Value::Object(variables));
        }
        Ok(request)
    }
}

impl Name {
    /// The hash it names. A hash is 64 hex digits and nothing else; what a client sends
    /// instead is refused, not repeated.
    fn hash(&self) -> Result<DocumentHash, AppError> {
        const HASH: &str = "extensions.persistedQuery.sha256Hash";
        match self {
            Name::Both => Err(AppError::bad_input(
                "documentId",
                "send documentId or extensions.persistedQuery, not both",
            )),
            Name::DocumentId(id) => {
                let hex = id.strip_prefix("sha256:").unwrap_or(id);
                DocumentHash::from_hex(hex).ok_or_else(|| {
                    AppError::bad_input("documentId", "documentId must be sha256:<64 hex digits>")
                })
            }
            Name::Persisted(persisted) => {
                // The protocol's only version; Apollo Server's message.
                if persisted.version.as_ref().and_then(|v| v.as_f64()) != Some(1.0) {
                    return Err(AppError::bad_input(
                        "extensions.persistedQuery.version",
                        "Unsupported persisted query version",
                    ));
                }
                let hash = persisted
                    .sha256_hash
                    .as_deref()
                    .ok_or_else(|| AppError::bad_input(HASH, format!("{HASH} is required")))?;
                DocumentHash::from_hex(hash).ok_or_else(|| {
                    AppError::bad_input(HASH, format!("{HASH} must be 64 hexadecimal digits"))
                })
            }
        }
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
