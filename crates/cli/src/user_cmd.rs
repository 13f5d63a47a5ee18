//! `ward user …` and `ward roles`: platform accounts (operator and support staff) managed
//! against the data directory or database, like the other administrative commands.

use std::io::Read as _;

use clap::{Subcommand, ValueEnum};
use ward_crypto::Zeroizing;
use ward_vault::{Email, NewUser, Role};

use crate::Outcome;
use crate::config::StoreArgs;
use crate::setup;

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Create a platform account. Reads the password from standard input (at least 12
    /// characters, not a common password), enrols TOTP and prints the user id, the
    /// `otpauth://` enrolment URI and ten single-use recovery codes, once. Operator and
    /// support accounts cannot log in without their TOTP code.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// The login e-mail address.
        #[arg(long)]
        email: String,
        /// The platform role.
        #[arg(long, value_enum)]
        role: PlatformRole,
        /// Read the password from standard input (the only way: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List every account: id, e-mail, role, tenant, TOTP, disabled.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable an account: it cannot log in and its sessions end at once.
    Disable {
        #[command(flatten)]
        store: StoreArgs,
        /// The login e-mail address.
        #[arg(long)]
        email: String,
        /// Enable the account again instead.
        #[arg(long)]
        enable: bool,
    },
    /// Issue a single-use password reset token, valid 24 hours, and print it. Ward sends no
    /// mail: hand the token to the account's owner, who sets a new password with
    /// `POST /v1/auth/password/reset`.
    Reset {
        #[command(flatten)]
        store: StoreArgs,
        /// The login e-mail address.
        #[arg(long)]
        email: String,
    },
}

/// The roles `ward user add` creates.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum PlatformRole {
    /// Runs the platform: tenants, keys, backups; never tenant data.
    Operator,
    /// Reaches tenant data only under a grant the tenant approved.
    Support,
}

pub(crate) async fn run(cmd: UserCommand) -> anyhow::Result<Outcome> {
    match cmd {
        UserCommand::Add {
            store,
            email,
            role,
            password_stdin: _,
        } => {
            let email = Email::parse(&email)?;
            let mut password = Zeroizing::new(String::new());
            std::io::stdin().read_to_string(&mut password)?;
            // One trailing newline is how `echo` and here-strings end a line.
            let password = Zeroizing::new(
                password
                    .strip_suffix('\n')
                    .map(|p| p.strip_suffix('\r').unwrap_or(p))
                    .unwrap_or(&password)
                    .to_owned(),
            );
            let (settings, _) = store.resolve()?;
            let opened = setup::open(&settings).await?;
            let created = opened
                .vault
                .create_user(
                    NewUser {
                        email,
                        role: match role {
                            PlatformRole::Operator => Role::Operator,
                            PlatformRole::Support => Role::Support,
                        },
                        tenant: None,
                        password,
                        totp: true,
                    },
                    "cli-user-add",
                )
                .await?;
            println!("user id: {}", created.user.id);
            if let Some(uri) = &created.otpauth_uri {
                println!("totp enrolment: {uri}");
            }
            println!("recovery codes (each works once; shown only now):");
            for code in &created.recovery_codes {
                println!("  {code}");
            }
            Ok(Outcome::Ok)
        }
        UserCommand::List { store } => {
            let (settings, _) = store.resolve()?;
            let opened = setup::open(&settings).await?;
            println!(
                "{:<36}  {:<32}  {:<8}  {:<36}  {:<4}  DISABLED",
                "ID", "EMAIL", "ROLE", "TENANT", "TOTP"
            );
            for u in opened.vault.list_users().await? {
                println!(
                    "{:<36}  {:<32}  {:<8}  {:<36}  {:<4}  {}",
                    u.id,
                    u.email,
                    u.role.as_str(),
                    u.tenant
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "-".into()),
                    if u.totp { "yes" } else { "no" },
                    u.disabled_at
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "-".into())
                );
            }
            Ok(Outcome::Ok)
        }
        UserCommand::Disable {
            store,
            email,
            enable,
        } => {
            let email = Email::parse(&email)?;
            let (settings, _) = store.resolve()?;
            let opened = setup::open(&settings).await?;
            let u = opened
                .vault
                .set_user_disabled(&email, !enable, "cli-user-disable")
                .await?;
            println!(
                "{} {}",
                u.email,
                if enable { "enabled" } else { "disabled" }
            );
            Ok(Outcome::Ok)
        }
        UserCommand::Reset { store, email } => {
            let email = Email::parse(&email)?;
            let (settings, _) = store.resolve()?;
            let opened = setup::open(&settings).await?;
            let (u, token, expires_at) = opened
                .vault
                .issue_password_reset(&email, "cli-user-reset")
                .await?;
            println!(
                "reset token for {} (single use, until {expires_at}):",
                u.email
            );
            println!("{}", token.as_str());
            Ok(Outcome::Ok)
        }
    }
}

/// `ward roles`: the permission table the access decision reads.
pub(crate) fn roles() -> Outcome {
    print!("{}", ward_vault::permissions::render());
    println!();
    println!("yes: always (tenant roles within their own tenant); grant: only under a live");
    println!("support grant of the tenant that covers the action; -: never.");
    Outcome::Ok
}
