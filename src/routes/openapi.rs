//! `GET /openapi.json`: the OpenAPI 3.1 document of the HTTP API and of the webhooks
//! momentline sends to the host, generated from the types the handlers answer with.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, ObjectBuilder, Paths, PathsBuilder, Ref, RefOr, Required, ResponseBuilder, Type,
};
use utoipa::{Modify, OpenApi};

use super::{
    health, index, media, messages, metadata, metrics, moments, phones, webhooks, ApiError,
    ErrorBody,
};
use crate::events::{EventType, MomentEvent, NumberEvent};
use crate::host::webhook::MomentCreate;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "momentline",
        description = "Connect a phone number and post Moments by text message. `/api/*` \
            needs an artist's key in `x-api-key`. Every error is JSON `{\"error\": code, \
            \"message\": …}` (`ErrorBody`); `webhooks` are the Standard Webhooks messages \
            momentline posts to the host.",
    ),
    paths(
        phones::connect,
        phones::disconnect,
        phones::list,
        phones::verify,
        messages::list,
        messages::one,
        moments::list,
        moments::page,
        metadata::metadata,
        media::file,
        index::index,
        health::healthz,
        health::readyz,
        metrics::metrics,
        document,
        webhooks::telnyx,
        webhooks::twilio,
        webhooks::twilio_status,
        webhooks::vonage,
    ),
    components(schemas(ErrorBody, MomentCreate, NumberEvent, MomentEvent)),
    modifiers(&Additions),
    tags(
        (name = "phones", description = "Connect, verify, list and disconnect numbers"),
        (name = "messages", description = "The artist's conversation"),
        (name = "moments", description = "The artist's Moments"),
        (name = "public", description = "No key needed"),
        (name = "provider webhooks", description = "Called by the SMS providers, not clients"),
    )
)]
pub struct ApiDoc;

/// What the derive cannot say: the key scheme, and the webhooks momentline sends.
struct Additions;

impl Modify for Additions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "An artist's key: art_sk_ and 64 hex characters (momentline keys create)",
            ))),
        );
        components.add_security_scheme(
            "twilio_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Twilio-Signature",
                "Twilio's signature: base64 of HMAC-SHA1, keyed with TWILIO_AUTH_TOKEN, over \
                 MOMENTLINE_PUBLIC_URL with the path and query, then each form parameter's name \
                 and value, sorted by name",
            ))),
        );
        let mut hooks = PathsBuilder::new().path(
            "moment.create",
            to_host(
                "A Moment to create on the host",
                "Posted to MOMENTLINE_DISPATCH_URL (MOMENTLINE_DISPATCH=webhook). webhook-id is \
                 moment_{id}_{created} (the digits of its created_at), the same on every attempt. The host answers 2xx with \
                 {\"url\": \"https://…\"}, the Moment's page. 5xx, 429 (Retry-After \
                 honoured), timeouts and a 2xx without a URL are retried on \
                 MOMENTLINE_RETRY_SCHEDULE; any other answer (redirects included) fails it.",
                "MomentCreate",
                true,
            ),
        );
        for (kind, _) in <EventType as crate::domain::TextEnum>::ALL {
            let schema = match kind {
                EventType::MomentCreated | EventType::MomentFailed | EventType::MomentDeleted => {
                    "MomentEvent"
                }
                _ => "NumberEvent",
            };
            hooks = hooks.path(
                kind.to_string(),
                to_host(
                    &format!("Event {kind}"),
                    "Posted to MOMENTLINE_EVENTS_URL (or MOMENTLINE_DISPATCH_URL). webhook-id is \
                     made from the change, the same on every attempt; events about one number \
                     or one Moment arrive in order. Any 2xx takes it; 5xx, 429 and timeouts \
                     are retried on MOMENTLINE_RETRY_SCHEDULE; any other answer fails it.",
                    schema,
                    false,
                ),
            );
        }
        doc.webhooks = Some(hooks.build());
        name_vonage_operations(&mut doc.paths);
        add_links(&mut doc.paths);
    }
}

/// One handler serves Vonage's GET and POST; each operation gets an id of its own, as the
/// specification asks.
fn name_vonage_operations(paths: &mut Paths) {
    let Some(item) = paths.paths.get_mut("/webhooks/vonage") else {
        return;
    };
    if let Some(get) = item.get.as_mut() {
        get.operation_id = Some("vonage_webhook_get".into());
    }
    if let Some(post) = item.post.as_mut() {
        post.operation_id = Some("vonage_webhook_post".into());
    }
}

/// How a listing's answer leads to each item's own route, so that a client (and Schemathesis'
/// stateful phase) can follow it: (path of the listing, link name, operation id, parameter, where
/// the value is in the answer).
const LINKS: [(&str, &str, &str, &str, &str); 3] = [
    (
        "/api/messages",
        "message",
        "get_message",
        "id",
        "$response.body#/messages/0/id",
    ),
    (
        "/api/moments",
        "page",
        "moment_page",
        "id",
        "$response.body#/moments/0/id",
    ),
    (
        "/api/moments",
        "metadata",
        "moment_metadata",
        "id",
        "$response.body#/moments/0/id",
    ),
];

/// Adds `LINKS` to the 200 answers of the listings' GETs.
fn add_links(paths: &mut Paths) {
    for (path, name, operation, parameter, value) in LINKS {
        let ok = paths
            .paths
            .get_mut(path)
            .and_then(|item| item.get.as_mut())
            .and_then(|get| get.responses.responses.get_mut("200"));
        if let Some(RefOr::T(response)) = ok {
            response.links.insert(
                name.to_owned(),
                RefOr::T(
                    LinkBuilder::new()
                        .operation_id(operation)
                        .parameter(parameter, value)
                        .build(),
                ),
            );
        }
    }
}

/// A Standard Webhooks POST to the host, its body the schema named `body`.
fn to_host(summary: &str, description: &str, body: &str, answers_url: bool) -> PathItem {
    let header = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::True)
            .description(Some(description))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build()
    };
    let ok = if answers_url {
        ResponseBuilder::new()
            .description("Created; the body names its page")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .property("url", ObjectBuilder::new().schema_type(Type::String))
                            .required("url"),
                    ))
                    .build(),
            )
            .build()
    } else {
        ResponseBuilder::new().description("Delivered").build()
    };
    let operation = OperationBuilder::new()
        .summary(Some(summary))
        .description(Some(description))
        .parameter(header(
            "webhook-id",
            "The message's id, the same on every attempt",
        ))
        .parameter(header("webhook-timestamp", "Unix seconds of this attempt"))
        .parameter(header(
            "webhook-signature",
            "v1,<base64 HMAC-SHA256 of {webhook-id}.{webhook-timestamp}.{body}>",
        ))
        .request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(body)))
                        .build(),
                )
                .required(Some(Required::True))
                .build(),
        ))
        .response("200", ok)
        .build();
    PathItem::new(HttpMethod::Post, operation)
}

static DOCUMENT: LazyLock<Result<String, String>> =
    LazyLock::new(|| ApiDoc::openapi().to_json().map_err(|e| e.to_string()));

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "public",
    summary = "This document",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn document() -> Result<HttpResponse, ApiError> {
    match &*DOCUMENT {
        Ok(json) => Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(json.clone())),
        Err(e) => Err(ApiError::internal("Failed to build the OpenAPI document")(
            e.clone().into(),
        )),
    }
}
