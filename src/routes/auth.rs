//! `x-api-key` authentication for `/api/*`.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};

use super::{read, ApiError, AppState};
use crate::db::artists::{self, Artist, KeyCheck};
use crate::domain::api_key::ApiKey;

/// The artist whose live key came with the request.
pub struct Authenticated(pub Artist);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        // Anything not shaped like a key is refused without touching the database.
        let key = match req.headers().get("x-api-key").map(|v| v.to_str()) {
            None => Err(ApiError::MissingKey),
            Some(Ok(v)) if v.trim().is_empty() => Err(ApiError::MissingKey),
            Some(Ok(v)) => ApiKey::parse(v.trim()).ok_or(ApiError::MalformedKey),
            Some(Err(_)) => Err(ApiError::MalformedKey),
        };
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let key = key?;
            let state = state.ok_or_else(|| {
                ApiError::internal("Application state missing")("no AppState".into())
            })?;
            let check = read(&state, "Failed to check API key", move |c| {
                artists::authenticate(c, &key)
            })
            .await?;
            match check {
                KeyCheck::Live(artist) => Ok(Authenticated(artist)),
                KeyCheck::Revoked => Err(ApiError::RevokedKey),
                KeyCheck::Unknown => Err(ApiError::UnknownKey),
            }
        })
    }
}
