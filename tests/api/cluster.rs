//! Several instances on one Postgres database: messages, revocations and socket closes reach
//! every instance, and a dropped LISTEN connection loses nothing.
use sea_orm::{ConnectionTrait, Database};
use serde_json::json;

use crate::{helpers::*, postgres_tests, subscriptions::seqs};

/// Two instances sharing one fresh database.
async fn two_instances(db: &Backend) -> (TestApp, TestApp) {
    let first = spawn_app(db).await;
    let second = spawn_on(first.db.clone(), |_| {}).await;
    (first, second)
}

/// Runs `sql` on the maintenance database, with `{db}` standing for `app`'s database.
async fn admin_sql(app: &TestApp, sql: &str) -> u64 {
    let Some(Backend::Postgres(admin_url)) = Backend::postgres() else {
        unreachable!("postgres tests run with TEST_DATABASE_URL")
    };
    let admin = Database::connect(admin_url.as_str()).await.unwrap();
    let database = app
        .db
        .url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    let rows = admin
        .execute_unprepared(&sql.replace("{db}", database))
        .await
        .unwrap()
        .rows_affected();
    admin.close().await.ok();
    rows
}

/// Cuts every LISTEN connection to `app`'s database and keeps them from coming back: new
/// connections are refused (pools keep the ones they have). Returns how many were cut.
async fn cut_listeners(app: &TestApp) -> u64 {
    admin_sql(app, "ALTER DATABASE {db} ALLOW_CONNECTIONS false").await;
    admin_sql(
        app,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{db}' AND query LIKE 'LISTEN%'",
    )
    .await
}

/// Makes `app` open several database connections, which its pool then keeps: sending through
/// it must not need a new one while new connections are refused.
async fn warm_pool(app: &TestApp, account: &Account) {
    futures_util::future::join_all((0..5).map(|_| app.me(&account.access_token))).await;
}

async fn restore_listeners(app: &TestApp) {
    admin_sql(app, "ALTER DATABASE {db} ALLOW_CONNECTIONS true").await;
}

postgres_tests! {
    async fn messages_sent_on_one_instance_reach_subscribers_on_another(db) {
        let (a, b) = two_instances(&db).await;
        let nia = a.register("nia").await;
        let room = a.create_room(&nia, "cluster", false).await;
        let start = b.send_message(&nia, &room, "start").await;
        let mut ws = a.ws_ready(&nia.access_token).await;
        ws.message_added("s", &room, start["cursor"].as_str()).await;
        let big = "😀".repeat(4000);
        b.send_message(&nia, &room, "via b").await;
        b.send_message(&nia, &room, &big).await;
        a.send_message(&nia, &room, "via a").await;
        let bodies: Vec<_> = [ws.next("s").await, ws.next("s").await, ws.next("s").await]
            .iter()
            .map(|p| p["data"]["messageAdded"]["body"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(bodies, ["via b", big.as_str(), "via a"]);
    }

    async fn logout_on_one_instance_closes_sockets_on_another(db) {
        let (a, b) = two_instances(&db).await;
        let oz = a.register("ozz").await;
        let mut ws = a.ws_ready(&oz.access_token).await;
        b.gql(None, "mutation($t: String!) { logout(refreshToken: $t) }", json!({ "t": oz.refresh_token }))
            .await
            .ok();
        let closed = ws.closed().await;
        assert_eq!((closed.code, closed.reason.as_str()), (4403, "session revoked"));
        // And the access token is refused there too, from its in-memory set.
        assert_eq!(a.me(&oz.access_token).await.message(), Some("session revoked"));
    }

    async fn messages_sent_while_listeners_are_down_are_caught_up(db) {
        let (a, b) = two_instances(&db).await;
        let pat = a.register("pat").await;
        let room = a.create_room(&pat, "resilient", false).await;
        let start = b.send_message(&pat, &room, "start").await;
        let mut ws = a.ws_ready(&pat.access_token).await;
        ws.message_added("s", &room, start["cursor"].as_str()).await;
        b.send_message(&pat, &room, "before").await;
        assert_eq!(seqs(&mut ws, "s", 1).await, [2]);

        warm_pool(&b, &pat).await;
        assert!(cut_listeners(&a).await >= 2, "both instances LISTEN");
        // Nothing announces these, and nothing is sent after them to reveal the gap: only the
        // catch-up after the listener reconnects can deliver them.
        for i in 0..3 {
            b.send_message(&pat, &room, &format!("unheard {i}")).await;
        }
        restore_listeners(&a).await;
        assert_eq!(seqs(&mut ws, "s", 3).await, [3, 4, 5]);
    }

    async fn revocations_announced_while_listeners_are_down_still_close_sockets(db) {
        let (a, b) = two_instances(&db).await;
        let quin = a.register("quin").await;
        let mut ws = a.ws_ready(&quin.access_token).await;
        warm_pool(&b, &quin).await;
        assert!(cut_listeners(&a).await >= 2);
        b.gql(None, "mutation($t: String!) { logout(refreshToken: $t) }", json!({ "t": quin.refresh_token }))
            .await
            .ok();
        restore_listeners(&a).await;
        assert_eq!(ws.closed().await.code, 4403);
        assert_eq!(a.me(&quin.access_token).await.message(), Some("session revoked"));
    }
}
