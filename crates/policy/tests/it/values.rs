//! Every field type: valid values normalize, invalid ones are refused with a code.

use serde_json::{Value, json};
use ward_policy::{DEFAULT_MAX_LENGTH, FieldType, MAX_JSON_BYTES, index_form};

#[track_caller]
fn ok(ty: FieldType, input: Value, expected: Value) {
    match ty.validate(&input) {
        Ok(out) => assert_eq!(out, expected, "{ty} {input}"),
        Err(err) => panic!("{ty} refused {input}: {err}"),
    }
}

#[track_caller]
fn refused(ty: FieldType, input: Value, code: &str) {
    match ty.validate(&input) {
        Ok(out) => panic!("{ty} accepted {input} as {out}"),
        Err(err) => assert_eq!(err.code, code, "{ty} {input}: {err}"),
    }
}

#[test]
fn string() {
    use FieldType::String as S;
    ok(S, json!("héllo\tworld\n"), json!("héllo\tworld\n"));
    ok(S, json!("line\r\nbreak"), json!("line\nbreak"));
    ok(
        S,
        json!("x".repeat(DEFAULT_MAX_LENGTH)),
        json!("x".repeat(DEFAULT_MAX_LENGTH)),
    );
    refused(S, json!("x".repeat(DEFAULT_MAX_LENGTH + 1)), "too_long");
    refused(S, json!("nul\u{0}byte"), "control_character");
    refused(S, json!("bell\u{7}"), "control_character");
    refused(S, json!("lone\rcr"), "control_character");
    refused(S, json!(42), "wrong_type");
    refused(S, json!(null), "wrong_type");
}

#[test]
fn email() {
    use FieldType::Email as E;
    ok(
        E,
        json!("  Alice.Smith+tag@Example.COM "),
        json!("Alice.Smith+tag@example.com"),
    );
    ok(
        E,
        json!("o'brien@mail.example.ie"),
        json!("o'brien@mail.example.ie"),
    );
    ok(E, json!("josé@exämple.de"), json!("josé@exämple.de"));
    for bad in [
        "plainaddress",
        "@example.com",
        "a@localhost",
        "a@@example.com",
        "a..b@example.com",
        ".a@example.com",
        "a b@example.com",
        "a@-example.com",
        "a@example.123",
        "a@[192.0.2.1]",
        "\"quoted\"@example.com",
    ] {
        refused(E, json!(bad), "invalid_email");
    }
    refused(
        E,
        json!(format!("{}@example.com", "a".repeat(65))),
        "invalid_email",
    );
    refused(
        E,
        json!(format!("a@{}com", "b.".repeat(126))),
        "invalid_email",
    );
    refused(E, json!(true), "wrong_type");
    assert_eq!(
        index_form(E, &json!("Alice@example.com")),
        "alice@example.com"
    );
}

#[test]
fn phone() {
    use FieldType::Phone as P;
    ok(P, json!("+49 151 1234-5678"), json!("+4915112345678"));
    ok(P, json!("+1 (415) 555.2671"), json!("+14155552671"));
    ok(P, json!("+33 (0)1 23 45 67 89"), json!("+33123456789"));
    ok(P, json!("0049 151 12345678"), json!("+4915112345678"));
    for bad in [
        "0151 12345678",
        "+0 123 4567",
        "+12345",
        "+1234567890123456",
        "+49 151 abc",
        "",
    ] {
        refused(P, json!(bad), "invalid_phone");
    }
    assert_eq!(index_form(P, &json!("+4915112345678")), "+4915112345678");
}

#[test]
fn date() {
    use FieldType::Date as D;
    ok(D, json!("2024-02-29"), json!("2024-02-29"));
    ok(D, json!("0001-01-01"), json!("0001-01-01"));
    for bad in [
        "2023-02-29",
        "2024-13-01",
        "2024-00-10",
        "2024-1-5",
        "24-01-01",
        "2024/01/01",
        "2024-01-01T00:00:00Z",
        "20240101",
    ] {
        refused(D, json!(bad), "invalid_date");
    }
    refused(D, json!(20240101), "wrong_type");
}

#[test]
fn datetime() {
    use FieldType::Datetime as T;
    ok(
        T,
        json!("2024-05-01T14:30:00+02:00"),
        json!("2024-05-01T12:30:00Z"),
    );
    ok(
        T,
        json!("2024-05-01T12:30:00.250Z"),
        json!("2024-05-01T12:30:00.25Z"),
    );
    ok(
        T,
        json!("2024-12-31T23:30:00-01:00"),
        json!("2025-01-01T00:30:00Z"),
    );
    for bad in [
        "2024-05-01",
        "2024-05-01 12:30",
        "2024-05-01T25:00:00Z",
        "yesterday",
        "2024-02-30T00:00:00Z",
    ] {
        refused(T, json!(bad), "invalid_datetime");
    }
}

