//! The writes that tie things together: each runs in one database write and keeps a message,
//! a number's change of standing, its event and its metric in step.

pub mod codes;
pub mod connect;
pub mod inbound;
pub mod merge;
pub mod number_change;
pub mod settle;
pub mod status;
