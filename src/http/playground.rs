//! The GraphiQL playground served to browsers on `GET /graphql`. It is pre-set with the
//! subscription endpoint and a Headers tab holding an `Authorization` header to fill in.
pub fn html() -> &'static str {
    include_str!("playground.html")
}
