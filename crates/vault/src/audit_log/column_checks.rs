//! `check_columns` against rows whose columns were edited after the event was signed.

use proptest::prelude::*;
use uuid::Uuid;
use ward_audit::{Action, Actor, AuditEvent, Outcome};
use ward_store::AuditRowRef;

use super::{LogVerifyError, check_columns};

fn event(tenant: Option<Uuid>, subject: Option<Uuid>, nanos: u32, denied: bool) -> AuditEvent {
    AuditEvent {
        at: time::macros::datetime!(2026-11-27 21:03:24 UTC)
            .replace_nanosecond(nanos)
            .unwrap(),
        request_id: "req-01jdxk2z9q3yb8v6n4m7t5r1w0".into(),
        actor: Actor {
            id: "key:3f2a9c1e".into(),
            role: "app".into(),
        },
        tenant,
        subject,
        record: None,
        collection: Some("contact".into()),
        purpose: Some("essential.service".into()),
        action: Action::RecordRead,
        outcome: if denied {
            Outcome::Denied
        } else {
            Outcome::Allowed
        },
        reason: None,
        client: None,
        detail: None,
    }
}

/// A row whose columns hold the event's true values.
fn row_of<'a>(event: &'a AuditEvent, bytes: &'a [u8]) -> AuditRowRef<'a> {
    const CHAIN: [u8; 32] = [0; 32];
    AuditRowRef {
        idx: 7,
        event: bytes,
        chain: &CHAIN,
        at: ward_store::to_micros(event.at),
        tenant: event.tenant,
        subject: event.subject,
        actor: &event.actor.id,
        action: event.action.as_str(),
        outcome: event.outcome.as_str(),
    }
}

fn mismatch(r: Result<(), LogVerifyError>) -> Option<&'static str> {
    match r {
        Err(LogVerifyError::ColumnMismatch { index: 7, column }) => Some(column),
        Ok(()) => None,
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn check_columns_names_the_first_bad_column() {
    let event = event(
        Some(Uuid::from_u128(1)),
        Some(Uuid::from_u128(2)),
        123_456_000,
        false,
    );
    let bytes = event.to_bytes();
    let row = row_of(&event, &bytes);
    assert_eq!(mismatch(check_columns(&row)), None);
    assert_eq!(
        mismatch(check_columns(&AuditRowRef { event: b"{", ..row })),
        Some("event")
    );
    let all_wrong = AuditRowRef {
        at: row.at + 1,
        tenant: None,
        subject: None,
        actor: "x",
        action: "x",
        outcome: "x",
        ..row
    };
    assert_eq!(mismatch(check_columns(&all_wrong)), Some("at"));
    let later = AuditRowRef {
        at: row.at,
        ..all_wrong
    };
    assert_eq!(mismatch(check_columns(&later)), Some("tenant"));
}

proptest! {
    #[test]
    fn check_columns_passes_true_rows_and_names_an_edited_column(
        tenant in proptest::option::of(any::<u128>().prop_map(Uuid::from_u128)),
        subject in proptest::option::of(any::<u128>().prop_map(Uuid::from_u128)),
        nanos in 0_u32..1_000_000_000,
        denied in any::<bool>(),
        which in 0_usize..6,
        other in any::<u128>().prop_map(Uuid::from_u128),
        delta in prop_oneof![Just(1_i64), Just(-1), any::<i64>().prop_filter("non-zero", |d| *d != 0)],
    ) {
        let event = event(tenant, subject, nanos, denied);
        let bytes = event.to_bytes();
        let row = row_of(&event, &bytes);
        prop_assert_eq!(mismatch(check_columns(&row)), None);
        let other_text = format!("{}x", event.actor.id);
        // Another value: absent, or a different UUID.
        let flip = |u: Option<Uuid>| match u {
            None => Some(other),
            Some(u) if u == other || other.as_u128() % 2 == 0 => None,
            Some(_) => Some(other),
        };
        let (edited, column) = match which {
            0 => (AuditRowRef { at: row.at.wrapping_add(delta), ..row }, "at"),
            1 => (AuditRowRef { tenant: flip(row.tenant), ..row }, "tenant"),
            2 => (AuditRowRef { subject: flip(row.subject), ..row }, "subject"),
            3 => (AuditRowRef { actor: &other_text, ..row }, "actor"),
            4 => (AuditRowRef { action: "lookup_", ..row }, "action"),
            _ => (
                AuditRowRef {
                    outcome: if denied { "allowed" } else { "denied" },
                    ..row
                },
                "outcome",
            ),
        };
        prop_assert_eq!(mismatch(check_columns(&edited)), Some(column));
    }
}
