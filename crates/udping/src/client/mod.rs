//! The client side: the pinger, the flood load generator and the heartbeat
//! sender, all on a connected socket so the kernel filters other senders.

pub mod flood;
pub mod heartbeat;
pub mod ping;
pub mod stats;
