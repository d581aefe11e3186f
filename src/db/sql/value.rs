//! Values across the seam: what is bound (`Param`, `ToParam`, `Params`) and what is read
//! (`ValueRef`, `FromValue`), each the same Rust type on both engines.

use postgres::types::{FromSql, IsNull, ToSql, Type};

use std::borrow::Cow;

use crate::db::Text;
use crate::domain::ids::{ArtistId, BatchId, BroadcastId, ChangeId, JobId, MessageId, MomentId};
use crate::domain::phone_number::{mask, PhoneNumber};
use crate::domain::TextEnum;

/// A value bound to a statement.
#[derive(Debug, Clone)]
pub enum Param<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(Cow<'a, str>),
    Blob(&'a [u8]),
}

/// What can be bound to a statement.
pub trait ToParam {
    fn to_param(&self) -> Param<'_>;
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            fn to_param(&self) -> Param<'_> {
                Param::Int(i64::from(*self))
            }
        }
    )*};
}
int_param!(i64, i32, u32, i16, u16, u8, bool);

impl ToParam for usize {
    fn to_param(&self) -> Param<'_> {
        Param::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToParam for u64 {
    fn to_param(&self) -> Param<'_> {
        Param::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToParam for f64 {
    fn to_param(&self) -> Param<'_> {
        Param::Real(*self)
    }
}

impl ToParam for str {
    fn to_param(&self) -> Param<'_> {
        Param::Text(Cow::Borrowed(self))
    }
}

impl ToParam for String {
    fn to_param(&self) -> Param<'_> {
        Param::Text(Cow::Borrowed(self))
    }
}

impl ToParam for [u8] {
    fn to_param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}

impl ToParam for Vec<u8> {
    fn to_param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}

impl<const N: usize> ToParam for [u8; N] {
    fn to_param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_param(&self) -> Param<'_> {
        (**self).to_param()
    }
}

impl<T: ToParam> ToParam for Option<T> {
    fn to_param(&self) -> Param<'_> {
        match self {
            Some(v) => v.to_param(),
            None => Param::Null,
        }
    }
}

impl<T: TextEnum> ToParam for Text<T> {
    fn to_param(&self) -> Param<'_> {
        Param::Text(Cow::Borrowed(self.0.as_str()))
    }
}

// An id binds and reads as its row's integer.
macro_rules! id_value {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            fn to_param(&self) -> Param<'_> {
                Param::Int(self.0)
            }
        }

        impl FromValue for $t {
            fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
                i64::from_value(value).map(Self)
            }
        }
    )*};
}
id_value!(
    ArtistId,
    MessageId,
    MomentId,
    BroadcastId,
    BatchId,
    JobId,
    ChangeId
);

impl ToParam for PhoneNumber {
    fn to_param(&self) -> Param<'_> {
        Param::Text(Cow::Borrowed(self.as_str()))
    }
}

impl ToParam for Param<'_> {
    fn to_param(&self) -> Param<'_> {
        self.clone()
    }
}

/// A statement's parameters: `params![a, b]`, `[a]` (one type), `[]` (none), or a slice.
pub trait Params {
    fn params(&self) -> Vec<Param<'_>>;
}

impl Params for [&dyn ToParam] {
    fn params(&self) -> Vec<Param<'_>> {
        self.iter().map(|p| p.to_param()).collect()
    }
}

impl Params for &[&dyn ToParam] {
    fn params(&self) -> Vec<Param<'_>> {
        self.iter().map(|p| p.to_param()).collect()
    }
}

impl<T: ToParam, const N: usize> Params for [T; N] {
    fn params(&self) -> Vec<Param<'_>> {
        self.iter().map(ToParam::to_param).collect()
    }
}

impl<T: ToParam> Params for Vec<T> {
    fn params(&self) -> Vec<Param<'_>> {
        self.iter().map(ToParam::to_param).collect()
    }
}

/// A statement's parameters of several types: `params![id, "text", Text(state)]`.
#[macro_export]
macro_rules! params {
    () => { &[] as &[&dyn $crate::db::sql::ToParam] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::db::sql::ToParam),+] as &[&dyn $crate::db::sql::ToParam] };
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef as V};
        Ok(ToSqlOutput::Borrowed(match self {
            Param::Null => V::Null,
            Param::Int(i) => V::Integer(*i),
            Param::Real(f) => V::Real(*f),
            Param::Text(s) => V::Text(s.as_bytes()),
            Param::Blob(b) => V::Blob(b),
        }))
    }
}

