//! Browser sessions (`AUTH_COOKIES=true`): the refresh token in an `HttpOnly` cookie, used by
//! `refresh` and `logout` with the CSRF header, and by a same-site socket's `connection_init`.
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::{db_tests, helpers::*};

const APP_ORIGIN: &str = "https://app.example";
const REFRESH: &str = "mutation { refresh { accessToken refreshToken user { id } } }";
const LOGOUT: &str = "mutation { logout }";

async fn cookie_app(db: &Backend) -> TestApp {
    spawn_app_with(db, |c| {
        c.http.auth_cookies = true;
        c.http.cors_origins = Some(vec![APP_ORIGIN.to_owned()]);
    })
    .await
}

/// POSTs `query` with these headers, as a browser page would; the answer and its headers.
async fn post(
    app: &TestApp,
    query: &str,
    variables: Value,
    headers: &[(&str, &str)],
) -> (Gql, HeaderMap) {
    let mut request = app
        .client
        .post(app.graphql_url())
        .json(&json!({ "query": query, "variables": variables }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request");
    let headers = response.headers().clone();
    (into_gql(response).await, headers)
}

/// The `Set-Cookie` lines of an answer.
fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The refresh cookie an answer sets: its value and its attributes.
fn refresh_cookie(headers: &HeaderMap) -> (String, Vec<String>) {
    let lines = set_cookies(headers);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let mut parts = lines[0].split("; ");
    let value = parts
        .next()
        .unwrap()
        .strip_prefix("chat_refresh_token=")
        .expect("the refresh cookie")
        .to_owned();
    (value, parts.map(str::to_owned).collect())
}

fn with_cookie(value: &str) -> String {
    format!("theme=dark; chat_refresh_token={value}")
}

db_tests! {
    async fn a_browser_session_lives_in_an_http_only_cookie(db) {
        let app = cookie_app(&db).await;
        let register = format!("mutation($i: RegisterInput!) {{ register(input: $i) {{ {AUTH_FIELDS} }} }}");
        let input = json!({ "i": { "email": "ana@example.com", "username": "ana", "password": PASSWORD } });
        let (answer, headers) = post(&app, &register, input, &[]).await;
        let ana = Account::from_payload(&answer.ok()["register"], "ana@example.com");
        let (cookie, attributes) = refresh_cookie(&headers);
        assert_eq!(cookie, ana.refresh_token);
        assert_eq!(attributes, ["Max-Age=2592000", "Path=/graphql", "HttpOnly", "Secure", "SameSite=Strict"]);

        // A refresh by cookie rotates it; the body says the same as the cookie.
        let csrf = ("x-csrf-protection", "1");
        let (answer, headers) = post(&app, REFRESH, json!({}), &[("cookie", &with_cookie(&cookie)), csrf]).await;
        let refreshed = &answer.ok()["refresh"];
        assert_eq!(refreshed["user"]["id"], json!(ana.id));
        let (rotated, _) = refresh_cookie(&headers);
        assert_eq!(refreshed["refreshToken"], json!(rotated));
        assert_ne!(rotated, cookie);
        assert_eq!(app.me(refreshed["accessToken"].as_str().unwrap()).await.ok()["me"]["id"], json!(ana.id));

        // Without the CSRF header the cookie is not used, and stays good.
        let (answer, headers) = post(&app, REFRESH, json!({}), &[("cookie", &with_cookie(&rotated))]).await;
        answer.expect_code("FORBIDDEN");
        assert!(answer.message().unwrap().contains("X-CSRF-Protection"), "{:?}", answer.body);
        assert!(set_cookies(&headers).is_empty());
        let (answer, headers) = post(&app, LOGOUT, json!({}), &[("cookie", &with_cookie(&rotated))]).await;
        answer.expect_code("FORBIDDEN");
        assert!(set_cookies(&headers).is_empty());
        // Nor without a cookie at all.
        let (answer, _) = post(&app, REFRESH, json!({}), &[csrf]).await;
        assert_eq!((answer.code(), answer.field()), (Some("BAD_USER_INPUT"), Some("refreshToken")));

        // A socket of a page of this site signs in with the cookie alone.
        let origin = app.url.clone();
        let mut socket = app.ws_with_headers(Some(TRANSPORT_WS), &[("origin", &origin), ("cookie", &with_cookie(&rotated))]).await;
        socket.init(json!({})).await;
        socket.subscribe("me", "{ me { id } }", json!({})).await;
        assert_eq!(socket.next("me").await["data"]["me"]["id"], json!(ana.id));
        assert_eq!(socket.recv().await["type"], "complete");
        // One of another site's page gets nothing from it.
        let mut hostile = app.ws_with_headers(Some(TRANSPORT_WS), &[("origin", "https://evil.example"), ("cookie", &with_cookie(&rotated))]).await;
        hostile.send(json!({ "type": "connection_init", "payload": {} })).await;
        assert_eq!(hostile.closed().await, Closed { code: 4403, reason: "missing token".into() });

        // Logging out ends the session (its socket closes), and clears the cookie.
        let (answer, headers) = post(&app, LOGOUT, json!({}), &[("cookie", &with_cookie(&rotated)), csrf]).await;
        assert_eq!(answer.ok()["logout"], true);
        let (cleared, attributes) = refresh_cookie(&headers);
        assert_eq!((cleared.as_str(), attributes[0].as_str()), ("", "Max-Age=0"));
        assert_eq!(socket.closed().await, Closed { code: 4403, reason: "session revoked".into() });
        // A stale cookie that a browser still sends is refused, and cleared again.
        let (answer, headers) = post(&app, REFRESH, json!({}), &[("cookie", &with_cookie(&rotated)), csrf]).await;
        answer.expect_code("UNAUTHENTICATED");
        assert_eq!(refresh_cookie(&headers).0, "");
        let mut late = app.ws_with_headers(Some(TRANSPORT_WS), &[("origin", &origin), ("cookie", &with_cookie(&rotated))]).await;
        late.send(json!({ "type": "connection_init", "payload": {} })).await;
        assert_eq!(late.closed().await, Closed { code: 4403, reason: "session revoked".into() });
    }

    async fn credentials_go_to_the_configured_origins_only(db) {
        let app = cookie_app(&db).await;
        let preflight = |origin: &'static str| {
            app.client
                .request(reqwest::Method::OPTIONS, app.graphql_url())
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type,x-csrf-protection")
                .send()
        };
        let allowed = preflight(APP_ORIGIN).await.unwrap();
        let header = |name: &str| allowed.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(header("access-control-allow-origin").as_deref(), Some(APP_ORIGIN));
        assert_eq!(header("access-control-allow-credentials").as_deref(), Some("true"));
        assert!(header("access-control-allow-headers").unwrap().contains("x-csrf-protection"));
        let refused = preflight("https://evil.example").await.unwrap();
        // Without its origin named, a browser lets the page read nothing, credentials or not.
        assert!(refused.headers().get("access-control-allow-origin").is_none());

        // A batch sets the cookie of each operation that issues one.
        let ana = app.register("ana").await;
        let login = || json!({
            "query": "mutation($l: String!, $p: String!) { login(input: { login: $l, password: $p }) { refreshToken } }",
            "variables": { "l": ana.username, "p": PASSWORD },
        });
        let response = app.client.post(app.graphql_url()).json(&json!([login(), login()])).send().await.unwrap();
        let cookies = set_cookies(response.headers());
        let answers: Value = response.json().await.unwrap();
        for (answer, cookie) in answers.as_array().unwrap().iter().zip(&cookies) {
            let token = answer["data"]["login"]["refreshToken"].as_str().unwrap();
            assert!(cookie.starts_with(&format!("chat_refresh_token={token};")), "{cookie}");
        }
        assert_eq!(cookies.len(), 2);
    }

    async fn headers_only_is_the_default(db) {
        let app = spawn_app(&db).await;
        let register = format!("mutation($i: RegisterInput!) {{ register(input: $i) {{ {AUTH_FIELDS} }} }}");
        let input = json!({ "i": { "email": "ana@example.com", "username": "ana", "password": PASSWORD } });
        let (answer, headers) = post(&app, &register, input, &[]).await;
        let ana = Account::from_payload(&answer.ok()["register"], "ana@example.com");
        assert!(set_cookies(&headers).is_empty());
        // A cookie is ignored: the token is an argument or nothing.
        let cookie = with_cookie(&ana.refresh_token);
        let (answer, _) = post(&app, REFRESH, json!({}), &[("cookie", &cookie), ("x-csrf-protection", "1")]).await;
        assert_eq!((answer.code(), answer.message()), (Some("BAD_USER_INPUT"), Some("refreshToken is required")));
        let mut socket = app.ws_with_headers(Some(TRANSPORT_WS), &[("origin", &app.url.clone()), ("cookie", &cookie)]).await;
        socket.send(json!({ "type": "connection_init", "payload": {} })).await;
        assert_eq!(socket.closed().await.code, 4403);
        // And no origin gets credentials.
        let preflight = app.client
            .request(reqwest::Method::OPTIONS, app.graphql_url())
            .header("origin", APP_ORIGIN)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.headers().get("access-control-allow-origin").unwrap(), "*");
        assert!(preflight.headers().get("access-control-allow-credentials").is_none());
    }
}
