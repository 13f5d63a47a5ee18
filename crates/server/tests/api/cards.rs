//! Card numbers are never stored: refused anywhere in a record, and the refusal writes nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const CARDS: [&str; 6] = [
    "4111111111111111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "5500 0000 0000 0004",
    "378282246310005",
    "6011111111111117",
];

/// (collection, field, value, purpose) with `card` placed somewhere in a field.
fn placements(card: &str) -> Vec<(&'static str, &'static str, Value, &'static str)> {
    let digits: String = card.chars().filter(char::is_ascii_digit).collect();
    let as_int: u64 = digits.parse().expect("digits");
    vec![
        ("contact", "name", json!(card), ESSENTIAL),
        (
            "contact",
            "postal_address",
            json!(format!("my card is {card}, expiry 12/29")),
            ESSENTIAL,
        ),
        (
            "job_application",
            "cover_letter",
            json!(format!("Dear team,\nPay the fee with {card}.\n")),
            RECRUITMENT,
        ),
        (
            "customer_record",
            "notes",
            json!({ "payment": { "history": [{ "card": card }] } }),
            ESSENTIAL,
        ),
        (
            "customer_record",
            "notes",
            json!({ "payment": { "pan": as_int } }),
            ESSENTIAL,
        ),
        (
            "customer_record",
            "notes",
            json!([1, 2, [as_int]]),
            ESSENTIAL,
        ),
        (
            "customer_record",
            "notes",
            json!({ card: "stored under the key" }),
            ESSENTIAL,
        ),
        ("customer_record", "notes", json!(card), ESSENTIAL),
        (
            "customer_record",
            "loyalty_points",
            json!(as_int),
            ESSENTIAL,
        ),
        ("billing", "vat_id", json!(card), LEGAL),
    ]
}

#[tokio::test]
async fn card_numbers_are_refused_everywhere_and_nothing_is_written() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Cards").await;
    for card in CARDS {
        for (collection, field, value, _) in placements(card) {
            let mut fields = sample(collection).input;
            fields[field] = value.clone();
            let resp = write_raw(&srv, &t, &s, collection, fields).await;
            assert_eq!(
                resp.0,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{collection}.{field} = {value}: {}",
                resp.1
            );
            assert_field_error(
                &resp,
                StatusCode::UNPROCESSABLE_ENTITY,
                "card_data_refused",
                field,
            );
            let digits: String = card.chars().filter(char::is_ascii_digit).collect();
            let text = resp.1.to_string();
            assert!(
                !text.contains(card) && !text.contains(&digits),
                "the refusal echoes the card: {text}"
            );
        }
    }
    assert_eq!(
        all_record_ids(&srv, &t, &s).await,
        Vec::<String>::new(),
        "no record was written"
    );
}

#[tokio::test]
async fn a_card_number_is_refused_even_in_an_unknown_field_name() {
    // A card number as a field *name* is refused like one in a value, and the refusal must not
    // echo it back (policy: "a refused card number must not end up in logs or error responses").
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("CardKey").await;
    let resp = write_raw(
        &srv,
        &t,
        &s,
        "contact",
        json!({ "name": "N", "email": "n@example.com", "4111 1111 1111 1111": "x" }),
    )
    .await;
    assert_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, "card_data_refused");
    let text = resp.1.to_string();
    assert!(
        !text.contains("4111 1111 1111 1111"),
        "the refusal echoes the card number: {text}"
    );
    assert_eq!(all_record_ids(&srv, &t, &s).await, Vec::<String>::new());
}

#[tokio::test]
async fn card_numbers_are_refused_in_patches_and_the_record_is_unchanged() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv, "CardPatch").await;
    let before = read(&srv, &t, &s, &r, ESSENTIAL).await;
    for card in CARDS {
        let resp = srv
            .patch(
                &record_path(&t.id, &s, &r),
                &t.owner,
                json!({ "purpose": "essential.service", "fields": { "postal_address": format!("card: {card}") } }),
            )
            .await;
        assert_field_error(
            &resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "card_data_refused",
            "postal_address",
        );
    }
    let c = srv
        .record(&t, &s, "customer_record", json!({ "name": "N" }))
        .await;
    let resp = srv
        .patch(
            &record_path(&t.id, &s, &c),
            &t.owner,
            json!({ "purpose": "essential.service", "fields": { "notes": { "n": 4_111_111_111_111_111_u64 } } }),
        )
        .await;
    assert_field_error(
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "card_data_refused",
        "notes",
    );
    assert_eq!(read(&srv, &t, &s, &r, ESSENTIAL).await, before);
    assert_eq!(read(&srv, &t, &s, &c, ESSENTIAL).await["revision"], 1);
}

#[tokio::test]
async fn near_misses_are_ordinary_values() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("NearMiss").await;
    for value in [
        "4111111111111112",
        "1234 5678 9012 3456",
        "4111 1111 1111 1112",
        "order 411111111111",
        "call +4915112345678",
        "0049 151 1234 5678",
        "x41111111111111110000000000y",
    ] {
        let fields = json!({ "name": "N", "email": "n@example.com", "postal_address": value });
        let (st, created) = write_raw(&srv, &t, &s, "contact", fields).await;
        assert_eq!(st, StatusCode::CREATED, "{value}: {created}");
        let id = created["id"].as_str().expect("id");
        assert_eq!(
            read(&srv, &t, &s, id, ESSENTIAL).await["fields"]["postal_address"],
            value
        );
    }
    // As JSON integers too.
    let r = srv.record(&t, &s, "customer_record", json!({ "name": "N", "loyalty_points": 4_111_111_111_111_112_i64, "notes": [1_234_567_890_123_456_i64] })).await;
    let got = read(&srv, &t, &s, &r, ESSENTIAL).await;
    assert_eq!(got["fields"]["loyalty_points"], 4_111_111_111_111_112_i64);
    assert_eq!(got["fields"]["notes"], json!([1_234_567_890_123_456_i64]));
}

#[tokio::test]
async fn card_numbers_are_refused_in_batches() {
    let srv = crate::start().await;
    let t = srv.tenant("CardBatch").await;
    let items = json!({ "items": [
        { "op": "create_subject", "external_ref": "card-batch" },
        { "op": "create_record", "subject": "#0", "collection": "customer_record", "fields": { "name": "N", "notes": { "deep": [{ "pan": "4111-1111-1111-1111" }] } } },
    ]});
    let resp = srv
        .post(&format!("/v1/tenants/{}/batch", t.id), &t.owner, items)
        .await;
    assert_field_error(
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "card_data_refused",
        "items[1].notes",
    );
    let resp = srv
        .get(
            &format!("{}?external_ref=card-batch", subjects_path(&t.id)),
            &t.owner,
        )
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
}
