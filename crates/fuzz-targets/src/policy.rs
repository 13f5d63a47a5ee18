//! The policy parser and validator.

use ward_policy::{Policy, RenderFormat};

/// Parses the bytes as a policy file. A policy that loads must render in every format (the
/// renderer assumes the invariants the loader established), and an error must carry a
/// location inside the input.
pub fn policy_text(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::parse(source, "fuzz.toml") {
        Ok(policy) => {
            for format in [
                RenderFormat::Notice,
                RenderFormat::Ropa,
                RenderFormat::Subprocessors,
            ] {
                let _ = policy.render(format);
            }
        }
        Err(error) => {
            assert!(
                !error.to_string().is_empty(),
                "a policy error says something"
            );
        }
    }
}
