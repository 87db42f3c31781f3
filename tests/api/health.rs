use serde_json::json;

use crate::{db_tests, helpers::*};

db_tests! {
    async fn probes_answer(db) {
        let app = spawn_app(&db).await;
        let health = app.client.get(format!("{}/healthz", app.url)).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let ready = app.client.get(format!("{}/readyz", app.url)).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        assert_eq!(ready.json::<serde_json::Value>().await.unwrap()["status"], "ready");
    }

    async fn metrics_are_prometheus_text(db) {
        let app = spawn_app_with(&db, |c| c.limits.login_per_ip = 1).await;
        app.query("{ __typename }").await.ok();
        app.login_raw("nobody", "wrong password").await.expect_code("UNAUTHENTICATED");
        app.login_raw("nobody", "wrong password").await.expect_code("RATE_LIMITED");
        // A socket that subscribes, gets a delivery, and is closed with a code.
        let ola = app.register("ola").await;
        let room = app.create_room(&ola, "metered", false).await;
        // From a cursor: the send is replayed if it beats the subscription's start.
        let before = app.send_message(&ola, &room, "before").await;
        let mut ws = app.ws_ready(&ola.access_token).await;
        ws.message_added("s", &room, before["cursor"].as_str()).await;
        ws.sync().await;
        app.send_message(&ola, &room, "counted").await;
        ws.next("s").await;
        ws.send(json!({ "type": "bogus" })).await;
        assert_eq!(ws.closed().await.code, 4400);
        // Methods a client makes up are one series, not one each.
        for n in 0..200 {
            let method = reqwest::Method::from_bytes(format!("INVENTED{n}").as_bytes()).unwrap();
            app.client.request(method, app.graphql_url()).send().await.unwrap();
        }
        let response = app.client.get(format!("{}/metrics", app.url)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let text = response.text().await.unwrap();
        for metric in [
            "http_requests_total",
            "http_request_duration_seconds_bucket",
            "auth_login_failures_total",
            "graphql_errors_total{code=\"UNAUTHENTICATED\"}",
            "graphql_errors_total{code=\"RATE_LIMITED\"}",
            "rate_limited_total{limit=\"login_ip\"}",
            "ws_connections",
            "ws_subscriptions",
            "ws_deliveries_total",
            "ws_closes_total{code=\"4400\"}",
            "chat_messages_sent_total",
            "method=\"other\"",
        ] {
            assert!(text.contains(metric), "/metrics lacks {metric}:\n{text}");
        }
        assert!(!text.contains("INVENTED"), "{text}");
    }

    async fn responses_carry_a_request_id(db) {
        let app = spawn_app(&db).await;
        let response = app.client.get(format!("{}/healthz", app.url)).send().await.unwrap();
        let id = response.headers().get("x-request-id").expect("x-request-id").to_str().unwrap();
        assert_eq!(id.len(), 36, "a UUID: {id}");
        // A caller's own id is kept, so logs on both sides line up.
        let response = app
            .client
            .get(format!("{}/healthz", app.url))
            .header("x-request-id", "trace-me-123")
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-request-id"], "trace-me-123");
    }
}

/// With `METRICS_ADDR`, `/metrics` is served there only (Prometheus scrapes it privately), and
/// nothing else is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_an_address_of_their_own() {
    let app = spawn_app_with(&Backend::Sqlite, |c| {
        c.http.metrics_addr = Some("127.0.0.1:0".parse().unwrap())
    })
    .await;
    app.query("{ __typename }").await.ok();
    let public = app
        .client
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    let private = app.metrics_url.clone().expect("a metrics address");
    let response = app
        .client
        .get(format!("{private}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("http_requests_total")
    );
    let api = app
        .client
        .get(format!("{private}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404);
}
