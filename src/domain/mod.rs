//! The words of the problem as types and pure functions: no I/O lives here.

pub mod api_key;
pub mod broadcast;
pub mod chain;
pub mod code;
pub mod country;
pub mod ids;
pub mod keyword;
pub mod media_type;
pub mod moment;
pub mod number_state;
pub mod phone_number;
pub mod replies;
pub mod sealed;
pub mod secret;
pub mod segments;

/// A status stored as text: each variant's word is written once, here, and every conversion
/// (database columns, API bodies, logs) goes through `as_str` and `parse`.
pub trait TextEnum: Sized + Copy + 'static {
    const ALL: &'static [(Self, &'static str)];
    const NAME: &'static str;

    fn as_str(self) -> &'static str;

    fn parse(word: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, w)| *w == word).map(|(v, _)| *v)
    }
}

/// Declares an enum whose variants are stored as the given words.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $crate::domain::TextEnum for $name {
            const ALL: &'static [(Self, &'static str)] = &[$((Self::$variant, $word)),+];
            const NAME: &'static str = stringify!($name);

            fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $word),+ }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($crate::domain::TextEnum::as_str(*self))
            }
        }

        // Documented in the OpenAPI document as a string with these values.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($word),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::domain::TextEnum::as_str(*self))
            }
        }
    };
}
pub(crate) use text_enum;

text_enum!(
    /// Which way a message went.
    Direction { Inbound => "inbound", Outbound => "outbound" }
);

text_enum!(
    /// Where a message is in its life. Outbound: `unconfirmed` (queued) → `sent` (accepted by
    /// the provider) → `delivered`, or `error` for good. Inbound messages are `received`.
    MessageState {
        Received => "received",
        Unconfirmed => "unconfirmed",
        Sent => "sent",
        Delivered => "delivered",
        Error => "error",
    }
);

impl MessageState {
    /// The state as a person reads it (the dev phone, `dev text`): `unconfirmed` is "queued".
    /// The stored word, and the API's, stay `as_str`.
    pub fn in_words(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Unconfirmed => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Error => "not sent",
        }
    }

    /// How far along an outbound message is; a status report never moves it backwards.
    pub fn progress(self) -> u8 {
        match self {
            Self::Received | Self::Unconfirmed => 0,
            Self::Sent => 1,
            Self::Delivered | Self::Error => 2,
        }
    }
}

text_enum!(
    /// Where a Moment is: recorded, then dispatched (`created`, with its URL) or `failed`.
    MomentState { Pending => "pending", Created => "created", Failed => "failed" }
);

text_enum!(
    /// What a Moment carries.
    MomentKindCode { Media => "media", Link => "link", Text => "text" }
);

text_enum!(
    /// Where a media Moment's file is: being fetched from the provider, kept here, or lost.
    MediaState { Fetching => "fetching", Kept => "kept", Failed => "failed" }
);

text_enum!(
    /// What a background job does.
    JobKind {
        SendText => "send_text",
        KeepMedia => "keep_media",
        DispatchMoment => "dispatch_moment",
        DeliverEvent => "deliver_event",
        Broadcast => "broadcast",
        HideMoment => "hide_moment",
        SendBatch => "send_batch",
    }
);

text_enum!(
    /// Where a batch of a broadcast sent as one provider bulk job is: waiting for its call,
    /// taken by the provider (which sends it at its own pace), done by the provider's word,
    /// or refused for good.
    BatchState { Queued => "queued", Running => "running", Finished => "finished", Failed => "failed" }
);

text_enum!(
    /// Where a job is: waiting for its time, claimed by a runner, or given up for good.
    /// A job that succeeds is deleted: the row it worked on keeps the result.
    JobState { Queued => "queued", Running => "running", Failed => "failed" }
);
