//! The embedded host (the default): a Moment is recorded here and shown on momentline's own
//! page, so there is nothing to ask and its dispatch settles in the write that claims it.

use crate::domain::ids::MomentId;

/// momentline's own Moment pages.
#[derive(Debug, Clone)]
pub struct Embedded {
    public_url: String,
}

impl Embedded {
    pub fn new(public_url: String) -> Self {
        Self { public_url }
    }

    /// The page of Moment `id`.
    pub fn link(&self, id: MomentId) -> String {
        format!("{}/moments/{id}", self.public_url)
    }
}
