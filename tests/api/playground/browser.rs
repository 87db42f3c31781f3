//! The playground in headless Chromium, offline but for the server: the page loads, a
//! `register` runs, its token goes into the Headers tab, `{ me { username } }` shows the user,
//! and a `messageAdded` subscription (over the socket, authorised by that same header in
//! `connection_init`) shows a message sent meanwhile over HTTP. A screenshot of each step is
//! kept under `target/test-artifacts/playground/`.
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::chromium::{Binaries, Browser};
use crate::helpers::*;

/// The CodeMirror 5 editors GraphiQL 3 renders; each element holds its editor as `.CodeMirror`.
const QUERY_EDITOR: &str = ".graphiql-query-editor .CodeMirror";
const RESPONSE: &str = ".graphiql-response .CodeMirror";
const EXECUTE: &str = ".graphiql-execute-button";

fn screenshots() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .unwrap_or(tmp)
        .join("test-artifacts/playground")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_works_offline_in_chromium() {
    let Some(binaries) = Binaries::find() else {
        // CI installs them and sets REQUIRE_BROWSER, so that there this cannot pass unrun.
        let required = std::env::var("REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "REQUIRE_BROWSER=1, but chromium or chromedriver is not on PATH"
        );
        eprintln!(
            "skipped: chromium/chromedriver not found (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let app = spawn_app(&Backend::Sqlite).await;
    let browser = Browser::start(&binaries, &screenshots()).await;
    println!("screenshots: {}", screenshots().display());

    browser
        .client
        .goto(&app.graphql_url())
        .await
        .expect("the page");
    let editor = format!("return !!document.querySelector('{QUERY_EDITOR}')");
    browser.wait_for("GraphiQL's editors", &editor).await;
    assert_only_this_server(&browser, &app).await;
    browser.screenshot("1-loaded").await;

    // Register in the browser; the token is taken from the response pane.
    let name = "playground";
    let email = format!("{name}@example.com");
    let register = format!(
        "mutation {{ register(input: {{ email: \"{email}\", username: \"{name}\", \
         password: \"{PASSWORD}\" }}) {{ {AUTH_FIELDS} }} }}"
    );
    let answer = run(&browser, &register, "register").await;
    let account = Account::from_payload(&answer["data"]["register"], &email);
    browser.screenshot("2-registered").await;

    // The token into the Headers tab, where a person would paste it.
    browser.click("button[data-name=\"headers\"]").await;
    let headers = json!({ "Authorization": format!("Bearer {}", account.access_token) });
    let set = browser
        .js(
            "const section = document.querySelector('.graphiql-editor-tool');
             if (section.getAttribute('aria-label') !== 'Headers') return false;
             // The variables editor is there too, hidden.
             const shown = section.querySelector('.graphiql-editor:not(.hidden) .CodeMirror');
             shown.CodeMirror.setValue(arguments[0]);
             return true;",
            vec![json!(serde_json::to_string_pretty(&headers).unwrap())],
        )
        .await;
    assert_eq!(set, json!(true), "the Headers tab is open");
    browser.screenshot("3-headers").await;

    let answer = run(&browser, "{ me { username } }", "me").await;
    assert_eq!(answer, json!({ "data": { "me": { "username": name } } }));
    browser.screenshot("4-me").await;

    // A room and a first message over HTTP; the subscription resumes after that message,
    // so the next one arrives whether it is sent before or after the socket subscribes.
    let room = app.create_room(&account, "playground", false).await;
    let first = app
        .send_message(&account, &room, "before the subscription")
        .await;
    let cursor = first["cursor"].as_str().expect("a cursor");
    let subscription = format!(
        "subscription {{ messageAdded(roomId: \"{room}\", after: \"{cursor}\") {{ body }} }}"
    );
    set_query(&browser, &subscription).await;
    browser.click(EXECUTE).await;
    let body = "sent meanwhile over HTTP";
    app.send_message(&account, &room, body).await;
    let answer = wait_for_response(&browser, "the message in the subscription").await;
    assert_eq!(
        answer,
        json!({ "data": { "messageAdded": { "body": body } } })
    );
    browser.screenshot("5-subscription").await;

    // A dialog: GraphiQL then adds a <style> element, which the policy must allow.
    browser.click("[aria-label=\"Open settings dialog\"]").await;
    browser
        .wait_for(
            "the settings dialog",
            "return !!document.querySelector('[role=dialog]')",
        )
        .await;
    browser.screenshot("6-settings").await;

    assert_only_this_server(&browser, &app).await;
    assert_no_policy_violations(&browser).await;
    let outside = browser.outside_requests();
    if !outside.is_empty() {
        // Chromium's own traffic, refused at the proxy; the page's is checked above.
        println!("refused at the proxy: {outside:?}");
    }
    browser.close().await;
}

/// Puts `query` in the editor, and waits until GraphiQL has parsed it (100 ms after a change):
/// what it runs, and whether over HTTP or the socket, follows the parsed document.
async fn set_query(browser: &Browser, query: &str) {
    let script =
        format!("document.querySelector('{QUERY_EDITOR}').CodeMirror.setValue(arguments[0])");
    browser.js(&script, vec![json!(query)]).await;
    let parsed = format!(
        "const ast = document.querySelector('{QUERY_EDITOR}').CodeMirror.documentAST;
         return !!ast && !!ast.loc && ast.loc.source.body === {};",
        json!(query)
    );
    browser
        .wait_for("GraphiQL to parse the query", &parsed)
        .await;
}

/// Puts `query` in the editor, clears the response pane, clicks run, and waits for an answer.
async fn run(browser: &Browser, query: &str, what: &str) -> Value {
    set_query(browser, query).await;
    let clear = format!("document.querySelector('{RESPONSE}').CodeMirror.setValue('')");
    browser.js(&clear, vec![]).await;
    browser.click(EXECUTE).await;
    wait_for_response(browser, what).await
}

/// The response pane's JSON, once it holds `data` or `errors`.
async fn wait_for_response(browser: &Browser, what: &str) -> Value {
    let script = format!(
        "try {{
             const answer = JSON.parse(document.querySelector('{RESPONSE}').CodeMirror.getValue());
             return answer.data || answer.errors ? answer : null;
         }} catch (_) {{ return null; }}"
    );
    browser.wait_for(what, &script).await
}

