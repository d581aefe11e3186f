//! The ids of momentline's rows as types, so an artist's id is never passed where a
//! Moment's is wanted. Each is the row's integer, written as the bare number in JSON and logs.

macro_rules! id_type {
    ($($(#[$meta:meta])* $name:ident;)+) => {$(
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )+};
}

id_type! {
    /// An artist's id.
    ArtistId;
    /// A message's id, inbound or outbound.
    MessageId;
    /// A Moment's id.
    MomentId;
    /// A broadcast's id.
    BroadcastId;
    /// The id of one batch of a broadcast sent as one provider bulk job.
    BatchId;
    /// A job's id.
    JobId;
    /// The id of a change of a number's standing (a row of `number_state_changes`).
    ChangeId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_bare_number_in_json_and_text() {
        assert_eq!(serde_json::to_string(&MomentId(42)).unwrap(), "42");
        assert_eq!(serde_json::from_str::<ArtistId>("7").unwrap(), ArtistId(7));
        assert_eq!(JobId(3).to_string(), "3");
    }
}
