//! momentline: connect a phone number and post Moments on In Process by text message.

pub mod cli;
pub mod config;
pub mod db;
pub mod dev;
pub mod domain;
pub mod events;
pub mod files;
pub mod flows;
pub mod host;
pub mod jobs;
pub mod media;
pub mod metrics;
pub mod providers;
pub mod routes;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod vars;
