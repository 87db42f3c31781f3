//! GraphQL over HTTP, as the spec and the `graphql-http` audit check it.
use serde_json::{Value, json};

use crate::{db_tests, helpers::*};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";
/// What a current client sends: the type under which request errors are 4xx.
const STRICT: Option<&str> = Some("application/graphql-response+json");

impl TestApp {
    async fn post_raw(
        &self,
        accept: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Gql {
        // A client of its own: the suite's sends an `Accept` header by default.
        let mut request = reqwest::Client::new()
            .post(self.graphql_url())
            .header("content-type", content_type)
            .body(body);
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        into_gql(request.send().await.unwrap()).await
    }

    async fn get_raw(&self, accept: Option<&str>, params: &[(&str, &str)]) -> reqwest::Response {
        let mut request = reqwest::Client::new().get(self.graphql_url()).query(params);
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        request.send().await.unwrap()
    }
}

fn body(query: &str) -> String {
    json!({ "query": query }).to_string()
}

db_tests! {
    async fn content_type_follows_accept(db) {
        let app = spawn_app(&db).await;
        // No `Accept` and `*/*` are `application/json`: the two SHOULDs of the audit.
        let cases = [
            (None, JSON),
            (Some("application/graphql-response+json"), GRAPHQL_RESPONSE),
            (Some("application/json"), JSON),
            (Some("*/*"), JSON),
            (Some("application/graphql-response+json, application/json"), GRAPHQL_RESPONSE),
            (Some("application/graphql-response+json;q=0.9, application/json"), JSON),
        ];
        for (accept, expected) in cases {
            let answer = app.post_raw(accept, "application/json", body("{ __typename }")).await;
            assert_eq!(answer.status, 200);
            assert_eq!(answer.content_type, expected, "Accept: {accept:?}");
            assert_eq!(answer.body, json!({ "data": { "__typename": "Query" } }));
        }
        let refused = app.post_raw(Some("text/plain"), "application/json", body("{ __typename }")).await;
        assert_eq!(refused.status, 406);
    }

    async fn request_errors_are_400_with_graphql_response_json(db) {
        let app = spawn_app(&db).await;
        let cases = [
            ("{ __typename", "GRAPHQL_PARSE_FAILED"),
            ("{ nope }", "GRAPHQL_VALIDATION_FAILED"),
            ("query A { __typename } query B { __typename }", "GRAPHQL_VALIDATION_FAILED"),
            ("subscription { __typename }", "GRAPHQL_VALIDATION_FAILED"),
        ];
        for (query, code) in cases {
            let strict = app.post_raw(STRICT, "application/json", body(query)).await;
            assert_eq!(strict.status, 400, "{query}: {}", strict.body);
            strict.expect_code(code);
            assert!(strict.body.get("data").is_none(), "no data entry: {}", strict.body);

            // The legacy media type answers every GraphQL response with 200.
            let legacy = app.post_raw(Some("application/json"), "application/json", body(query)).await;
            assert_eq!(legacy.status, 200, "{query}");
            legacy.expect_code(code);
        }
    }

    async fn variables_that_do_not_coerce_are_bad_user_input(db) {
        let app = spawn_app(&db).await;
        let query = "query($first: Int) { users(first: $first) { edges { cursor } } }";
        let post = |variables: Value| {
            let app = &app;
            async move {
                app.post_raw(STRICT, "application/json", json!({ "query": query, "variables": variables }).to_string())
                    .await
            }
        };
        for variables in [json!({ "first": "ten" }), json!({ "first": 1.5 }), json!({ "first": [1] })] {
            let answer = post(variables.clone()).await;
            assert_eq!(answer.status, 400, "{variables}: {}", answer.body);
            answer.expect_code("BAD_USER_INPUT");
            assert_eq!(answer.field(), Some("first"));
        }
        // A required variable that is missing, even though the document is valid.
        let missing = app
            .post_raw(STRICT, "application/json", body("mutation($t: String!) { logout(refreshToken: $t) }"))
            .await;
        assert_eq!(missing.status, 400);
        missing.expect_code("BAD_USER_INPUT");
        assert_eq!(missing.field(), Some("t"));
        // Input objects are checked field by field.
        let register = "mutation($i: RegisterInput!) { register(input: $i) { tokenType } }";
        let incomplete = app
            .post_raw(STRICT, "application/json", json!({ "query": register, "variables": { "i": { "email": "a@b.co" } } }).to_string())
            .await;
        incomplete.expect_code("BAD_USER_INPUT");
        let extra = app
            .post_raw(STRICT, "application/json", json!({ "query": register, "variables": { "i": {
                "email": "a@b.co", "username": "abc", "password": "12345678", "admin": true } } }).to_string())
            .await;
        extra.expect_code("BAD_USER_INPUT");
    }

    async fn malformed_bodies_are_400(db) {
        let app = spawn_app(&db).await;
        let bodies = [
            "{",
            "",
            "null",
            "42",
            r#"{"variables": {}}"#,
            r#"{"query": null}"#,
            r#"{"query": 42}"#,
            r#"{"query": "{ __typename }", "variables": "{}"}"#,
            r#"{"query": "{ __typename }", "variables": []}"#,
            r#"{"query": "{ __typename }", "operationName": 1}"#,
            "[]",
        ];
        for raw in bodies {
            let answer = app.post_raw(STRICT, "application/json", raw).await;
            assert_eq!(answer.status, 400, "{raw:?}: {}", answer.body);
            answer.expect_code("BAD_USER_INPUT");
        }
        // No document at all, whole or by hash, is not a GraphQL request: 400 under
        // `application/json` too (the audit's MAYs), as a body that is not JSON is.
        for raw in [r#"{"qeury": "{ __typename }"}"#, r#"{"extensions": {}}"#, r#"{"query": null}"#] {
            for accept in [None, Some("application/json"), STRICT] {
                let answer = app.post_raw(accept, "application/json", raw).await;
                assert_eq!(answer.status, 400, "{raw:?} {accept:?}: {}", answer.body);
                answer.expect_code("BAD_USER_INPUT");
            }
        }
        let response = app.get_raw(None, &[("extensions", "{}")]).await;
        assert_eq!(response.status(), 400);
        // Null variables are the same as none.
        let answer = app
            .post_raw(STRICT, "application/json", r#"{"query": "{ __typename }", "variables": null}"#)
            .await;
        answer.ok();
    }

    async fn only_json_bodies_are_accepted(db) {
        let app = spawn_app(&db).await;
        for content_type in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/json; charset=latin1",
        ] {
            let answer = app.post_raw(STRICT, content_type, body("{ __typename }")).await;
            assert_eq!(answer.status, 415, "{content_type}");
        }
        let answer = app.post_raw(STRICT, "application/json; charset=utf-8", body("{ __typename }")).await;
        answer.ok();
        let no_type = app.client.post(app.graphql_url()).body(body("{ __typename }")).send().await.unwrap();
        assert_eq!(no_type.status(), 415);
    }

    async fn oversized_bodies_are_413(db) {
        let app = spawn_app_with(&db, |c| c.http.max_body_bytes = 1024).await;
        let big = body(&format!("{{ __typename }} # {}", "x".repeat(2048)));
        let answer = app.post_raw(STRICT, "application/json", big).await;
        assert_eq!(answer.status, 413);
    }

    async fn get_runs_queries_only(db) {
        let app = spawn_app(&db).await;
        let response = app.get_raw(STRICT, &[("query", "{ __typename }")]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(into_gql(response).await.body, json!({ "data": { "__typename": "Query" } }));

        let response = app
            .get_raw(Some("application/json"), &[
                ("query", "query Q($first: Int) { users(first: $first) { edges { cursor } } }"),
                ("variables", r#"{"first": 1}"#),
                ("operationName", "Q"),
            ])
            .await;
        // Reaches execution (the guard), so the variables were taken.
        into_gql(response).await.expect_code("UNAUTHENTICATED");

        let response = app.get_raw(STRICT, &[("query", "mutation { logout(refreshToken: \"x\") }")]).await;
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "POST");

        // The mutation in a document is fine when the selected operation is a query.
        let doc = "query Q { __typename } mutation M { logoutAll }";
        let response = app.get_raw(STRICT, &[("query", doc), ("operationName", "M")]).await;
        assert_eq!(response.status(), 405);
        let response = app.get_raw(STRICT, &[("query", doc), ("operationName", "Q")]).await;
        assert_eq!(response.status(), 200);

        let response = app.get_raw(STRICT, &[("query", "{ __typename }"), ("variables", "[1]")]).await;
        assert_eq!(response.status(), 400);
        let response = app.get_raw(STRICT, &[]).await;
        assert_eq!(response.status(), 400);
        let response = app.get_raw(STRICT, &[("query", "{")]).await;
        assert_eq!(response.status(), 400);
        into_gql(response).await.expect_code("GRAPHQL_PARSE_FAILED");
    }

    async fn browsers_get_the_playground(db) {
        let app = spawn_app(&db).await;
        let response = app
            .get_raw(Some("text/html,application/xhtml+xml,*/*;q=0.8"), &[])
            .await;
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let page = response.text().await.unwrap();
        assert!(page.contains("graphiql"), "GraphiQL");
        // Its script and what it sets up: tests/api/playground.
        assert!(page.contains("graphql-ws"), "subscriptions over graphql-ws");
        // A browser that asks for data gets data.
        let response = app.get_raw(Some("text/html,*/*;q=0.8"), &[("query", "{ __typename }")]).await;
        assert_eq!(into_gql(response).await.body["data"]["__typename"], "Query");
    }

    async fn batches_answer_in_order(db) {
        let app = spawn_app(&db).await;
        let batch = json!([{ "query": "{ __typename }" }, { "query": "{ me { id } }" }, { "query": "{" }]);
        let answer = app.post_raw(STRICT, "application/json", batch.to_string()).await;
        assert_eq!(answer.status, 200);
        let items = answer.body.as_array().expect("an array");
        assert_eq!(items.len(), 3);
        assert_eq!(items[0]["data"]["__typename"], "Query");
        assert_eq!(items[1]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        assert_eq!(items[2]["errors"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED");
        let too_many: Vec<Value> = (0..17).map(|_| json!({ "query": "{ __typename }" })).collect();
        let answer = app.post_raw(STRICT, "application/json", Value::Array(too_many).to_string()).await;
        assert_eq!(answer.status, 400);
    }

    async fn cors_preflight_allows_bearer_tokens(db) {
        let app = spawn_app(&db).await;
        let response = app
            .client
            .request(reqwest::Method::OPTIONS, app.graphql_url())
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], "*");
        let allowed = headers["access-control-allow-headers"].to_str().unwrap();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"), "{allowed}");
    }

    async fn cors_origins_can_be_restricted(db) {
        let app = spawn_app_with(&db, |c| c.http.cors_origins = Some(vec!["https://app.example".into()])).await;
        let preflight = |origin: &'static str| {
            let app = &app;
            async move {
                app.client
                    .request(reqwest::Method::OPTIONS, app.graphql_url())
                    .header("origin", origin)
                    .header("access-control-request-method", "POST")
                    .send()
                    .await
                    .unwrap()
            }
        };
        let allowed = preflight("https://app.example").await;
        assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example");
        let denied = preflight("https://evil.example").await;
        assert!(denied.headers().get("access-control-allow-origin").is_none());
    }
}
