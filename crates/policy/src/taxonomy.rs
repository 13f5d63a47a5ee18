//! The embedded fideslang taxonomy: data uses (purposes), data categories and data subjects.
//!
//! Fideslang is the open privacy taxonomy of the Fides project. Using its keys, rather than
//! free text, keeps Ward's policy readable by other privacy tools and catches typos at load
//! time. The lists below are the fideslang default taxonomy as of 3.x, plus the 2.x keys that
//! 3.x deprecated (for example `user.biometric`, `user.health_and_medical`), because policies
//! written against 2.x must keep loading. Each key comes with a plain-English label used when
//! rendering the privacy notice.

use crate::error::NameError;
use crate::names::string_newtype;

/// A purpose of processing: a fideslang data-use key such as `essential.service` or
/// `marketing.communications.email`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Purpose(String);

/// A category of personal data: a fideslang data-category key such as `user.contact.email`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DataCategory(String);

/// A category of data subjects (whose data it is): a fideslang data-subject key such as
/// `customer` or `job_applicant`, needed for the Art. 30 record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DataSubject(String);

/// Data the GDPR protects beyond ordinary personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecialCategory {
    /// Art. 9(1): racial or ethnic origin, political opinions, religious or philosophical
    /// beliefs, trade-union membership, genetic, biometric and health data, sex life or sexual
    /// orientation.
    Art9,
    /// Art. 10: personal data relating to criminal convictions and offences.
    Art10,
}

impl SpecialCategory {
    /// How the notice and diagnostics name the category.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Art9 => "a GDPR Art. 9 special category",
            Self::Art10 => "GDPR Art. 10 data (criminal convictions and offences)",
        }
    }
}

impl Purpose {
    /// Accepts a key of the embedded fideslang data-use taxonomy.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        match lookup(DATA_USES, s) {
            Some(_) => Ok(Self(s.to_owned())),
            None => Err(NameError::UnknownPurpose {
                key: s.to_owned(),
                suggestion: suggest(DATA_USES, s),
            }),
        }
    }

    /// Whether the purpose is needed to provide the service at all. Essential purposes
    /// survive a data subject's objection to "everything but essential processing", and
    /// include `essential.legal_obligation`.
    pub fn is_essential(&self) -> bool {
        self.is_within("essential")
    }

    /// Whether this purpose is `ancestor` or one of its descendants; a collection that allows
    /// `marketing` allows `marketing.communications.email`, but not the other way round.
    pub fn is_within(&self, ancestor: &str) -> bool {
        is_within(&self.0, ancestor)
    }

    /// Plain-English description for the rendered notice.
    pub fn label(&self) -> &'static str {
        lookup(DATA_USES, &self.0).unwrap_or("")
    }

    /// Every purpose Ward knows, for documentation and tooling.
    pub fn all() -> impl Iterator<Item = &'static str> {
        DATA_USES.iter().map(|(key, _)| *key)
    }
}

impl DataCategory {
    /// Accepts a key of the embedded fideslang data-category taxonomy.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        match lookup(DATA_CATEGORIES, s) {
            Some(_) => Ok(Self(s.to_owned())),
            None => Err(NameError::UnknownCategory {
                key: s.to_owned(),
                suggestion: suggest(DATA_CATEGORIES, s),
            }),
        }
    }

    /// Whether GDPR Art. 9 or Art. 10 applies, which requires the collection to name an
    /// Art. 9(2) condition before Ward will store it.
    ///
    /// Beyond the keys named in Ward's design, the deprecated 2.x health key
    /// (`user.health_and_medical`) and biometric credentials (`user.authorization.biometric*`,
    /// biometric data used to identify a person) count as Art. 9 too: the law follows the
    /// data, not the key's spelling.
    pub fn special_category(&self) -> Option<SpecialCategory> {
        const ART9: [&str; 12] = [
            "user.demographic.race_ethnicity",
            "user.demographic.political_opinion",
            "user.demographic.religious_belief",
            "user.demographic.philosophical_belief",
            "user.demographic.union_membership",
            "user.demographic.sexual_orientation",
            "user.health",
            "user.health_and_medical",
            "user.biometric",
            "user.biometrics",
            "user.authorization.biometric",
            "user.authorization.biometrics",
        ];
        if ART9.iter().any(|key| self.is_within(key)) {
            Some(SpecialCategory::Art9)
        } else if self.is_within("user.criminal_history") {
            Some(SpecialCategory::Art10)
        } else {
            None
        }
    }

    /// Whether this category is payment-card data, which Ward promises never to store.
    pub fn is_card_data(&self) -> bool {
        self.is_within("user.financial.credit_card")
    }

    /// Whether this category is `ancestor` or one of its descendants.
    pub fn is_within(&self, ancestor: &str) -> bool {
        is_within(&self.0, ancestor)
    }

    /// Plain-English description for the rendered notice.
    pub fn label(&self) -> &'static str {
        lookup(DATA_CATEGORIES, &self.0).unwrap_or("")
    }

    /// Every category Ward knows, for documentation and tooling.
    pub fn all() -> impl Iterator<Item = &'static str> {
        DATA_CATEGORIES.iter().map(|(key, _)| *key)
    }
}

