//! The GraphiQL playground: a page whose every file comes from this server, pinned and
//! cached for a year, under a Content-Security-Policy that allows nothing from elsewhere;
//! off when configured so. `browser` drives it in headless Chromium.
//!
//! The playground does not touch the database, so these run once, on SQLite.
mod browser;
mod chromium;

use chat_server::config::Environment;
use reqwest::{Response, header};
use sha2::{Digest, Sha256};

use crate::helpers::*;

impl TestApp {
    /// `GET /graphql` as a browser navigating to it asks.
    async fn playground_page(&self) -> Response {
        self.client
            .get(self.graphql_url())
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
            .await
            .unwrap()
    }

    async fn get_path(&self, path: &str) -> Response {
        let url = format!("{}{path}", self.url);
        self.client.get(url).send().await.unwrap()
    }
}

/// Every `src="…"` and `href="…"` of a page, in order.
fn referenced_urls(page: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for attribute in [" src=\"", " href=\""] {
        for (start, _) in page.match_indices(attribute) {
            let rest = &page[start + attribute.len()..];
            let end = rest.find('"').expect("a closing quote");
            urls.push(rest[..end].to_owned());
        }
    }
    urls
}

/// The sha256 that `assets/playground/README.md` lists for each vendored file, by path.
fn listed_sha256() -> Vec<(String, String)> {
    let readme = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/playground/README.md"
    ));
    readme
        .lines()
        .filter_map(|line| {
            // "| `path` | package | `sha256` |"
            let cells: Vec<&str> = line
                .split('|')
                .map(|c| c.trim().trim_matches('`'))
                .collect();
            let hash = cells.get(3)?;
            (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| (cells[1].to_owned(), hash.to_string()))
        })
        .collect()
}

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} on {}", response.url()))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn the_page_loads_only_files_of_this_server_each_cached_for_a_year() {
    let app = spawn_app(&Backend::Sqlite).await;
    let response = app.playground_page().await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type"),
        "text/html; charset=utf-8"
    );
    assert_eq!(header(&response, "cache-control"), "no-cache");
    let csp = header(&response, "content-security-policy").to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(
            csp.split(';').any(|d| d.trim() == directive),
            "{directive} in {csp}"
        );
    }
    // Nothing from elsewhere, and no inline script for the policy to have to allow.
    assert!(!csp.contains("http") && !csp.contains('*'), "{csp}");
    let page = response.text().await.unwrap();
    assert!(!page.contains("<script>"), "an inline script: {page}");

    let urls = referenced_urls(&page);
    assert_eq!(
        urls.len(),
        7,
        "four scripts and two styles of GraphiQL, ours: {urls:?}"
    );
    let listed = listed_sha256();
    assert_eq!(listed.len(), 5, "README rows: {listed:?}");
    let mut checked = 0;
    for url in urls {
        let path = url
            .strip_prefix("/playground/")
            .unwrap_or_else(|| panic!("{url} is not a file of this server's playground"));
        let response = app.get_path(&url).await;
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(
            header(&response, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        let wanted_type = match url.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            _ => panic!("{url}: neither a script nor a style sheet"),
        };
        assert_eq!(header(&response, "content-type"), wanted_type, "{url}");
        let etag = header(&response, "etag").to_owned();
        let body = response.bytes().await.unwrap();
        let sha256 = hex::encode(Sha256::digest(&body));
        assert_eq!(etag, format!("\"{sha256}\""), "{url}");
        if path.ends_with(".js") && path.starts_with("playground.") {
            // Subscriptions over graphql-ws, with the Headers tab's token in connection_init.
            let script = String::from_utf8_lossy(&body);
            assert!(script.contains("graphqlWs.createClient"), "{script}");
            assert!(
                script.contains("connectionParams: auth ? { Authorization: auth }"),
                "{script}"
            );
        }
        if let Some((_, listed)) = listed.iter().find(|(listed, _)| listed == path) {
            assert_eq!(&sha256, listed, "{url} is not the file README.md lists");
            checked += 1;
        } else {
            // Ours: the path names the content, so that a new version is a new path.
            assert!(
                path.starts_with("playground.") && path.contains(&sha256[..16]),
                "{url}"
            );
        }
    }
    assert_eq!(
        checked,
        listed.len(),
        "every file README.md lists is on the page"
    );
}

#[tokio::test]
async fn a_cached_file_is_not_sent_again() {
    let app = spawn_app(&Backend::Sqlite).await;
    let path = "/playground/react-18.3.1/react.production.min.js";
    let first = app.get_path(path).await;
    let etag = header(&first, "etag").to_owned();
    for if_none_match in [etag.clone(), format!("W/{etag}, \"other\""), "*".into()] {
        let again = app
            .client
            .get(format!("{}{path}", app.url))
            .header(header::IF_NONE_MATCH, &if_none_match)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "If-None-Match: {if_none_match}");
        assert_eq!(header(&again, "etag"), etag);
        assert!(again.bytes().await.unwrap().is_empty());
    }
    let stale = app
        .client
        .get(format!("{}{path}", app.url))
        .header(header::IF_NONE_MATCH, "\"0000\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
}

#[tokio::test]
async fn unknown_files_are_not_found() {
    let app = spawn_app(&Backend::Sqlite).await;
    for path in [
        "/playground/",
        "/playground/graphiql-3.8.2/graphiql.min.js",
        "/playground/react-18.3.1/LICENSE",
        "/playground/playground.js",
        "/playground/../Cargo.toml",
        "/playground/%2e%2e/%2e%2e/Cargo.toml",
        "/playground/react-18.3.1/react.production.min.js/",
    ] {
        let response = app.get_path(path).await;
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn off_in_production_unless_asked() {
    let production = |playground| {
        move |c: &mut chat_server::config::Config| {
            c.environment = Environment::Production;
            c.http.playground = playground;
        }
    };
    let app = spawn_app_with(&Backend::Sqlite, production(false)).await;
    // A browser gets what any GET without a query gets; its `*/*` is `application/json`.
    let response = app.playground_page().await;
    assert_eq!(response.status(), 400);
    assert!(header(&response, "content-type").starts_with("application/json"));
    assert!(response.headers().get("content-security-policy").is_none());
    let answer = into_gql(response).await;
    assert_eq!(answer.message(), Some("the query parameter is required"));
    let response = app
        .get_path("/playground/react-18.3.1/react.production.min.js")
        .await;
    assert_eq!(response.status(), 404);

    let app = spawn_app_with(&Backend::Sqlite, production(true)).await;
    let response = app.playground_page().await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type").starts_with("text/html"));
    let response = app
        .get_path("/playground/react-18.3.1/react.production.min.js")
        .await;
    assert_eq!(response.status(), 200);
}
