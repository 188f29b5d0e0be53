//! Wire enums as the short labels the tables store: `CN`, `EUR`,
//! `mobile_wallet`, `rail_china_europe`. Unknown numbers (which the
//! aggregator sends to the DLQ before they get here) read `unknown_<n>`.

use tradewind_proto::{
    Country, Currency, DeviceKind, PaymentChannel, PaymentMethod, TransportMode,
};

fn label(name: Option<&str>, prefix: &str, upper: bool, raw: i32) -> String {
    match name {
        Some(n) => {
            let short = n.strip_prefix(prefix).unwrap_or(n);
            if upper {
                short.to_string()
            } else {
                short.to_ascii_lowercase()
            }
        }
        None => format!("unknown_{raw}"),
    }
}

pub fn country(v: i32) -> String {
    label(
        Country::try_from(v).ok().map(|x| x.as_str_name()),
        "COUNTRY_",
        true,
        v,
    )
}

pub fn currency(v: i32) -> String {
    label(
        Currency::try_from(v).ok().map(|x| x.as_str_name()),
        "CURRENCY_",
        true,
        v,
    )
}

pub fn method(v: i32) -> String {
    label(
        PaymentMethod::try_from(v).ok().map(|x| x.as_str_name()),
        "PAYMENT_METHOD_",
        false,
        v,
    )
}

pub fn channel(v: i32) -> String {
    label(
        PaymentChannel::try_from(v).ok().map(|x| x.as_str_name()),
        "PAYMENT_CHANNEL_",
        false,
        v,
    )
}

pub fn mode(v: i32) -> String {
    label(
        TransportMode::try_from(v).ok().map(|x| x.as_str_name()),
        "TRANSPORT_MODE_",
        false,
        v,
    )
}

pub fn device_kind(v: i32) -> String {
    label(
        DeviceKind::try_from(v).ok().map(|x| x.as_str_name()),
        "DEVICE_KIND_",
        false,
        v,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short() {
        assert_eq!(country(1), "CN");
        assert_eq!(currency(3), "EUR");
        assert_eq!(method(1), "mobile_wallet");
        assert_eq!(mode(3), "rail_china_europe");
        assert_eq!(device_kind(1), "cold_chain_container");
        assert_eq!(country(99), "unknown_99");
    }
}