/// The page and everything it fetched came from the server under test.
async fn assert_only_this_server(browser: &Browser, app: &TestApp) {
    let urls = browser
        .js(
            "return performance.getEntriesByType('navigation')
                 .concat(performance.getEntriesByType('resource'))
                 .map((entry) => entry.name)",
            vec![],
        )
        .await;
    let urls: Vec<&str> = urls
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let origin = format!("{}/", app.url);
    let elsewhere: Vec<_> = urls
        .iter()
        .filter(|url| !url.starts_with(&origin))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "fetched from elsewhere: {elsewhere:?}"
    );
    let files = urls
        .iter()
        .filter(|url| url.contains("/playground/"))
        .count();
    assert_eq!(files, 7, "the page's seven files: {urls:?}");
}

/// Nothing the page did was refused by its Content-Security-Policy (Chromium keeps the
/// reports, and hands them to an observer that asks for the buffered ones).
async fn assert_no_policy_violations(browser: &Browser) {
    let reports = browser
        .js(
            "return new Promise((resolve) => {
                 const seen = [];
                 const observer = new ReportingObserver((reports) => seen.push(...reports),
                     { types: ['csp-violation'], buffered: true });
                 observer.observe();
                 setTimeout(() => {
                     seen.push(...observer.takeRecords());
                     resolve(seen.map((report) => JSON.stringify(report.body)));
                 }, 200);
             })",
            vec![],
        )
        .await;
    assert_eq!(reports, json!([]), "Content-Security-Policy violations");
}
