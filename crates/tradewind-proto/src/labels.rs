//! One vocabulary for the wire enums: the short labels that scenario files,
//! ClickHouse tables and dashboards use (`CN`, `EUR`, `mobile_wallet`,
//! `rail_china_europe`). Each label is derived from the protobuf name: the
//! enum's prefix stripped, lower case except for ISO codes (countries and
//! currencies). A number this build does not know reads `unknown_<n>`; the
//! aggregator dead-letters such records before they reach a table.

use crate::{
    Country, Currency, DeviceKind, MerchantCategory, Milestone, PaymentChannel, PaymentMethod,
    PaymentStatus, TransportMode,
};

/// A wire enum with a short label.
pub trait Label: Copy + PartialEq + Sized + 'static {
    /// The protobuf name's prefix, e.g. `COUNTRY_`.
    const PREFIX: &'static str;
    /// ISO codes keep their capitals.
    const UPPER: bool;
    /// What the label names in messages, e.g. `country`.
    const WHAT: &'static str;

    fn from_raw(raw: i32) -> Option<Self>;
    fn proto_name(self) -> &'static str;

    /// The short label, e.g. `mobile_wallet`.
    fn label(self) -> String {
        let short = self.proto_name();
        let short = short.strip_prefix(Self::PREFIX).unwrap_or(short);
        if Self::UPPER {
            short.to_string()
        } else {
            short.to_ascii_lowercase()
        }
    }

    /// Every known value but `*_UNSPECIFIED`, in wire order.
    fn known() -> Vec<Self> {
        (1..=255).filter_map(Self::from_raw).collect()
    }

    /// The value a label stands for; the error lists the known labels.
    fn parse_label(s: &str) -> Result<Self, String> {
        let known = Self::known();
        known
            .iter()
            .copied()
            .find(|v| v.label() == s)
            .ok_or_else(|| {
                let names: Vec<String> = known.iter().map(|v| v.label()).collect();
                format!(
                    "unknown {} {s:?}, expected one of: {}",
                    Self::WHAT,
                    names.join(", ")
                )
            })
    }
}

macro_rules! label {
    ($t:ty, $prefix:literal, $upper:literal, $what:literal) => {
        impl Label for $t {
            const PREFIX: &'static str = $prefix;
            const UPPER: bool = $upper;
            const WHAT: &'static str = $what;

            fn from_raw(raw: i32) -> Option<Self> {
                Self::try_from(raw).ok()
            }

            fn proto_name(self) -> &'static str {
                self.as_str_name()
            }
        }
    };
}

label!(Country, "COUNTRY_", true, "country");
label!(Currency, "CURRENCY_", true, "currency");
label!(PaymentMethod, "PAYMENT_METHOD_", false, "payment method");
label!(PaymentChannel, "PAYMENT_CHANNEL_", false, "payment channel");
label!(PaymentStatus, "PAYMENT_STATUS_", false, "payment status");
label!(
    MerchantCategory,
    "MERCHANT_CATEGORY_",
    false,
    "merchant category"
);
label!(TransportMode, "TRANSPORT_MODE_", false, "transport mode");
label!(DeviceKind, "DEVICE_KIND_", false, "device kind");
label!(Milestone, "MILESTONE_", false, "milestone");

/// The label of a raw wire number: `unknown_<n>` when this build does not
/// know it.
pub fn label_of<T: Label>(raw: i32) -> String {
    T::from_raw(raw).map_or_else(|| format!("unknown_{raw}"), Label::label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short_and_parse_back() {
        assert_eq!(label_of::<Country>(1), "CN");
        assert_eq!(label_of::<Currency>(3), "EUR");
        assert_eq!(label_of::<PaymentMethod>(1), "mobile_wallet");
        assert_eq!(label_of::<TransportMode>(3), "rail_china_europe");
        assert_eq!(label_of::<DeviceKind>(1), "cold_chain_container");
        assert_eq!(label_of::<Country>(99), "unknown_99");
        for c in Country::known() {
            assert_eq!(Country::parse_label(&c.label()), Ok(c));
        }
        let err = Country::parse_label("XX").unwrap_err();
        assert!(
            err.starts_with("unknown country \"XX\", expected one of: CN, JP"),
            "{err}"
        );
    }
}
