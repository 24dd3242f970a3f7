//! The chat system: a documented line protocol of JSON frames (see
//! PROTOCOL.md), a server with an account store (SQLite or PostgreSQL) and
//! a room that fans messages out to every member, a client library, signed UDP direct
//! messages between clients, and a load generator for netkit's own protocol
//! and for IRC.

pub mod bench;
pub mod bus;
pub mod client;
pub mod connection;
pub mod direct;
mod error;
mod event;
pub mod frame;
pub mod history;
pub mod name;
pub mod password;
pub mod postgres;
pub mod rate;
pub mod server;
pub mod store;
mod throttle;
pub mod websocket;

pub use client::{Client, ClientOptions, Event, Mode};
pub use error::Error;
pub use frame::{ErrorCode, LeaveReason, MAX_FRAME, PROTOCOL_VERSION, Password, UserEntry};
pub use server::{MAX_PER_CLIENT, MAX_RATE, Server, ServerConfig};
pub use store::{AccountStore, Accounts};
