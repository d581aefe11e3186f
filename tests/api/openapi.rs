//! `GET /openapi.json`: every route is documented, and the schemas name what is really sent.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::*;

pub async fn document(app: &TestApp) -> Value {
    let response = app.get_keyless("/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header_of(&response, "content-type"),
        Some("application/json")
    );
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).expect("the document is JSON")
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let found = &doc["components"]["schemas"][name];
    assert!(found.is_object(), "no schema {name}");
    found
}

fn names(value: &Value) -> BTreeSet<String> {
    match value {
        Value::Object(map) => map.keys().cloned().collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// `body` has every property the schema requires, and none it does not name.
pub fn conforms(doc: &Value, name: &str, body: &Value) {
    let schema = schema(doc, name);
    let keys = names(body);
    let properties = names(&schema["properties"]);
    let required = names(&schema["required"]);
    assert!(
        keys.is_subset(&properties),
        "{name}: the response has {:?}, which the schema does not name",
        keys.difference(&properties).collect::<Vec<_>>()
    );
    assert!(
        required.is_subset(&keys),
        "{name}: the schema requires {:?}, missing from {body}",
        required.difference(&keys).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn every_registered_route_is_in_the_document() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let routes = momentline::routes::registered_routes();
    assert!(routes.len() >= 13, "{routes:?}");
    for (path, methods) in routes {
        let item = &doc["paths"][path];
        assert!(item.is_object(), "{path} is not documented");
        for method in methods {
            let operation = &item[method.as_str().to_ascii_lowercase()];
            assert!(operation.is_object(), "{method} {path} is not documented");
            assert!(
                operation["responses"].is_object(),
                "{method} {path} has no responses"
            );
            if path.starts_with("/api/") {
                assert_eq!(
                    operation["security"],
                    serde_json::json!([{"api_key": []}]),
                    "{method} {path} needs the key"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_the_key_scheme_and_the_webhooks_to_the_host() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "momentline");
    assert!(doc["info"]["version"].is_string());
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"],
        serde_json::json!({
            "type": "apiKey",
            "in": "header",
            "name": "x-api-key",
            "description": "An artist's key: art_sk_ and 64 hex characters (momentline keys create)",
        })
    );
    let webhooks = names(&doc["webhooks"]);
    for hook in [
        "moment.create",
        "moment.created",
        "moment.failed",
        "moment.deleted",
        "phone.verified",
        "phone.disconnected",
        "phone.opted_out",
        "phone.opted_in",
    ] {
        assert!(webhooks.contains(hook), "{hook} missing from {webhooks:?}");
        let body = &doc["webhooks"][hook]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["$ref"];
        let name = body
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .expect("a schema reference");
        schema(&doc, name);
    }
    // 429's body and header.
    let rate_limited = &doc["paths"]["/api/phones"]["post"]["responses"]["429"];
    assert!(rate_limited["headers"]["Retry-After"].is_object());
    let error = schema(&doc, "ErrorBody");
    assert!(names(&error["properties"]).contains("retry_after"));
    let codes = names(&schema(&doc, "ErrorCode")["enum"]);
    for code in [
        "missing_key",
        "malformed_key",
        "unknown_key",
        "revoked_key",
        "invalid_field",
        "country_not_allowed",
        "rate_limited",
    ] {
        assert!(codes.contains(code), "{code} missing from {codes:?}");
    }
}

#[tokio::test]
async fn the_schemas_name_what_the_api_really_answers() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    let doc = document(&app).await;

    let response = app.connect(PHONE).await;
    assert_eq!(response.status(), 200);
    conforms(&doc, "Done", &response.json().await.expect("json"));
    app.drain().await;

    let phones = app.get_json("/api/phones").await;
    conforms(&doc, "PhoneList", &phones);
    conforms(&doc, "ArtistNumber", &phones["phones"][0]);
    let states = names(&schema(&doc, "NumberStatus")["enum"]);
    let state = phones["phones"][0]["state"].as_str().expect("a state");
    assert!(states.contains(state), "{state} not in {states:?}");

    let messages = app.get_json("/api/messages").await;
    conforms(&doc, "MessagePage", &messages);
    let message = &messages["messages"][0];
    conforms(&doc, "MessageView", message);
    let id = message["id"].as_i64().expect("an id");
    conforms(
        &doc,
        "MessageView",
        &app.get_json(&format!("/api/messages/{id}")).await,
    );

    conforms(&doc, "MomentPage", &app.get_json("/api/moments").await);
    conforms(
        &doc,
        "Health",
        &app.get_keyless("/healthz")
            .await
            .json()
            .await
            .expect("json"),
    );

    let response = app.get_as("nonsense", "/api/phones").await;
    assert_eq!(response.status(), 401);
    conforms(&doc, "ErrorBody", &response.json().await.expect("json"));
    let response = app.connect("4155552671").await;
    assert_eq!(response.status(), 400);
    conforms(&doc, "ErrorBody", &response.json().await.expect("json"));

    let response = app.disconnect(None).await;
    assert_eq!(response.status(), 200);
    conforms(&doc, "Disconnected", &response.json().await.expect("json"));
}

/// The schema of `GET path`'s query parameter `name`.
fn query_parameter<'a>(doc: &'a Value, path: &str, name: &str) -> &'a Value {
    let parameters = doc["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("GET {path} has no parameters"));
    let found = parameters
        .iter()
        .find(|p| p["name"] == name && p["in"] == "query")
        .unwrap_or_else(|| panic!("GET {path} has no query parameter {name}"));
    &found["schema"]
}

fn bound(schema: &Value, which: &str) -> i64 {
    schema[which]
        .as_i64()
        .unwrap_or_else(|| panic!("no {which} in {schema}"))
}

#[tokio::test]
async fn the_listings_take_exactly_the_offsets_and_limits_the_document_states() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    for list in ["/api/messages", "/api/moments"] {
        for name in ["offset", "limit"] {
            let schema = query_parameter(&doc, list, name);
            let (least, most) = (bound(schema, "minimum"), bound(schema, "maximum"));
            for (value, taken) in [
                (least, true),
                (most, true),
                (least - 1, false),
                (most + 1, false),
            ] {
                let response = app.get(&format!("{list}?{name}={value}")).await;
                let status = response.status();
                assert_eq!(status == 200, taken, "{list}?{name}={value}: {status}");
                if !taken {
                    assert_eq!(status, 400, "{list}?{name}={value}");
                }
            }
        }
    }
    let limit = query_parameter(&doc, "/api/messages", "limit");
    assert_eq!(
        (bound(limit, "minimum"), bound(limit, "maximum")),
        (1, 1000)
    );
}

#[tokio::test]
async fn the_request_bodies_state_what_the_server_checks() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let e164 = r"^\+[1-9][0-9]{1,14}$";
    for body in ["ConnectRequest", "VerifyRequest", "PhoneRequest"] {
        let number = &schema(&doc, body)["properties"]["phone_number"];
        assert_eq!(number["pattern"], e164, "{body}");
        assert_eq!(number["format"], "e164", "{body}");
    }
    let method = &schema(&doc, "ConnectRequest")["properties"]["method"];
    let by = method["oneOf"]
        .as_array()
        .and_then(|kinds| kinds.iter().find_map(|k| k["$ref"].as_str()))
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .expect("method names its schema");
    assert_eq!(
        names(&schema(&doc, by)["enum"]),
        BTreeSet::from(["code".to_owned(), "prompt".to_owned()])
    );
    let code = &schema(&doc, "VerifyRequest")["properties"]["code"];
    assert_eq!(code["pattern"], "^[0-9]{6}$");

    // What the pattern refuses the server refuses; what it takes gets past the field.
    for (code, refused) in [
        ("123456", false),
        (" 123456", true),
        ("123456\n", true),
        ("12345", true),
        ("１２３４５６", true),
    ] {
        let response = app.verify_code_as(&app.api_key, PHONE, code).await;
        let status = response.status();
        let answer: Value = response.json().await.expect("json");
        assert_eq!(
            answer["field"] == "code",
            refused,
            "{code:?}: {status} {answer}"
        );
    }
    for (number, refused) in [("+14155552671", false), ("+1 4155552671", true)] {
        let response = app.connect(number).await;
        let answer: Value = response.json().await.expect("json");
        assert_eq!(
            answer["field"] == "phone_number",
            refused,
            "{number}: {answer}"
        );
    }
}

#[tokio::test]
async fn a_disconnect_body_may_be_null_as_the_document_says() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let body = &doc["paths"]["/api/phones"]["delete"]["requestBody"];
    assert_ne!(body["required"], true, "{body}");
    let kinds = &body["content"]["application/json"]["schema"]["oneOf"];
    assert!(
        kinds
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k["type"] == "null")),
        "{body}"
    );
    let response = send(
        app.keyed(Method::DELETE, "/api/phones")
            .header("content-type", "application/json")
            .body("null"),
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn each_operation_has_an_id_of_its_own_and_each_link_names_one() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let mut ids = BTreeSet::new();
    let mut links = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("an item") {
            let id = operation["operationId"].as_str().expect("an operationId");
            assert!(ids.insert(id.to_owned()), "{method} {path}: {id} again");
            for (_, response) in operation["responses"].as_object().expect("responses") {
                if let Some(found) = response["links"].as_object() {
                    links.extend(found.values().cloned());
                }
            }
        }
    }
    assert!(links.len() >= 3, "{links:?}");
    for link in links {
        let target = link["operationId"].as_str().expect("a target");
        assert!(ids.contains(target), "{target} is no operation");
    }
}

#[tokio::test]
async fn twilios_webhooks_state_their_forms_and_their_signature() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    for (path, required) in [
        ("/webhooks/twilio", ["MessageSid", "From"]),
        ("/webhooks/twilio/status", ["MessageSid", "MessageStatus"]),
    ] {
        let operation = &doc["paths"][path]["post"];
        assert_eq!(
            operation["security"],
            serde_json::json!([{"twilio_signature": []}]),
            "{path}"
        );
        let form = &operation["requestBody"]["content"]["application/x-www-form-urlencoded"]
            ["schema"]["$ref"];
        let name = form
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .unwrap_or_else(|| panic!("{path} has no form: {operation}"));
        assert_eq!(
            names(&schema(&doc, name)["required"]),
            required.iter().map(|r| (*r).to_owned()).collect(),
            "{path}"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["twilio_signature"]["name"],
        "X-Twilio-Signature"
    );
}
