//! Gives every error `extensions.code`, for every transport, in one place.
//!
//! Documents refused before execution come coded from `document` (`GRAPHQL_PARSE_FAILED`, or
//! `GRAPHQL_VALIDATION_FAILED` over a document limit) and are answered by `refused`; documents
//! that fail validation get `GRAPHQL_VALIDATION_FAILED`; variables that do not coerce
//! `BAD_USER_INPUT`; errors whose source is an `AppError` take its code (see `error.rs`);
//! anything else raised while executing is an internal error: logged with its cause, sent as
//! a fixed message.
use std::sync::{Arc, Mutex};

use async_graphql::{
    ErrorExtensions, Response, ServerError, ServerResult, ValidationResult,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextRequest,
        NextSubscribe, NextValidation,
    },
    futures_util::stream::{BoxStream, StreamExt},
};

use super::{document::selected_operation, variables};
use crate::error::{AppError, ErrorCode, INTERNAL_MESSAGE};

pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension::default())
    }
}

/// One per request: remembers what a later hook needs from an earlier one.
#[derive(Default)]
struct ErrorCodesExtension {
    variable_errors: Mutex<Vec<ServerError>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        finish(&mut response.errors);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream)
            .map(|mut response| {
                finish(&mut response.errors);
                response
            })
            .boxed()
    }

    /// The spec validates the document first and coerces the variables after. async-graphql
    /// validates with the variables' values, and re-reports a bad one wherever it is used
    /// (as an argument, in a page's complexity) as a validation error. So variables that do
    /// not coerce are set aside here: validation judges the document alone, and if it passes
    /// the variables' own errors are reported, as `BAD_USER_INPUT`.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        let variables = std::mem::take(&mut request.variables);
        // No operation: reported by execution, next.
        let errors = selected_operation(&mut request)
            .map(|op| variables::coercion_errors(&ctx.schema_env.registry, op, &variables))
            .unwrap_or_default();
        if errors.is_empty() {
            request.variables = variables;
        } else {
            *lock(&self.variable_errors) = errors;
        }
        next.run(ctx, request).await
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await;
        let variable_errors = std::mem::take(&mut *lock(&self.variable_errors));
        match result {
            Ok(_) if !variable_errors.is_empty() => Err(variable_errors
                .into_iter()
                .map(|e| with_code(e, ErrorCode::BadUserInput))
                .collect()),
            Ok(ok) => Ok(ok),
            Err(errors) => Err(errors
                .into_iter()
                .map(|e| with_code(e, ErrorCode::GraphqlValidationFailed))
                .collect()),
        }
    }
}

/// The answer to a request refused before it reached the schema (its document, or a request
/// field over a limit): a request error, coded and counted like every other.
pub fn refused(error: ServerError) -> Response {
    let mut response = Response::from_errors(vec![error]);
    finish(&mut response.errors);
    response
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn with_code(mut err: ServerError, code: ErrorCode) -> ServerError {
    err.extensions
        .get_or_insert_with(Default::default)
        .set("code", code.as_str());
    err
}

pub(super) fn code_of(err: &ServerError) -> Option<&str> {
    match err.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(code) => Some(code),
        _ => None,
    }
}

/// Codes every error not coded yet, and counts them all by code.
fn finish(errors: &mut [ServerError]) {
    for err in errors.iter_mut() {
        if code_of(err).is_none() {
            code_uncoded(err);
        }
        let code = code_of(err).unwrap_or_default().to_owned();
        metrics::counter!("graphql_errors_total", "code" => code).increment(1);
    }
}

fn code_uncoded(err: &mut ServerError) {
    let app_error = err
        .source
        .as_ref()
        .and_then(|source| source.downcast_ref::<AppError>());
    match app_error {
        Some(app_error) => {
            if let AppError::Internal(cause) = app_error {
                tracing::error!(path = ?err.path, error = format!("{cause:#}"), "internal error");
            }
            let extended = app_error.extend();
            err.message = extended.message;
            err.extensions = extended.extensions;
        }
        // Request-level (no path): a document that names no runnable operation, or a
        // subscription sent where only queries and mutations run.
        None if err.path.is_empty() => {
            *err = with_code(err.clone(), ErrorCode::GraphqlValidationFailed);
        }
        None => {
            tracing::error!(path = ?err.path, error = %err.message, "internal error");
            err.message = INTERNAL_MESSAGE.to_owned();
            *err = with_code(err.clone(), ErrorCode::InternalServerError);
        }
    }
}
