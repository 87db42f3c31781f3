//! `schema.graphql` is the generated, committed copy of the schema; SDKs are built from it.

#[test]
fn committed_schema_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql exists at the project root");
    let generated = chat_server::graphql::sdl();
    assert!(
        committed == generated,
        "schema.graphql is out of date: run `cargo run -- print-schema > schema.graphql`"
    );
}

#[test]
fn core_contract_types_are_present() {
    let sdl = chat_server::graphql::sdl();
    for expected in [
        "scalar DateTime",
        "enum Role {\n\tUSER\n\tADMIN\n}",
        "me: User!",
        "register(input: RegisterInput!): AuthPayload!",
        "login(input: LoginInput!): AuthPayload!",
        // The contract's `refresh` and `logout`, their token widened to optional (a safe change
        // of a schema: every call the contract allows means what it did). Absent, it comes
        // from the browser session's cookie (`AUTH_COOKIES`).
        "refresh(refreshToken: String): AuthPayload!",
        "logout(refreshToken: String): Boolean!",
        // The contract's `logoutAll`, with an optional argument: without it, the same call.
        "logoutAll(exceptCurrent: Boolean = false): Int!",
        // Nullable with a default, as the contract's `CreateRoomInput` has it.
        "isPrivate: Boolean = false\n}",
        "scalar DateTime @specifiedBy(url: ",
    ] {
        assert!(sdl.contains(expected), "schema lacks `{expected}`");
    }
}
