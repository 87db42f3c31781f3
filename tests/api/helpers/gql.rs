//! GraphQL over HTTP as a client sends it, and the accounts tests sign in as.
use super::*;

/// An HTTP answer to a GraphQL request.
#[derive(Debug)]
pub struct Gql {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Gql {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// The `extensions.code` of the first error, if any.
    pub fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }

    pub fn message(&self) -> Option<&str> {
        self.body["errors"][0]["message"].as_str()
    }

    pub fn field(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["field"].as_str()
    }

    /// Panics with the whole answer unless it succeeded without errors.
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert!(
            self.status == 200 && self.body.get("errors").is_none(),
            "expected success, got {} {}",
            self.status,
            self.body
        );
        self.data()
    }

    /// Panics unless the first error has `code`.
    #[track_caller]
    pub fn expect_code(&self, code: &str) -> &Self {
        assert_eq!(
            self.code(),
            Some(code),
            "answer: {} {}",
            self.status,
            self.body
        );
        self
    }
}

/// A signed-in user, as the test sees it.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl Account {
    pub fn from_payload(payload: &Value, email: &str) -> Self {
        Self {
            id: payload["user"]["id"].as_str().expect("user id").to_owned(),
            username: payload["user"]["username"]
                .as_str()
                .expect("username")
                .to_owned(),
            email: email.to_owned(),
            access_token: payload["accessToken"]
                .as_str()
                .expect("accessToken")
                .to_owned(),
            refresh_token: payload["refreshToken"]
                .as_str()
                .expect("refreshToken")
                .to_owned(),
        }
    }
}

pub const AUTH_FIELDS: &str =
    "accessToken refreshToken tokenType expiresIn user { id username email role createdAt }";

impl TestApp {
    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.url)
    }

    /// POSTs a GraphQL request, with a bearer token if given.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Gql {
        let mut request = self
            .client
            .post(self.graphql_url())
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        into_gql(request.send().await.expect("request")).await
    }

    pub async fn query(&self, query: &str) -> Gql {
        self.gql(None, query, json!({})).await
    }

    pub async fn register(&self, username: &str) -> Account {
        let email = format!("{username}@example.com");
        self.try_register(&email, username, PASSWORD).await
    }

    pub async fn try_register(&self, email: &str, username: &str, password: &str) -> Account {
        let answer = self.register_raw(email, username, password).await;
        Account::from_payload(&answer.ok()["register"], &email.to_lowercase())
    }

    pub async fn register_raw(&self, email: &str, username: &str, password: &str) -> Gql {
        self.gql(
            None,
            &format!(
                "mutation($input: RegisterInput!) {{ register(input: $input) {{ {AUTH_FIELDS} }} }}"
            ),
            json!({ "input": { "email": email, "username": username, "password": password } }),
        )
        .await
    }

    pub async fn login_raw(&self, login: &str, password: &str) -> Gql {
        self.gql(
            None,
            &format!(
                "mutation($input: LoginInput!) {{ login(input: $input) {{ {AUTH_FIELDS} }} }}"
            ),
            json!({ "input": { "login": login, "password": password } }),
        )
        .await
    }

    pub async fn login(&self, account: &Account) -> Account {
        let answer = self.login_raw(&account.username, PASSWORD).await;
        Account::from_payload(&answer.ok()["login"], &account.email)
    }

    pub async fn refresh_raw(&self, refresh_token: &str) -> Gql {
        self.gql(
            None,
            &format!("mutation($t: String!) {{ refresh(refreshToken: $t) {{ {AUTH_FIELDS} }} }}"),
            json!({ "t": refresh_token }),
        )
        .await
    }

    pub async fn refresh(&self, account: &Account) -> Account {
        let answer = self.refresh_raw(&account.refresh_token).await;
        Account::from_payload(&answer.ok()["refresh"], &account.email)
    }

    pub async fn me(&self, token: &str) -> Gql {
        self.gql(
            Some(token),
            "{ me { id username email role createdAt } }",
            json!({}),
        )
        .await
    }
}

pub async fn into_gql(response: reqwest::Response) -> Gql {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Gql {
        status,
        content_type,
        body,
    }
}

/// Signs claims with the test secret, for tokens the server would never issue.
pub fn forge_token(claims: &Value, key: &[u8], algorithm: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(algorithm),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .expect("sign")
}

/// The claims of a token the server issued.
pub fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("JWT payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("claims JSON")
}
