//! What happens to a request around the resolvers, in the order it happens: the document is
//! found by its hash (`persisted`), or its text is scanned (`scan`) and parsed once per
//! distinct document (`document`), the parsed document is checked against the document limits
//! (`limits`); then, inside async-graphql, variables are coerced (`variables`), every mutation
//! field counts against the write limits (`writes`), every error leaves with its
//! `extensions.code` (`codes`), and introspection answers for this schema, not for
//! async-graphql's meta-types (`introspection`).
//!
//! The transports (`http`) use `Documents` and `refused`; the schema installs the extensions.
mod codes;
mod document;
mod introspection;
mod limits;
mod persisted;
mod scan;
mod variables;
mod writes;

pub use codes::{ErrorCodes, refused};
pub use document::{Asked, Documents, selected_operation};
pub use introspection::NoSchemaDescription;
pub use persisted::{DocumentHash, is_persisted_miss};
pub use writes::WriteLimits;
