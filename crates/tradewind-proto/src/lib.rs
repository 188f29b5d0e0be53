//! Tradewind's wire format: the prost types generated from `proto/`, plus the
//! few helpers every stage needs to agree on (Kafka keys, currency exponents).
//!
//! Producers encode these messages onto the Kafka topics; the aggregator
//! decodes them. See `proto/README.md` for the evolution rules.

#[allow(clippy::all, missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/tradewind.v1.rs"));
}

pub use generated::*;

pub mod labels;
pub use labels::{label_of, Label};

/// The four event streams, one Kafka topic each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    Payments,
    Iot,
    Logistics,
    Fx,
}

impl Stream {
    pub const ALL: [Stream; 4] = [Stream::Payments, Stream::Iot, Stream::Logistics, Stream::Fx];

    /// Short lowercase name, used in topic names, truth files and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Payments => "payments",
            Stream::Iot => "iot",
            Stream::Logistics => "logistics",
            Stream::Fx => "fx",
        }
    }
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Currency {
    /// ISO 4217 minor-unit exponent: how many decimal digits `amount_minor` has.
    pub fn minor_digits(self) -> u32 {
        match self {
            Currency::Jpy => 0,
            _ => 2,
        }
    }
}

impl Country {
    /// Standard UTC offset in hours (no daylight saving), for daily cycles.
    pub fn utc_offset_hours(self) -> i32 {
        match self {
            Country::Cn | Country::My => 8,
            Country::Jp => 9,
            Country::Kz => 5,
            Country::De | Country::Pl | Country::Nl | Country::Fr | Country::It | Country::Es => 1,
            Country::Us => -5,
            Country::Unspecified => 0,
        }
    }

    /// The currency payments in this country settle in domestically.
    pub fn home_currency(self) -> Currency {
        match self {
            Country::Cn => Currency::Cny,
            Country::Jp => Currency::Jpy,
            Country::Pl => Currency::Pln,
            Country::My => Currency::Myr,
            Country::Kz => Currency::Kzt,
            Country::De | Country::Nl | Country::Fr | Country::It | Country::Es => Currency::Eur,
            Country::Us => Currency::Usd,
            Country::Unspecified => Currency::Unspecified,
        }
    }
}

/// Writes a u64 Kafka key as decimal ASCII into `buf` and returns it, so keys
/// stay readable in `kcat` and hash the same way in every client.
pub fn decimal_key(id: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = id;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn decimal_key_matches_to_string() {
        let mut buf = [0u8; 20];
        for id in [0u64, 7, 10, 12345, u64::MAX] {
            assert_eq!(decimal_key(id, &mut buf), id.to_string().as_bytes());
        }
    }

    #[test]
    fn unknown_enum_values_survive_decoding_as_raw_integers() {
        let mut p = Payment {
            method: 99,
            ..Default::default()
        };
        let bytes = p.encode_to_vec();
        p = Payment::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(p.method, 99);
        assert!(PaymentMethod::try_from(p.method).is_err());
    }
}
