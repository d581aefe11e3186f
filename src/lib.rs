//! momentline: connect a phone number and post Moments on In Process by text message.

pub mod cli;
pub mod config;
pub mod connect;
pub mod db;
pub mod domain;
pub mod host;
pub mod inbound;
pub mod jobs;
pub mod media;
pub mod merge;
pub mod providers;
pub mod routes;
pub mod startup;
pub mod store;
pub mod telemetry;
