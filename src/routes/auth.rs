//! `x-api-key` authentication for `/api/*`.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};

use super::{blocking, conn, ApiError, AppState};
use crate::db::artists::{self, Artist};
use crate::domain::api_key::ApiKey;

/// The artist whose live key came with the request.
pub struct Authenticated(pub Artist);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        // Anything not shaped like a key is refused without touching the database.
        let key = req
            .headers()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| ApiKey::parse(v.trim()));
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let key = key.ok_or(ApiError::Unauthorized)?;
            let state = state.ok_or_else(|| {
                ApiError::internal("Application state missing")("no AppState".into())
            })?;
            let pool = state.pool.clone();
            let artist = blocking("Failed to check API key", move || {
                artists::authenticate(&*conn(&pool)?, &key).map_err(crate::db::DbError::from)
            })
            .await?;
            artist.map(Authenticated).ok_or(ApiError::Unauthorized)
        })
    }
}