#[test]
fn ip() {
    use FieldType::Ip as I;
    ok(I, json!("192.0.2.1"), json!("192.0.2.1"));
    ok(
        I,
        json!("2001:0DB8:0000:0000:0000:0000:0000:0001"),
        json!("2001:db8::1"),
    );
    ok(I, json!("::ffff:192.0.2.1"), json!("192.0.2.1"));
    for bad in [
        "256.0.0.1",
        "192.0.2",
        "192.0.2.1/24",
        "example.com",
        " 192.0.2.1",
        "01.2.3.4",
    ] {
        refused(I, json!(bad), "invalid_ip");
    }
}

#[test]
fn country() {
    use FieldType::Country as C;
    ok(C, json!("fr"), json!("FR"));
    ok(C, json!("DE"), json!("DE"));
    for bad in ["UK", "XX", "FRA", "F", "", "é"] {
        refused(C, json!(bad), "invalid_country");
    }
}

#[test]
fn language() {
    use FieldType::Language as L;
    ok(L, json!("FR"), json!("fr"));
    ok(L, json!("pt-br"), json!("pt-BR"));
    ok(L, json!("zh-hant-tw"), json!("zh-Hant-TW"));
    ok(L, json!("en_GB"), json!("en-GB"));
    ok(L, json!("es-419"), json!("es-419"));
    ok(L, json!("gsw"), json!("gsw"));
    for bad in [
        "e",
        "english",
        "en-",
        "en-US-x-private",
        "en-Latn-US-1234",
        "12",
        "en-U",
    ] {
        refused(L, json!(bad), "invalid_language");
    }
}

#[test]
fn geo() {
    use FieldType::Geo as G;
    ok(
        G,
        json!({"lat": 48.8566, "lon": 2.3522}),
        json!({"lat": 48.8566, "lon": 2.3522}),
    );
    ok(
        G,
        json!({"lon": -180, "lat": 90}),
        json!({"lat": 90.0, "lon": -180.0}),
    );
    for bad in [
        json!({"lat": 91.0, "lon": 0.0}),
        json!({"lat": 0.0, "lon": 180.5}),
        json!({"lat": 0.0}),
        json!({"lat": 0.0, "lon": 0.0, "alt": 3}),
        json!({"lat": "48.8", "lon": "2.3"}),
        json!({"latitude": 1, "longitude": 2}),
    ] {
        refused(G, bad, "invalid_geo");
    }
    refused(G, json!([48.8, 2.3]), "wrong_type");
}

#[test]
fn integer() {
    use FieldType::Integer as N;
    ok(N, json!(-42), json!(-42));
    ok(N, json!(i64::MAX), json!(i64::MAX));
    refused(N, json!(u64::MAX), "invalid_integer");
    refused(N, json!(1.5), "invalid_integer");
    refused(N, json!(3.0), "invalid_integer");
    refused(N, json!("42"), "wrong_type");
}

#[test]
fn decimal() {
    use FieldType::Decimal as M;
    ok(M, json!(12.5), json!(12.5));
    ok(M, json!(7), json!(7));
    ok(M, json!("12.50"), json!("12.50"));
    ok(M, json!("+0012.50"), json!("12.50"));
    ok(M, json!("-0.0"), json!("0.0"));
    for bad in ["12,50", "1e3", "", "abc", ".5", "12."] {
        refused(M, json!(bad), "invalid_decimal");
    }
    refused(M, json!(true), "wrong_type");
    // The blind index compares numerically.
    assert_eq!(index_form(M, &json!("12.50")), index_form(M, &json!(12.5)));
    assert_eq!(index_form(M, &json!("12.00")), index_form(M, &json!(12)));
}

#[test]
fn boolean() {
    ok(FieldType::Bool, json!(true), json!(true));
    refused(FieldType::Bool, json!("true"), "wrong_type");
    refused(FieldType::Bool, json!(1), "wrong_type");
}

#[test]
fn json_documents() {
    use FieldType::Json as J;
    let doc = json!({"tags": ["a", "b"], "nested": {"n": 1, "ok": null}});
    ok(J, doc.clone(), doc);
    ok(J, json!(null), json!(null));
    let big = json!("x".repeat(MAX_JSON_BYTES));
    refused(J, big, "too_large");
}

#[test]
fn searchable_kinds() {
    for ty in FieldType::ALL {
        assert_eq!(
            ty.is_searchable_kind(),
            !matches!(ty, FieldType::Json | FieldType::Geo),
            "{ty}"
        );
        assert_eq!(ty.to_string().parse::<FieldType>().unwrap(), ty);
    }
}
