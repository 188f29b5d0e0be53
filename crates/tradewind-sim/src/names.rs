//! Human names for the wire enums, as they appear in scenario files
//! (`"CN"`, `"mobile_wallet"`, `"rail_china_europe"`). Each name type parses
//! from a string with an error that lists the accepted spellings.

use std::fmt;
use std::str::FromStr;

use serde::{de, Deserialize, Deserializer};
use tradewind_proto::{
    Country, Currency, DeviceKind, MerchantCategory, PaymentChannel, PaymentMethod, TransportMode,
};

macro_rules! names {
    ($name:ident, $proto:ty, $what:literal, { $($s:literal => $v:expr),* $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $proto);

        impl $name {
            /// Every accepted spelling and the value it stands for.
            pub const ALL: &'static [(&'static str, $proto)] = &[$(($s, $v)),*];

            pub fn name(self) -> &'static str {
                Self::ALL.iter().find(|(_, v)| *v == self.0).map(|(s, _)| *s).unwrap_or("?")
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL
                    .iter()
                    .find(|(n, _)| *n == s)
                    .map(|(_, v)| $name(*v))
                    .ok_or_else(|| {
                        let known: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                        format!("unknown {} {s:?}, expected one of: {}", $what, known.join(", "))
                    })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(de::Error::custom)
            }
        }
    };
}

names!(CountryName, Country, "country", {
    "CN" => Country::Cn, "JP" => Country::Jp, "DE" => Country::De, "PL" => Country::Pl,
    "MY" => Country::My, "KZ" => Country::Kz, "NL" => Country::Nl, "FR" => Country::Fr,
    "IT" => Country::It, "ES" => Country::Es, "US" => Country::Us,
});

names!(CurrencyName, Currency, "currency", {
    "CNY" => Currency::Cny, "JPY" => Currency::Jpy, "EUR" => Currency::Eur, "PLN" => Currency::Pln,
    "MYR" => Currency::Myr, "KZT" => Currency::Kzt, "USD" => Currency::Usd,
});

names!(MethodName, PaymentMethod, "payment method", {
    "mobile_wallet" => PaymentMethod::MobileWallet,
    "card" => PaymentMethod::Card,
    "bank_transfer" => PaymentMethod::BankTransfer,
});

names!(ChannelName, PaymentChannel, "payment channel", {
    "domestic" => PaymentChannel::Domestic,
    "cross_border_ecommerce" => PaymentChannel::CrossBorderEcommerce,
    "b2b" => PaymentChannel::B2b,
});

names!(CategoryName, MerchantCategory, "merchant category", {
    "electronics" => MerchantCategory::Electronics,
    "components" => MerchantCategory::Components,
    "apparel" => MerchantCategory::Apparel,
    "cosmetics" => MerchantCategory::Cosmetics,
    "food" => MerchantCategory::Food,
    "machinery" => MerchantCategory::Machinery,
    "household" => MerchantCategory::Household,
});

names!(ModeName, TransportMode, "transport mode", {
    "air" => TransportMode::Air,
    "sea" => TransportMode::Sea,
    "rail_china_europe" => TransportMode::RailChinaEurope,
    "road" => TransportMode::Road,
});

names!(DeviceKindName, DeviceKind, "device kind", {
    "cold_chain_container" => DeviceKind::ColdChainContainer,
    "factory_line" => DeviceKind::FactoryLine,
    "shared_bike" => DeviceKind::SharedBike,
    "smart_meter" => DeviceKind::SmartMeter,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_name_lists_the_known_ones() {
        let err = "XX".parse::<CountryName>().unwrap_err();
        assert!(err.contains("unknown country \"XX\""), "{err}");
        assert!(err.contains("CN, JP"), "{err}");
        assert_eq!(
            "rail_china_europe".parse::<ModeName>().unwrap().0,
            TransportMode::RailChinaEurope
        );
    }
}
