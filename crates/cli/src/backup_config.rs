//! The `[backup]` table of the server config, and the backup settings after flags are
//! applied.
//!
//! ```toml
//! [backup]
//! locations = ["/var/backups/ward", { url = "s3://acme-backups/ward", region = "eu-central-1" }]
//! s3_endpoint = "https://s3.eu-central-1.amazonaws.com"   # only for non-AWS services
//! every = "24h"          # serve takes a backup this often (omit to take none)
//! verify_every = "24h"   # serve verifies the newest data snapshot this often
//! keep_daily = 7
//! keep_weekly = 4
//! keep_monthly = 12
//! max_age = "365d"       # no data snapshot older than this
//! key_window = "30d"     # key snapshots kept this long, and no longer
//! ```

use std::time::Duration;

use serde::Deserialize;
use ward_backup::{LocationSpec, Retention, S3Options};

/// The `[backup]` table as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackupConfig {
    #[serde(default)]
    pub(crate) locations: Vec<LocationEntry>,
    pub(crate) s3_endpoint: Option<String>,
    pub(crate) every: Option<String>,
    pub(crate) verify_every: Option<String>,
    pub(crate) keep_daily: Option<u32>,
    pub(crate) keep_weekly: Option<u32>,
    pub(crate) keep_monthly: Option<u32>,
    pub(crate) max_age: Option<String>,
    pub(crate) key_window: Option<String>,
}

/// A location: a bare path or URL, or a table with its region.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum LocationEntry {
    Url(String),
    Table(LocationSpec),
}

/// Backup settings after precedence (flags › config › defaults).
#[derive(Debug, Clone)]
pub(crate) struct BackupSettings {
    pub(crate) locations: Vec<LocationSpec>,
    pub(crate) s3: S3Options,
    /// How often `serve` takes a backup; `None`: never.
    pub(crate) every: Option<Duration>,
    /// How often `serve` verifies the newest snapshot.
    pub(crate) verify_every: Duration,
    pub(crate) retention: Retention,
}

const DAY: Duration = Duration::from_secs(86_400);

impl BackupSettings {
    /// Applies `--location`/`--s3-endpoint` over the config file's table. Locations given
    /// on the command line replace the configured ones.
    pub(crate) fn resolve(
        flags_locations: &[String],
        flags_endpoint: Option<&str>,
        file: Option<&BackupConfig>,
    ) -> anyhow::Result<Self> {
        let default = BackupConfig::default();
        let file = file.unwrap_or(&default);
        let locations = if flags_locations.is_empty() {
            file.locations
                .iter()
                .map(|l| match l {
                    LocationEntry::Url(u) => LocationSpec::new(u.clone()),
                    LocationEntry::Table(t) => t.clone(),
                })
                .collect()
        } else {
            flags_locations.iter().map(LocationSpec::new).collect()
        };
        let period = |name: &str, v: &Option<String>| -> anyhow::Result<Option<Duration>> {
            let Some(v) = v else { return Ok(None) };
            let p = ward_policy::Period::parse(v)
                .map_err(|e| anyhow::anyhow!("backup.{name} {v:?}: {e}"))?;
            let secs = u64::try_from(p.as_duration().whole_seconds())
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| anyhow::anyhow!("backup.{name} {v:?} must be positive"))?;
            Ok(Some(Duration::from_secs(secs)))
        };
        let d = Retention::default();
        let as_time = |d: Duration| time::Duration::seconds(d.as_secs() as i64);
        let retention = Retention {
            daily: file.keep_daily.unwrap_or(d.daily),
            weekly: file.keep_weekly.unwrap_or(d.weekly),
            monthly: file.keep_monthly.unwrap_or(d.monthly),
            max_age: period("max_age", &file.max_age)?.map_or(d.max_age, as_time),
            key_window: period("key_window", &file.key_window)?.map_or(d.key_window, as_time),
        };
        if retention.daily + retention.weekly + retention.monthly == 0 {
            anyhow::bail!(
                "backup.keep_daily, keep_weekly and keep_monthly are all 0: no snapshot would be kept"
            );
        }
        Ok(Self {
            locations,
            s3: S3Options {
                endpoint: flags_endpoint
                    .map(str::to_owned)
                    .or_else(|| file.s3_endpoint.clone()),
            },
            every: period("every", &file.every)?,
            verify_every: period("verify_every", &file.verify_every)?.unwrap_or(DAY),
            retention,
        })
    }

    /// What the privacy notice states about backups.
    pub(crate) fn notice_facts(&self) -> ward_policy::BackupFacts {
        let human = |d: Duration| {
            ward_policy::Period::from_seconds(d.as_secs() as i64)
                .map_or_else(|| format!("{}s", d.as_secs()), |p| p.humanize())
        };
        let mut regions: Vec<String> = self
            .locations
            .iter()
            .filter_map(|l| l.region.clone())
            .collect();
        regions.dedup();
        ward_policy::BackupFacts {
            locations: self.locations.len(),
            regions,
            every: self.every.map(human),
            verify_every: human(self.verify_every),
            max_age: human(Duration::from_secs(
                self.retention.max_age.whole_seconds().max(0) as u64,
            )),
            key_window: human(Duration::from_secs(
                self.retention.key_window.whole_seconds().max(0) as u64,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(toml: &str) -> BackupConfig {
        toml::from_str(toml).expect("backup table")
    }

    #[test]
    fn locations_and_schedule_come_from_the_table_unless_flags_give_locations() {
        let conf = table(
            r#"locations = ["/a", { url = "s3://b/p", region = "eu-central-1" }]
               every = "12h"
               key_window = "14d"
               keep_daily = 3"#,
        );
        let s = BackupSettings::resolve(&[], None, Some(&conf)).unwrap();
        assert_eq!(s.locations.len(), 2);
        assert_eq!(s.locations[1].region.as_deref(), Some("eu-central-1"));
        assert_eq!(s.every, Some(Duration::from_secs(12 * 3600)));
        assert_eq!(s.verify_every, DAY);
        assert_eq!(s.retention.key_window, time::Duration::days(14));
        assert_eq!(s.retention.daily, 3);
        assert_eq!(s.retention.weekly, 4);
        let s = BackupSettings::resolve(&["/c".into()], Some("http://127.0.0.1:1"), Some(&conf))
            .unwrap();
        assert_eq!(s.locations, vec![LocationSpec::new("/c")]);
        assert_eq!(s.s3.endpoint.as_deref(), Some("http://127.0.0.1:1"));
        let none = BackupSettings::resolve(&[], None, None).unwrap();
        assert!(none.locations.is_empty() && none.every.is_none());
    }

    #[test]
    fn bad_periods_and_keeping_nothing_are_refused() {
        for bad in [
            "every = \"soon\"",
            "key_window = \"0s\"",
            "keep_daily = 0\nkeep_weekly = 0\nkeep_monthly = 0",
        ] {
            assert!(
                BackupSettings::resolve(&[], None, Some(&table(bad))).is_err(),
                "{bad}"
            );
        }
        assert!(toml::from_str::<BackupConfig>("unknown = 1").is_err());
    }
}
