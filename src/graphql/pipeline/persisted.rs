//! Persisted documents: a document asked for by the sha256 of its text instead of sent whole.
//!
//! Two uses, one request shape. Apollo's automatic persisted queries (APQ): a client sends
//! `extensions.persistedQuery = { version: 1, sha256Hash }` without the text; a server that
//! holds that document runs it, and one that does not answers `PERSISTED_QUERY_NOT_FOUND`,
//! upon which the client sends the hash again with the text, which the server checks against
//! the hash and keeps. And an allow-list (`PERSISTED_OPERATIONS_FILE`): the documents a build
//! of the clients may send, fixed at start; a request names one by its hash (as above, or as
//! `documentId`, the GraphQL-over-HTTP persisted-documents field) or sends one of them whole,
//! and every other document is refused unparsed.
//!
//! `document::Documents` holds the documents; this is what is around them: the hash, the
//! manifest file and the errors.
use std::{fmt, path::Path};

use anyhow::{Context, bail};
use async_graphql::{Response, ServerError};
use sha2::{Digest, Sha256};

use super::codes::{code_of, with_code};
use crate::{error::ErrorCode, text::cut};

/// The sha256 of a document's text, as the protocols name documents.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DocumentHash([u8; 32]);

impl DocumentHash {
    pub fn of(text: &str) -> Self {
        Self(Sha256::digest(text.as_bytes()).into())
    }

    /// Exactly 64 hexadecimal digits, the one form a sha256 travels in; `None` for anything
    /// else (which is never repeated back: its length is the client's choice).
    pub fn from_hex(hex: &str) -> Option<Self> {
        let mut bytes = [0; 32];
        if hex.len() != 64 {
            return None;
        }
        hex::decode_to_slice(hex, &mut bytes).ok()?;
        Some(Self(bytes))
    }
}

impl fmt::Display for DocumentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for DocumentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentHash({self})")
    }
}

/// The message Apollo Server sends with each code; clients match on the message or the code.
const NOT_FOUND: &str = "PersistedQueryNotFound";
const NOT_SUPPORTED: &str = "PersistedQueryNotSupported";

/// The server holds no document by that hash (or, with an allow-list, the document is not on
/// it): an APQ client sends the text next.
pub(super) fn not_found() -> ServerError {
    with_code(
        ServerError::new(NOT_FOUND, None),
        ErrorCode::PersistedQueryNotFound,
    )
}

/// The server keeps no documents to find by hash (`GRAPHQL_DOCUMENT_CACHE=0`): an APQ client
/// stops sending hashes.
pub(super) fn not_supported() -> ServerError {
    with_code(
        ServerError::new(NOT_SUPPORTED, None),
        ErrorCode::PersistedQueryNotSupported,
    )
}

/// Whether `response` is only the answer to a hash the server does not know. That is a step of
/// the APQ protocol rather than a failed request, and is answered as Apollo Server answers it
/// (see `http::endpoint`).
pub fn is_persisted_miss(response: &Response) -> bool {
    let miss = [
        ErrorCode::PersistedQueryNotFound.as_str(),
        ErrorCode::PersistedQueryNotSupported.as_str(),
    ];
    !response.errors.is_empty()
        && response
            .errors
            .iter()
            .all(|error| code_of(error).is_some_and(|code| miss.contains(&code)))
}

/// The entries of an allow-list file: a JSON object of sha256 (hex) → document, which is what
/// graphql-codegen's client preset writes to `persisted-documents.json` with
/// `persistedDocuments: { hashAlgorithm: 'sha256' }` (its keys `sha256:<hex>` since its 5.x,
/// bare hex before; both are read). Every key must be the sha256 of its
/// document: a request naming a hash must get the document that hash names.
pub(super) fn read_manifest(path: &Path) -> anyhow::Result<Vec<(DocumentHash, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let entries: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .context("expected a JSON object of sha256 → document, as graphql-codegen writes")?;
    if entries.is_empty() {
        bail!("holds no documents, so nothing could run");
    }
    let mut manifest = Vec::with_capacity(entries.len());
    for (key, document) in entries {
        // Keys are the operator's, but a wrong file could hold anything: quoted in part.
        let name = cut(&key, 80);
        let Some(document) = document.as_str() else {
            bail!("entry {name}: the document is not a string");
        };
        let Some(hash) = DocumentHash::from_hex(key.strip_prefix("sha256:").unwrap_or(&key)) else {
            let hint = match key.len() {
                40 => {
                    " (40 digits is a sha1, the default of older client presets: set \
                       persistedDocuments.hashAlgorithm to 'sha256')"
                }
                _ => "",
            };
            bail!("entry {name}: the key is not a sha256 in hex (64 digits){hint}");
        };
        if hash != DocumentHash::of(document) {
            bail!("entry {name}: the key is not the sha256 of its document");
        }
        manifest.push((hash, document.to_owned()));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_64_hex_digits() {
        let hash = DocumentHash::of("{ __typename }");
        let hex = hash.to_string();
        assert_eq!(hex.len(), 64);
        assert_eq!(DocumentHash::from_hex(&hex), Some(hash));
        assert_eq!(DocumentHash::from_hex(&hex.to_uppercase()), Some(hash));
        for bad in [
            String::new(),
            hex[..63].to_owned(),
            format!("{hex}0"),
            hex.repeat(10),
            hex.replacen(&hex[..1], "g", 1),
            "é".repeat(32),
        ] {
            assert_eq!(DocumentHash::from_hex(&bad), None, "{bad}");
        }
    }

    fn manifest(json: &str) -> anyhow::Result<Vec<(DocumentHash, String)>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("persisted-documents.json");
        std::fs::write(&path, json).unwrap();
        read_manifest(&path)
    }

    #[test]
    fn a_manifest_is_an_object_of_hash_to_document() {
        let doc = "query Me { me { id } }";
        let hash = DocumentHash::of(doc);
        let read = manifest(&serde_json::json!({ hash.to_string(): doc }).to_string()).unwrap();
        assert_eq!(read, vec![(hash, doc.to_owned())]);
        // As the client preset writes it now.
        let prefixed = serde_json::json!({ format!("sha256:{hash}"): doc }).to_string();
        assert_eq!(manifest(&prefixed).unwrap(), vec![(hash, doc.to_owned())]);

        let sha1 = "a".repeat(40);
        for (json, wanted) in [
            ("[]".to_owned(), "expected a JSON object"),
            ("{".to_owned(), "expected a JSON object"),
            ("{}".to_owned(), "holds no documents"),
            (
                format!(r#"{{"{hash}": 1}}"#),
                "the document is not a string",
            ),
            (
                format!(r#"{{"{sha1}": "{doc}"}}"#),
                "hashAlgorithm to 'sha256'",
            ),
            (r#"{"x": "{ a }"}"#.to_owned(), "is not a sha256 in hex"),
            (
                format!(r#"{{"{hash}": "query Me {{ me {{ username }} }}"}}"#),
                "not the sha256 of its document",
            ),
        ] {
            let err = format!("{:#}", manifest(&json).unwrap_err());
            assert!(err.contains(wanted), "{json}: {err}");
        }
        let missing = read_manifest(Path::new("/nonexistent/persisted-documents.json"));
        assert!(format!("{:#}", missing.unwrap_err()).contains("read /nonexistent"));
    }
}
