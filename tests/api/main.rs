//! Integration tests: the real server, a fresh database, and a stand-in for Telnyx's API.

mod api_errors;
mod broadcast;
mod cli;
mod codes;
mod conversation;
mod dev_phone;
mod events;
mod faults;
mod helpers;
mod host;
mod instances;
mod media;
mod merge;
mod moment_page;
mod observability;
mod openapi;
mod outbound_providers;
mod outbox;
mod phones;
mod process;
mod schema;
mod telnyx_webhook;
mod twilio;
mod undo;
mod vonage;
mod write_path;