/// Text types PostgreSQL may infer for a placeholder bound with text.
fn is_text(ty: &Type) -> bool {
    [
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UNKNOWN,
    ]
    .contains(ty)
}

/// Binds by the type PostgreSQL infers for the placeholder, as SQLite's loose typing would:
/// an integer to any integer or boolean column, text to text, a number written as text where
/// text is wanted. Anything else is refused, never sent as bytes the server would misread.
impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                _ if is_text(ty) => i.to_string().as_str().to_sql(&Type::TEXT, out),
                _ => Err(format!("cannot bind the integer {i} as {ty}: CAST it in the SQL").into()),
            },
            Param::Real(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                Type::FLOAT8 => f.to_sql(ty, out),
                _ if is_text(ty) => f.to_string().as_str().to_sql(&Type::TEXT, out),
                _ => Err(format!("cannot bind the number {f} as {ty}: CAST it in the SQL").into()),
            },
            Param::Text(s) => match *ty {
                Type::BYTEA => s.as_bytes().to_sql(ty, out),
                _ if is_text(ty) => s.as_ref().to_sql(&Type::TEXT, out),
                _ => Err(format!("cannot bind text as {ty}: CAST it in the SQL").into()),
            },
            Param::Blob(b) => match *ty {
                Type::BYTEA => b.to_sql(ty, out),
                _ => Err(format!("cannot bind bytes as {ty}: CAST it in the SQL").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// A column's value as read, borrowed from its row.
#[derive(Debug, Clone, Copy)]
pub enum ValueRef<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// A value read from PostgreSQL whatever its column's type.
pub(super) enum Owned {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Owned {
    pub(super) fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Owned::Null => ValueRef::Null,
            Owned::Int(i) => ValueRef::Int(*i),
            Owned::Real(f) => ValueRef::Real(*f),
            Owned::Text(s) => ValueRef::Text(s),
            Owned::Blob(b) => ValueRef::Blob(b),
        }
    }
}

impl<'a> FromSql<'a> for Owned {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(match *ty {
            Type::INT8 => Owned::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Owned::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Owned::Int(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => Owned::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Owned::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Owned::Real(f32::from_sql(ty, raw)?.into()),
            Type::BYTEA => Owned::Blob(raw.to_vec()),
            _ if is_text(ty) => Owned::Text(String::from_sql(&Type::TEXT, raw)?),
            _ => return Err(format!("cannot read a {ty} column: CAST it in the SQL").into()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Owned::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// What a column can be read as.
pub trait FromValue: Sized {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String>;
}

fn wrong(value: ValueRef<'_>, wanted: &str) -> String {
    format!("{value:?} is not {wanted}")
}

impl FromValue for i64 {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Int(i) => Ok(i),
            other => Err(wrong(other, "an integer")),
        }
    }
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
                let i = i64::from_value(value)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range for {}", stringify!($t)))
            }
        }
    )*};
}
int_value!(i32, u32, u64, usize, i16, u16, u8);

impl FromValue for bool {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        Ok(i64::from_value(value)? != 0)
    }
}

impl FromValue for f64 {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Real(f) => Ok(f),
            ValueRef::Int(i) => Ok(i as f64),
            other => Err(wrong(other, "a number")),
        }
    }
}

impl FromValue for String {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Text(s) => Ok(s.to_owned()),
            other => Err(wrong(other, "text")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Blob(b) => Ok(b.to_vec()),
            ValueRef::Text(s) => Ok(s.as_bytes().to_vec()),
            other => Err(wrong(other, "bytes")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// A number read back from a row was valid when it was written; one that no longer parses
/// is a corrupt row, named masked.
impl FromValue for PhoneNumber {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Text(s) => PhoneNumber::parse(s).map_err(|e| format!("{}: {e}", mask(s))),
            other => Err(wrong(other, "a phone number")),
        }
    }
}

impl<T: TextEnum> FromValue for Text<T> {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Text(word) => T::parse(word)
                .map(Text)
                .ok_or_else(|| format!("'{word}' is not a {}", T::NAME)),
            other => Err(wrong(other, T::NAME)),
        }
    }
}
