//! momentline: connect a phone number and post Moments on In Process by text message.

pub mod cli;
pub mod codes;
pub mod config;
pub mod connect;
pub mod db;
pub mod dev;
pub mod domain;
pub mod events;
pub mod host;
pub mod inbound;
pub mod jobs;
pub mod media;
pub mod merge;
pub mod metrics;
pub mod providers;
pub mod routes;
pub mod startup;
pub mod store;
pub mod telemetry;
