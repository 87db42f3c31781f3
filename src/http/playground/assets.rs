//! The files the playground page loads, embedded in the binary: GraphiQL and what it runs on,
//! as published on npm (see `assets/playground/README.md`), and our own script and styles.
//!
//! Every path changes when its content does, so that browsers may keep each file for a year:
//! third-party paths hold their package's version, ours a hash of their content.
use std::sync::LazyLock;

use axum::http::HeaderValue;
use sha2::{Digest, Sha256};

pub struct Asset {
    /// Where it is served, under `/playground/`.
    pub path: String,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// The sha256 of `body`, quoted.
    pub etag: HeaderValue,
}

/// The page, with the paths of our own files filled in, and every file it loads.
pub struct Playground {
    pub page: String,
    assets: Vec<Asset>,
}

impl Playground {
    /// Built on first use: hashing the files takes a moment that servers with the playground
    /// off never spend.
    pub fn get() -> &'static Playground {
        static PLAYGROUND: LazyLock<Playground> = LazyLock::new(Playground::build);
        &PLAYGROUND
    }

    pub fn asset(&self, path: &str) -> Option<&Asset> {
        self.assets.iter().find(|asset| asset.path == path)
    }

    fn build() -> Self {
        let mut page = include_str!("page.html").to_owned();
        let mut assets: Vec<Asset> = VENDORED
            .iter()
            .map(|&(path, content_type, body)| Asset::new(path.to_owned(), content_type, body))
            .collect();
        for &(name, content_type, body) in OURS {
            let (stem, extension) = name.rsplit_once('.').unwrap_or((name, ""));
            let hash = hex::encode(Sha256::digest(body));
            let asset = Asset::new(
                format!("{stem}.{}.{extension}", &hash[..16]),
                content_type,
                body,
            );
            page = page.replace(
                &format!("{{{{{name}}}}}"),
                &format!("/playground/{}", asset.path),
            );
            assets.push(asset);
        }
        Self { page, assets }
    }
}

impl Asset {
    fn new(path: String, content_type: &'static str, body: &'static [u8]) -> Self {
        let etag = format!("\"{}\"", hex::encode(Sha256::digest(body)));
        Self {
            path,
            content_type,
            body,
            // Hex digits and quotes only.
            etag: HeaderValue::try_from(etag).unwrap_or(HeaderValue::from_static("\"\"")),
        }
    }
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// A file of `assets/playground/`, served at the same path under `/playground/`.
macro_rules! vendored {
    ($path:literal, $content_type:expr) => {
        (
            $path,
            $content_type,
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/assets/playground/",
                $path
            )) as &[u8],
        )
    };
}

const VENDORED: &[(&str, &str, &[u8])] = &[
    vendored!("react-18.3.1/react.production.min.js", JS),
    vendored!("react-dom-18.3.1/react-dom.production.min.js", JS),
    vendored!("graphiql-3.8.3/graphiql.min.js", JS),
    vendored!("graphiql-3.8.3/graphiql.min.css", CSS),
    vendored!("graphql-ws-5.16.0/graphql-ws.min.js", JS),
];

/// Ours, named in `page.html` as `{{name}}`.
const OURS: &[(&str, &str, &[u8])] = &[
    ("playground.js", JS, include_bytes!("playground.js")),
    ("playground.css", CSS, include_bytes!("playground.css")),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_our_files_by_their_hashed_paths() {
        let playground = Playground::get();
        assert!(!playground.page.contains("{{"), "{}", playground.page);
        let ours = &playground.assets[VENDORED.len()..];
        assert_eq!(ours.len(), OURS.len());
        for asset in ours {
            assert!(!OURS.iter().any(|(name, _, _)| asset.path == *name));
            let href = format!("\"/playground/{}\"", asset.path);
            assert!(
                playground.page.contains(&href),
                "{href} in {}",
                playground.page
            );
        }
    }
}
