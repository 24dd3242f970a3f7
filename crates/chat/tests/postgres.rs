//! The PostgreSQL store against a real server of the test's own, reached
//! over its Unix socket: accounts, sanctions and history behave as they do
//! in SQLite, the schema is migrated once and a newer one refused.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat::history::{HistoryStore, Retention, Stored};
use chat::name::Username;
use chat::postgres::{Postgres, SCHEMA_VERSION};
use chat::store::{AccountStore, Sanction, SanctionKind, StoreError};

/// The store's calls block on the runtime it connected from, so they are
/// made from this thread, outside it.
fn connect(runtime: &tokio::runtime::Runtime, url: &str) -> Result<Postgres, StoreError> {
    runtime.block_on(Postgres::connect(url))
}

fn name(text: &str) -> Username {
    Username::parse(text).unwrap()
}

#[test]
fn accounts_and_sanctions_as_in_sqlite() {
    let Some(server) = testkit::Postgres::start() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = connect(&runtime, &server.socket_url()).unwrap();
    store.register(&name("Alice"), "correct horse").unwrap();
    assert!(matches!(
        store.register(&name("aLiCe"), "another one"),
        Err(StoreError::NameTaken(_))
    ));
    assert!(matches!(
        store.insert(&name("ALICE"), "hash"),
        Err(StoreError::NameTaken(_))
    ));
    assert_eq!(
        store.verify("ALICE", "correct horse").unwrap().as_deref(),
        Some("Alice")
    );
    assert_eq!(store.verify("alice", "wrong horse").unwrap(), None);
    assert!(store.set_password("alice", "battery staple").unwrap());
    assert!(!store.set_password("nobody", "battery staple").unwrap());
    assert!(store.verify("alice", "battery staple").unwrap().is_some());

    store.insert(&name("Bob"), "hash").unwrap();
    assert!(store.set_disabled("BOB", true).unwrap());
    assert!(store.set_admin("bob", true).unwrap());
    assert!(!store.set_admin("nobody", true).unwrap());
    let (shown, standing) = store.standing("bob").unwrap().unwrap();
    assert_eq!(shown, "Bob");
    assert!(standing.disabled && standing.admin);
    let names: Vec<String> = store.list().unwrap().into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["Alice", "Bob"]);

    let ban = Sanction {
        kind: SanctionKind::Ban,
        room: "#Rust".into(),
        account: "Bob".into(),
        moderator: "alice".into(),
        reason: Some("spam".into()),
        time: 7,
    };
    store.add_sanction(&ban).unwrap();
    store.add_sanction(&ban).unwrap();
    store
        .add_sanction(&Sanction {
            kind: SanctionKind::Mute,
            ..ban.clone()
        })
        .unwrap();
    assert_eq!(
        store.sanctions(SanctionKind::Ban, None).unwrap(),
        std::slice::from_ref(&ban)
    );
    assert_eq!(
        store
            .sanctions(SanctionKind::Ban, Some("#RUST"))
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .sanctions(SanctionKind::Ban, Some("#go"))
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .remove_sanction(SanctionKind::Ban, "#rust", "BOB")
            .unwrap()
    );
    assert!(
        !store
            .remove_sanction(SanctionKind::Ban, "#rust", "bob")
            .unwrap()
    );
    // Deleting the account takes its mutes with it.
    assert!(store.delete("bob").unwrap());
    assert!(!store.delete("bob").unwrap());
    assert!(
        store
            .sanctions(SanctionKind::Mute, None)
            .unwrap()
            .is_empty()
    );
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn message(id: u64, room: &str, time: u64) -> Stored {
    Stored {
        id,
        room: room.into(),
        from: "alice".into(),
        text: format!("message {id}"),
        time,
    }
}

#[test]
fn history_pages_back_keeps_its_bounds_and_never_reuses_ids() {
    let Some(server) = testkit::Postgres::start() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut store = connect(&runtime, &server.socket_url()).unwrap();
    assert_eq!(store.last_id().unwrap(), 0);
    let keep = Retention {
        per_room: 5,
        max_age: Duration::from_secs(3600),
    };
    let now = now_millis();
    let batch: Vec<Stored> = (1..=8).map(|id| message(id, "#Rust", now)).collect();
    store.append(&batch, keep).unwrap();
    store.append(&[message(9, "#other", now)], keep).unwrap();
    let ids = |page: Vec<Stored>| page.iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.page("#RUST", None, 100).unwrap()),
        [4, 5, 6, 7, 8]
    );
    assert_eq!(ids(store.page("#rust", Some(7), 2).unwrap()), [5, 6]);
    assert!(store.page("#rust", Some(1), 10).unwrap().is_empty());
    assert_eq!(ids(store.page("#rust", Some(u64::MAX), 1).unwrap()), [8]);
    assert_eq!(store.page("#rust", None, 1).unwrap()[0], batch[7]);
    store
        .append(&[message(10, "#old", now - 7_200_000)], keep)
        .unwrap();
    assert!(store.page("#old", None, 10).unwrap().is_empty());
    // The pruned #old message's id stays used.
    assert_eq!(store.last_id().unwrap(), 10);
}

#[test]
fn the_schema_is_made_once_and_a_newer_one_refused() {
    let Some(server) = testkit::Postgres::start() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = server.socket_url();
    let store = connect(&runtime, &url).unwrap();
    store.insert(&name("carol"), "hash").unwrap();
    drop(store);
    let store = connect(&runtime, &url).unwrap();
    assert!(store.lookup("carol").unwrap().is_some());
    drop(store);
    assert_eq!(
        server.psql("SELECT version FROM netkit_schema"),
        SCHEMA_VERSION.to_string()
    );
    server.psql(&format!(
        "UPDATE netkit_schema SET version = {}",
        SCHEMA_VERSION + 1
    ));
    match connect(&runtime, &url) {
        Err(StoreError::Newer { found, known, .. }) => {
            assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
