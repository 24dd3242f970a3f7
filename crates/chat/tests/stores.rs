//! One contract for each store trait, kept by both stores: SQLite in
//! memory, and PostgreSQL on a real server of the test's own, reached over
//! its Unix socket. PostgreSQL's schema is also migrated once and a newer
//! one refused (SQLite's migrations are tested beside its code).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat::history::SqliteHistory;
use chat::history::{HistoryStore, Retention, Stored};
use chat::name::Username;
use chat::postgres::{Postgres, SCHEMA_VERSION};
use chat::store::{AccountStore, Accounts, Sanction, SanctionKind, StoreError, StoredRoom};

/// The store's calls block on the runtime it connected from, so they are
/// made from this thread, outside it.
fn connect(runtime: &tokio::runtime::Runtime, url: &str) -> Result<Postgres, StoreError> {
    runtime.block_on(Postgres::connect(url))
}

fn name(text: &str) -> Username {
    Username::parse(text).unwrap()
}

#[test]
fn sqlite_keeps_the_account_contract() {
    accounts_and_sanctions(&Accounts::open_in_memory().unwrap());
}

#[test]
fn postgres_keeps_the_account_contract() {
    let Some(server) = testkit::Postgres::start() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    accounts_and_sanctions(&connect(&runtime, &server.socket_url()).unwrap());
}

fn accounts_and_sanctions(store: &impl AccountStore) {
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
    assert_eq!(store.verify("nobody", "correct horse").unwrap(), None);
    let (_, hash) = store.lookup("alice").unwrap().unwrap();
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(!hash.contains("correct horse"));
    assert!(store.set_password("alice", "battery staple").unwrap());
    assert!(!store.set_password("nobody", "battery staple").unwrap());
    assert_eq!(store.verify("alice", "correct horse").unwrap(), None);
    assert!(store.verify("alice", "battery staple").unwrap().is_some());

    store.insert(&name("Bob"), "hash").unwrap();
    assert_eq!(
        store.standing("bob").unwrap(),
        Some(("Bob".into(), Default::default()))
    );
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

#[test]
fn sqlite_keeps_the_room_contract() {
    rooms(&Accounts::open_in_memory().unwrap());
}

#[test]
fn postgres_keeps_the_room_contract() {
    let Some(server) = testkit::Postgres::start() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    rooms(&connect(&runtime, &server.socket_url()).unwrap());
}

fn rooms(store: &impl AccountStore) {
    assert!(store.rooms().unwrap().is_empty());
    let rust = StoredRoom {
        name: "#Rust".into(),
        topic: String::new(),
        operators: vec!["alice".into()],
        created: 100,
        used: 100,
    };
    store.save_room(&rust).unwrap();
    let go = StoredRoom {
        name: "#go".into(),
        topic: "gophers".into(),
        operators: Vec::new(),
        created: 150,
        used: 150,
    };
    store.save_room(&go).unwrap();
    // Saved again, a room is replaced whole but keeps its first created
    // time; the spelling is the latest.
    let changed = StoredRoom {
        name: "#rust".into(),
        topic: "all about Rust".into(),
        operators: vec!["bob".into(), "alice".into()],
        created: 300,
        used: 200,
    };
    store.save_room(&changed).unwrap();
    let kept = store.rooms().unwrap();
    assert_eq!(
        kept,
        [
            StoredRoom {
                operators: vec!["alice".into(), "bob".into()],
                created: 100,
                ..changed.clone()
            },
            go.clone(),
        ]
    );
    // A deleted account's operator grants go with it.
    store.register(&name("bob"), "bob's password").unwrap();
    assert!(store.delete("BOB").unwrap());
    assert_eq!(store.rooms().unwrap()[0].operators, ["alice"]);
    assert!(store.forget_room("#RUST").unwrap());
    assert!(!store.forget_room("#rust").unwrap());
    assert_eq!(store.rooms().unwrap(), [go]);
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
fn sqlite_keeps_the_history_contract() {
    history_pages_back_keeps_its_bounds_and_never_reuses_ids(
        &mut SqliteHistory::open_in_memory().unwrap(),
    );
}

#[test]
fn postgres_keeps_the_history_contract() {
    let Some(server) = testkit::Postgres::start() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    history_pages_back_keeps_its_bounds_and_never_reuses_ids(
        &mut connect(&runtime, &server.socket_url()).unwrap(),
    );
}

fn history_pages_back_keeps_its_bounds_and_never_reuses_ids(store: &mut impl HistoryStore) {
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
    // Only the last five of #rust are kept, whatever the case asked.
    assert_eq!(
        ids(store.page("#RUST", None, 100).unwrap()),
        [4, 5, 6, 7, 8]
    );
    assert_eq!(ids(store.page("#rust", Some(7), 2).unwrap()), [5, 6]);
    assert!(store.page("#rust", Some(1), 10).unwrap().is_empty());
    assert_eq!(ids(store.page("#rust", Some(u64::MAX), 1).unwrap()), [8]);
    assert_eq!(store.page("#rust", None, 1).unwrap()[0], batch[7]);
    // Too old is pruned too.
    store
        .append(&[message(10, "#old", now - 7_200_000)], keep)
        .unwrap();
    assert!(store.page("#old", None, 10).unwrap().is_empty());
    // The pruned #old message's id stays used.
    assert_eq!(store.last_id().unwrap(), 10);
}

#[test]
fn the_schema_is_made_once_migrated_forward_and_a_newer_one_refused() {
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
    // A database of version 1 (before rooms were kept) gains them and
    // keeps its accounts.
    server.psql("DROP TABLE room_operators, rooms; UPDATE netkit_schema SET version = 1");
    let store = connect(&runtime, &url).unwrap();
    assert!(store.lookup("carol").unwrap().is_some());
    assert!(store.rooms().unwrap().is_empty());
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