impl DataSubject {
    /// Accepts a key of the embedded fideslang data-subject taxonomy.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        match lookup(DATA_SUBJECTS, s) {
            Some(_) => Ok(Self(s.to_owned())),
            None => Err(NameError::UnknownDataSubject {
                key: s.to_owned(),
                suggestion: suggest(DATA_SUBJECTS, s),
            }),
        }
    }

    /// Plain-English description for the rendered record.
    pub fn label(&self) -> &'static str {
        lookup(DATA_SUBJECTS, &self.0).unwrap_or("")
    }
}

string_newtype!(Purpose);
string_newtype!(DataCategory);
string_newtype!(DataSubject);

fn is_within(key: &str, ancestor: &str) -> bool {
    key.strip_prefix(ancestor)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

fn lookup(list: &[(&str, &'static str)], key: &str) -> Option<&'static str> {
    list.iter()
        .find(|(k, _)| *k == key)
        .map(|(_, label)| *label)
}

/// The closest key by edit distance, offered in diagnostics when it is plausibly a typo.
fn suggest(list: &[(&'static str, &str)], input: &str) -> Option<&'static str> {
    let limit = (input.chars().count() / 4).clamp(1, 4);
    list.iter()
        .map(|(key, _)| (edit_distance(input, key), *key))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, key)| key)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// Fideslang data uses with a label for the notice ("we use it for …").
const DATA_USES: &[(&str, &str)] = &[
    ("analytics", "analytics"),
    ("analytics.reporting", "analytics and reporting"),
    (
        "analytics.reporting.ad_performance",
        "advertising performance reporting",
    ),
    (
        "analytics.reporting.campaign_insights",
        "campaign insight reporting",
    ),
    (
        "analytics.reporting.content_performance",
        "content performance reporting",
    ),
    ("analytics.reporting.system", "system activity reporting"),
    (
        "analytics.reporting.system.performance",
        "system performance reporting",
    ),
    ("collect", "collection for a purpose not yet defined"),
    ("employment", "employment and human resources"),
    ("employment.recruitment", "recruitment"),
    ("essential", "operating the service"),
    ("essential.fraud_detection", "detecting fraud and misuse"),
    ("essential.legal_obligation", "meeting legal obligations"),
    ("essential.service", "providing the service"),
    ("essential.service.authentication", "signing you in"),
    ("essential.service.notifications", "service notifications"),
    (
        "essential.service.notifications.email",
        "service notifications by e-mail",
    ),
    (
        "essential.service.notifications.sms",
        "service notifications by SMS",
    ),
    ("essential.service.operations", "operating the service"),
    ("essential.service.operations.improve", "improving support"),
    ("essential.service.operations.support", "customer support"),
    (
        "essential.service.payment_processing",
        "processing payments",
    ),
    ("essential.service.security", "keeping the service secure"),
    ("essential.service.upgrades", "service upgrade information"),
    ("finance", "finance, accounting and tax reporting"),
    ("functional", "functional purposes"),
    ("functional.service", "service functions"),
    ("functional.service.improve", "improving the service"),
    ("functional.storage", "storing information on your device"),
    (
        "functional.storage.privacy_preferences",
        "remembering your privacy preferences",
    ),
    ("marketing", "marketing"),
    ("marketing.advertising", "advertising"),
    (
        "marketing.advertising.first_party",
        "first-party advertising",
    ),
    (
        "marketing.advertising.first_party.contextual",
        "contextual advertising",
    ),
    (
        "marketing.advertising.first_party.targeted",
        "personalised first-party advertising",
    ),
    (
        "marketing.advertising.frequency_capping",
        "advertising frequency capping",
    ),
    (
        "marketing.advertising.negative_targeting",
        "advertising exclusion",
    ),
    (
        "marketing.advertising.profiling",
        "profiling for advertising",
    ),
    ("marketing.advertising.serving", "serving advertisements"),
    (
        "marketing.advertising.third_party",
        "third-party advertising",
    ),
    (
        "marketing.advertising.third_party.targeted",
        "targeted third-party advertising",
    ),
    ("marketing.communications", "marketing communications"),
    ("marketing.communications.email", "marketing e-mails"),
    ("marketing.communications.sms", "marketing text messages"),
    ("operations", "business operations"),
    ("personalize", "personalisation"),
    ("personalize.content", "content personalisation"),
    (
        "personalize.content.limited",
        "limited content personalisation",
    ),
    (
        "personalize.content.profiled",
        "profile-based content personalisation",
    ),
    (
        "personalize.content.profiling",
        "profiling for personalisation",
    ),
    ("personalize.profiling", "profiling for personalisation"),
    ("personalize.system", "system personalisation"),
    ("sales", "sales"),
    ("third_party_sharing", "sharing with third parties"),
    (
        "third_party_sharing.legal_obligation",
        "sharing to meet legal obligations",
    ),
    ("train_ai_system", "training AI systems"),
];

/// Fideslang data categories with a label for the notice ("we collect your …").
const DATA_CATEGORIES: &[(&str, &str)] = &[
    ("system", "system data"),
    ("system.authentication", "authentication data"),
    ("system.operations", "operations data"),
    ("user", "user data"),
    ("user.account", "account information"),
    ("user.account.settings", "account settings"),
    ("user.account.username", "username"),
    ("user.authorization", "authorization information"),
    ("user.authorization.biometric", "biometric credentials"),
    ("user.authorization.biometrics", "biometric credentials"),
    ("user.authorization.credentials", "login credentials"),
    ("user.authorization.password", "password"),
    ("user.behavior", "observed behaviour"),
    ("user.behavior.browsing_history", "browsing history"),
    ("user.behavior.media_consumption", "media consumption"),
    ("user.behavior.purchase_history", "purchase history"),
    ("user.behavior.search_history", "search history"),
    ("user.biometric", "biometric data"),
    ("user.biometric.fingerprint", "fingerprint"),
    ("user.biometric.health", "biometric health data"),
    ("user.biometric.retinal", "retina scan"),
    ("user.biometric.voice", "voice recording"),
    ("user.biometrics", "biometric data"),
    ("user.biometrics.fingerprint", "fingerprint"),
    ("user.biometrics.retinal", "retina scan"),
    ("user.biometrics.voice", "voice recording"),
    ("user.children", "children's data"),
    (
        "user.children.children_under_thirteen",
        "data of children under thirteen",
    ),
    (
        "user.children.thirteen_to_sixteen",
        "data of children aged thirteen to sixteen",
    ),
    ("user.childrens", "children's data"),
    ("user.contact", "contact data"),
    ("user.contact.address", "postal address"),
    ("user.contact.address.city", "city"),
    ("user.contact.address.country", "country"),
    ("user.contact.address.mailing_address", "mailing address"),
    ("user.contact.address.postal_code", "postal code"),
    ("user.contact.address.state", "state or region"),
    ("user.contact.address.street", "street address"),
    ("user.contact.email", "e-mail address"),
    ("user.contact.fax_number", "fax number"),
    ("user.contact.organization", "organization"),
    ("user.contact.phone_number", "phone number"),
    ("user.contact.social_url", "social media profile"),
    ("user.contact.url", "website"),
    ("user.content", "content you create"),
    ("user.content.private", "private content"),
    ("user.content.public", "public content"),
    ("user.content.self_image", "photographs of you"),
    ("user.criminal_history", "criminal history"),
    ("user.demographic", "demographic data"),
    ("user.demographic.age_range", "age range"),
    (
        "user.demographic.citizenship_or_immigration_status",
        "citizenship or immigration status",
    ),
    ("user.demographic.date_of_birth", "date of birth"),
    ("user.demographic.gender", "gender"),
    ("user.demographic.language", "language"),
    ("user.demographic.marital_status", "marital status"),
    (
        "user.demographic.philosophical_belief",
        "philosophical beliefs",
    ),
    ("user.demographic.political_opinion", "political opinions"),
    ("user.demographic.profile", "profile and preferences"),
    (
        "user.demographic.protected_classifications",
        "protected characteristics",
    ),
    ("user.demographic.race_ethnicity", "racial or ethnic origin"),
    ("user.demographic.religious_belief", "religious beliefs"),
    ("user.demographic.sexual_orientation", "sexual orientation"),
    (
        "user.demographic.union_membership",
        "trade-union membership",
    ),
    ("user.device", "device data"),
    ("user.device.cookie", "cookie data"),
    ("user.device.cookie_id", "cookie identifier"),
    ("user.device.device_id", "device identifier"),
    ("user.device.ip_address", "IP address"),
    ("user.device.sensor", "device sensor data"),
    ("user.device.telemetry", "device telemetry"),
    ("user.financial", "financial data"),
    ("user.financial.account_number", "financial account number"),
    ("user.financial.bank_account", "bank account details"),
    ("user.financial.credit_card", "payment card details"),
    ("user.government_id", "government identifiers"),
    ("user.government_id.birth_certificate", "birth certificate"),
    (
        "user.government_id.drivers_license_number",
        "driving licence number",
    ),
    ("user.government_id.immigration", "immigration identifier"),
    (
        "user.government_id.national_identification_number",
        "national identification number",
    ),
    ("user.government_id.passport_number", "passport number"),
    (
        "user.government_id.vehicle_registration",
        "vehicle registration",
    ),
    ("user.health", "health data"),
    ("user.health.baby_formula", "baby formula information"),
    ("user.health.condition", "health condition"),
    ("user.health.genetic", "genetic data"),
    (
        "user.health.insurance_beneficiary_id",
        "health insurance number",
    ),
    (
        "user.health.maternity_clothing",
        "maternity clothing information",
    ),
    ("user.health.medical_diagnosis", "medical diagnosis"),
    ("user.health.medications", "medications"),
    ("user.health.prescriptions", "prescriptions"),
    ("user.health.record_id", "medical record number"),
    (
        "user.health.reproductive_or_sexual",
        "reproductive or sexual health",
    ),
    (
        "user.health.social_psychological_behavioral",
        "social, psychological or behavioural health",
    ),
    ("user.health.symptons", "health symptoms"),
    ("user.health.treatment", "medical treatment"),
    ("user.health_and_medical", "health and medical data"),
    ("user.health_and_medical.genetic", "genetic data"),
    (
        "user.health_and_medical.insurance_beneficiary_id",
        "health insurance number",
    ),
    ("user.health_and_medical.record_id", "medical record number"),
    ("user.job_title", "job title"),
    ("user.location", "location"),
    ("user.location.coarse", "approximate location"),
    ("user.location.imprecise", "approximate location"),
    ("user.location.precise", "precise location"),
    ("user.name", "name"),
    ("user.name.first", "first name"),
    ("user.name.last", "last name"),
    ("user.payment", "payment data"),
    ("user.privacy_preferences", "privacy preferences"),
    ("user.professional_information", "professional information"),
    ("user.professional_information.job_title", "job title"),
    ("user.professional_information.workplace", "workplace"),
    ("user.sensor", "sensor data"),
    ("user.settings", "settings"),
    ("user.social", "social activity"),
    ("user.social_activity", "social activity"),
    ("user.telemetry", "telemetry"),
    ("user.unique_id", "unique identifier"),
    ("user.unique_id.deterministic", "deterministic identifier"),
    ("user.unique_id.probablistic", "probabilistic identifier"),
    ("user.unique_id.pseudonymous", "pseudonymous identifier"),
    ("user.user_sensor", "sensor data about your environment"),
    ("user.workplace", "workplace"),
];

/// Fideslang data subjects with a label for the Art. 30 record.
const DATA_SUBJECTS: &[(&str, &str)] = &[
    ("anonymous_user", "anonymous users"),
    ("citizen_voter", "citizens and voters"),
    ("commuter", "commuters"),
    ("consultant", "consultants"),
    ("customer", "customers"),
    ("employee", "employees"),
    ("job_applicant", "job applicants"),
    ("next_of_kin", "next of kin"),
    ("passenger", "passengers"),
    ("patient", "patients"),
    ("prospect", "prospects"),
    ("shareholder", "shareholders"),
    ("supplier_vendor", "suppliers and vendors"),
    ("trainee", "trainees"),
    ("visitor", "website visitors"),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_key_is_unique_and_its_parent_exists() {
        for list in [DATA_USES, DATA_CATEGORIES, DATA_SUBJECTS] {
            let keys: BTreeSet<&str> = list.iter().map(|(k, _)| *k).collect();
            assert_eq!(keys.len(), list.len(), "duplicate key");
            for key in &keys {
                if let Some((parent, _)) = key.rsplit_once('.') {
                    assert!(keys.contains(parent), "{key} has no parent {parent}");
                }
                assert!(!lookup(list, key).unwrap_or_default().is_empty());
            }
        }
    }

    #[test]
    fn purposes() {
        for key in [
            "essential",
            "essential.service",
            "essential.service.authentication",
            "essential.service.payment_processing",
            "essential.service.security",
            "essential.service.operations",
            "essential.service.upgrades",
            "essential.legal_obligation",
            "analytics",
            "analytics.reporting",
            "marketing",
            "marketing.communications.email",
            "employment.recruitment",
            "personalize",
            "functional.service.improve",
            "collect",
            "train_ai_system",
            "third_party_sharing",
        ] {
            assert!(Purpose::parse(key).is_ok(), "{key}");
        }
        assert!(
            Purpose::parse("essential.legal_obligation")
                .unwrap()
                .is_essential()
        );
        assert!(Purpose::parse("essential").unwrap().is_essential());
        assert!(!Purpose::parse("marketing").unwrap().is_essential());
        // A prefix match on the string is not enough: the dot boundary matters.
        assert!(!is_within("essentially", "essential"));
        let err = Purpose::parse("marketing.communication.email").unwrap_err();
        assert!(
            err.to_string().contains("marketing.communications.email"),
            "{err}"
        );
    }

    #[test]
    fn special_categories() {
        let art9 = [
            "user.demographic.race_ethnicity",
            "user.demographic.political_opinion",
            "user.demographic.religious_belief",
            "user.demographic.philosophical_belief",
            "user.demographic.union_membership",
            "user.demographic.sexual_orientation",
            "user.health",
            "user.health.genetic",
            "user.health.condition",
            "user.health_and_medical.record_id",
            "user.biometric",
            "user.biometric.fingerprint",
            "user.biometrics.voice",
        ];
        for key in art9 {
            assert_eq!(
                DataCategory::parse(key).unwrap().special_category(),
                Some(SpecialCategory::Art9),
                "{key}"
            );
        }
        assert_eq!(
            DataCategory::parse("user.criminal_history")
                .unwrap()
                .special_category(),
            Some(SpecialCategory::Art10)
        );
        for key in [
            "user.contact.email",
            "user.demographic.gender",
            "user.demographic.date_of_birth",
            "user.device.ip_address",
        ] {
            assert_eq!(DataCategory::parse(key).unwrap().special_category(), None);
        }
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(
            suggest(DATA_CATEGORIES, "user.contact.emial"),
            Some("user.contact.email")
        );
        assert_eq!(suggest(DATA_CATEGORIES, "completely.unrelated"), None);
    }
}
