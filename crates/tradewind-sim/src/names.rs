//! The wire enums as scenario files name them (`"CN"`, `"mobile_wallet"`,
//! `"rail_china_europe"`): the one vocabulary of `tradewind_proto::labels`,
//! the same labels the ClickHouse tables store. Each name type parses from a
//! string with an error that lists the accepted spellings.

use std::fmt;
use std::str::FromStr;

use serde::{de, Deserialize, Deserializer};
use tradewind_proto::{
    Country, Currency, DeviceKind, Label, MerchantCategory, PaymentChannel, PaymentMethod,
    TransportMode,
};

macro_rules! names {
    ($name:ident, $proto:ty) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $proto);

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                <$proto as Label>::parse_label(s).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0.label())
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

names!(CountryName, Country);
names!(CurrencyName, Currency);
names!(MethodName, PaymentMethod);
names!(ChannelName, PaymentChannel);
names!(CategoryName, MerchantCategory);
names!(ModeName, TransportMode);
names!(DeviceKindName, DeviceKind);

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
