//! The embedded default: texts are recorded in the database and printed to the log.

use super::{Accepted, OutboundText};
use crate::domain::phone_number::mask;

pub const NAME: &str = "console";

pub struct Console;

impl Console {
    pub fn send(&self, text: &OutboundText<'_>) -> Accepted {
        tracing::info!(
            message_id = text.id.0,
            "console SMS to {}:\n{}",
            mask(text.to),
            text.body
        );
        Accepted {
            provider_message_id: Some(format!("console-{}", text.id)),
        }
    }
}
